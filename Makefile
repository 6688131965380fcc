# Chronicle's Makefile. Targets keep the seed's recipe names; variables
# (transport, store, role, N, ...) compose like the seed's just variables:
#   make transport=rabbitmq role=security consumers N=2
# See README.md, or `make help`.

GO ?= go
BIN := bin/chronicle

.PHONY: help build run test check fmt vet
help: ## list the targets
	@grep -hE '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: ## build bin/chronicle
	$(GO) build -o $(BIN) ./cmd/chronicle

run: ## run Chronicle (full mode; embedded SQLite + in-process queues by default)
	$(GO) run ./cmd/chronicle serve

test: ## run the whole test suite (starts local PostgreSQL and RabbitMQ)
	scripts/test.sh

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet
	$(GO) vet ./...

check: ## fmt check + vet + the whole test suite
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run make fmt"; exit 1; }
	$(GO) vet ./...
	scripts/test.sh
