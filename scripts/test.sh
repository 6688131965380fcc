#!/usr/bin/env bash
# test.sh: Chronicle's whole test suite, against a real PostgreSQL and
# RabbitMQ (started, or installed with apt, by services.sh). Every test gets
# its own database/schema or vhost, so packages run in parallel. No test
# skips for want of a service: without one it fails and says why.
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh ./sqlite/  only some packages
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/services.sh up
scripts/services.sh tools

me=$(id -un)
export CHRONICLE_TEST_DATABASE_URL=${CHRONICLE_TEST_DATABASE_URL:-postgres://$me@127.0.0.1:5432/postgres?sslmode=disable}
if ! psql "$CHRONICLE_TEST_DATABASE_URL" -Atc 'select 1' >/dev/null 2>&1; then
  # No TCP trust for this role: use the local socket (peer authentication).
  export CHRONICLE_TEST_DATABASE_URL="postgres:///postgres?host=/var/run/postgresql&user=$me"
fi
export CHRONICLE_TEST_RABBITMQ_URL=${CHRONICLE_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}
export CHRONICLE_TEST_RABBITMQ_API=${CHRONICLE_TEST_RABBITMQ_API:-http://guest:guest@127.0.0.1:15672/api}

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
echo "== go test -race ${pkgs[*]}"
go test -race -count=1 -timeout 12m "${pkgs[@]}"

if [ $# -eq 0 ]; then
  echo "== fuzz targets, briefly (regressions only; corpus in testdata/fuzz)"
  for target in integrity:FuzzCanonical routing:FuzzMatch routing:FuzzParse ingest:FuzzIngest ingest:FuzzCheckForeign ingest:FuzzCheckUTF8 httpapi:FuzzPostEvents httpapi:FuzzQuery; do
    pkg=${target%%:*} fn=${target##*:}
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "${FUZZTIME:-5s}" "./$pkg/" >/dev/null
  done
fi
echo "== all tests passed"
