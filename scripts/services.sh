#!/usr/bin/env bash
# services.sh up|down|status|tools: the local PostgreSQL and RabbitMQ that the
# rabbitmq/postgres modes and the test suite use. `up` starts them (on
# Debian, installing them with apt when they are missing), enables
# RabbitMQ's management plugin (tests create a vhost each through it) and
# makes sure a PostgreSQL role exists for the current user.
# Only local services are touched. For Docker users: docker-compose.yml.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

wait_for() { # wait_for NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$((secs * 4))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$name did not come up within ${secs}s"; return 1
}

apt_install() {
  command -v apt-get >/dev/null || { log "cannot install $*: no apt-get here; install them or use docker-compose.yml"; return 1; }
  log "installing $* with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  }
}

pg_up() {
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql postgresql-client; fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for PostgreSQL 30 pg_isready -q -h 127.0.0.1 -p 5432
  fi
  # A superuser role named after the current user, reachable over the
  # socket without a password (peer auth), for tests and `make pg-shell`.
  local me; me=$(id -un)
  if ! psql -h 127.0.0.1 -U "$me" -d postgres -Atc 'select 1' >/dev/null 2>&1 &&
     ! psql -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    log "creating PostgreSQL role $me"
    as_root su postgres -c "createuser --superuser '$me'" || true
  fi
}

rabbit_up() {
  if ! command -v rabbitmq-server >/dev/null; then apt_install rabbitmq-server; fi
  if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached || true
    wait_for RabbitMQ 60 as_root rabbitmqctl -q status
  fi
  if ! curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; then
    log "enabling the RabbitMQ management plugin (the tests create and delete vhosts through it)"
    as_root rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
    wait_for "RabbitMQ management API" 60 curl -fs -u guest:guest http://127.0.0.1:15672/api/overview
  fi
  wait_for "RabbitMQ AMQP port" 60 bash -c '</dev/tcp/127.0.0.1/5672'
}

# tools_up installs the programs tests drive besides the services:
# promtool (Debian's prometheus package) to lint /metrics, amqp-publish
# (amqp-tools), an AMQP producer that is not Chronicle's code, and a
# headless Chromium for the console's browser tests.
tools_up() {
  if ! command -v promtool >/dev/null; then apt_install prometheus; fi
  if ! command -v amqp-publish >/dev/null; then apt_install amqp-tools; fi
  if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then apt_install chromium; fi
}

case "${1:-up}" in
  up) pg_up; rabbit_up; log "PostgreSQL and RabbitMQ are up" ;;
  tools) tools_up ;;
  down)
    as_root rabbitmqctl -q stop >/dev/null 2>&1 || true
    if command -v pg_ctlcluster >/dev/null; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main stop || true
    fi
    log "stopped" ;;
  status)
    pg_isready -h 127.0.0.1 -p 5432 || true
    as_root rabbitmqctl -q status >/dev/null 2>&1 && echo "RabbitMQ: running" || echo "RabbitMQ: not running" ;;
  *) echo "usage: $0 up|down|status|tools" >&2; exit 2 ;;
esac
