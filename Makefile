# Chronicle's Makefile: the seed's just recipes, for a Go user.
#
# Variables compose like the seed's just variables, as make arguments:
#   make transport=rabbitmq role=security consumers N=2
#   make store=memory run
#   make transport=rabbitmq producer port=8081
# transport (inproc|rabbitmq), store (sqlite|postgres|memory), mode, role,
# N (a count), port map to CHRONICLE_TRANSPORT, CHRONICLE_STORE,
# CHRONICLE_MODE, CHRONICLE_CONSUMER_ROLE, CHRONICLE_CONSUMER_COUNT (or the
# number of events for flood) and CHRONICLE_PORT. `make help` lists the
# targets.

GO      ?= go
BIN     := bin/chronicle
CHRON   := $(GO) run ./cmd/chronicle
RUN     := scripts/run.sh

ifdef transport
export CHRONICLE_TRANSPORT := $(transport)
endif
ifdef store
export CHRONICLE_STORE := $(store)
endif
ifdef mode
export CHRONICLE_MODE := $(mode)
endif
ifdef role
export CHRONICLE_CONSUMER_ROLE := $(role)
endif
ifdef port
export CHRONICLE_PORT := $(port)
endif
# The local PostgreSQL of `make setup` (over its socket, as the current
# user), unless DATABASE_URL says otherwise.
PGSOCKET ?= /var/run/postgresql
export DATABASE_URL ?= postgres:///chronicle?host=$(PGSOCKET)

N ?= 10

.PHONY: help build run producer consumer consumers kill test check fmt vet \
	setup services-up services-down rabbit-up migrate migrate-up migrate-down migrate-status \
	pg-shell pg-events pg-count rabbit-status list-queues list-exchanges \
	health post events ingest flood flood-slow send-security-event send-user-event send-billing-event \
	show-routes show-consumers info dlq bench nodes

help: ## list the targets
	@grep -hE '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

## Build & test
build: ## build bin/chronicle
	$(GO) build -o $(BIN) ./cmd/chronicle

test: ## run the whole test suite (starts local PostgreSQL and RabbitMQ)
	scripts/test.sh

check: ## gofmt check, go vet, then the whole test suite
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run make fmt"; exit 1; }
	$(GO) vet ./...
	scripts/test.sh

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet
	$(GO) vet ./...

## Run (foreground; `make kill` stops what these started)
run: build ## full mode: API + consumers (embedded SQLite + in-process queues by default)
	$(RUN) chronicle $(BIN) serve

producer: build ## producer only: the HTTP API, publishing to RabbitMQ (set transport=rabbitmq)
	$(RUN) producer $(BIN) producer

consumer: build ## one consumer process of role (default: default)
	$(RUN) consumer $(BIN) consumer

consumers: build ## a consumer process of role with N workers per queue: make role=security consumers N=2
	$(if $(filter command line,$(origin N)),CHRONICLE_CONSUMER_COUNT=$(N)) $(RUN) consumers-$(or $(role),default) $(BIN) consumer

kill: ## stop the Chronicle processes make started (from .run/*.pid, never by name)
	@scripts/kill.sh

nodes: ## list the Chronicle processes make started
	@for f in .run/*.pid; do [ -e "$$f" ] || continue; p=$$(cat $$f); \
	  if kill -0 $$p 2>/dev/null; then echo "$$(basename $$f .pid) pid $$p"; fi; done

## Infrastructure
setup: services-up ## start local PostgreSQL and RabbitMQ (installing them with apt when missing), create the database, migrate
	@psql "$(subst /chronicle?,/postgres?,$(DATABASE_URL))" -Atc "select 1 from pg_database where datname = 'chronicle'" | grep -q 1 || \
	  psql "$(subst /chronicle?,/postgres?,$(DATABASE_URL))" -qc "create database chronicle"
	CHRONICLE_STORE=postgres $(CHRON) migrate up

services-up: ## start local PostgreSQL and RabbitMQ (docker users: docker compose up -d)
	scripts/services.sh up

rabbit-up: services-up ## start RabbitMQ (and PostgreSQL)

services-down: ## stop local PostgreSQL and RabbitMQ
	scripts/services.sh down

## Database
migrate: ## apply pending migrations to the configured store (store=postgres for PostgreSQL)
	$(CHRON) migrate up

migrate-up: migrate ## same as migrate

migrate-down: ## roll back the latest migration
	$(CHRON) migrate down

migrate-status: ## list migrations and whether they are applied
	$(CHRON) migrate status

pg-shell: ## psql on DATABASE_URL
	psql "$(DATABASE_URL)"

pg-events: ## the 20 most recent events, straight from PostgreSQL
	psql "$(DATABASE_URL)" -c "select timestamp, event_type, actor, action, resource_type, resource_id, id from audit_events order by timestamp desc, id desc limit 20"

pg-count: ## count the events in PostgreSQL
	psql "$(DATABASE_URL)" -Atc "select count(*) from audit_events"

## RabbitMQ (through AMQP; no management plugin needed)
list-queues: ## every queue with its depth and consumers
	$(CHRON) queues

rabbit-status: list-queues ## same as list-queues

list-exchanges: ## the exchanges and whether RabbitMQ has them
	CHRONICLE_TRANSPORT=rabbitmq $(CHRON) exchanges

dlq: ## dead-letter queues and their depths (chronicle dlq peek|replay|purge for more)
	$(CHRON) dlq list

## API testing (against CHRONICLE_URL, default http://localhost:8080)
health: ## GET /health
	$(CHRON) health

post: ## send the seed's basic event
	$(CHRON) post

events: ## list recent events
	$(CHRON) events

ingest: ## send one random event
	$(CHRON) ingest

flood: ## send N events concurrently: make flood N=20
	$(CHRON) flood $(N)

flood-slow: ## send N events one every 500 ms
	$(CHRON) flood --slow $(N)

send-security-event: ## security.login: to the security and catch-all routes
	$(CHRON) send --type security

send-user-event: ## user.created: to the users and catch-all routes
	$(CHRON) send --type user

send-billing-event: ## billing.charge: to the billing and catch-all routes
	$(CHRON) send --type billing

bench: ## load test the running service: make bench ARGS="--duration 30s --batch 100"
	$(CHRON) bench $(ARGS)

## Configuration
show-routes: ## the routes of the effective routing configuration
	$(CHRON) routes

show-consumers: ## the consumer roles and what this role consumes
	$(CHRON) consumers

info: ## the effective configuration, secrets masked
	$(CHRON) info
