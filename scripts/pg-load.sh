#!/usr/bin/env bash
# pg-load.sh: load N synthetic audit events into the audit_events table of
# a Chronicle PostgreSQL database, to measure GET /events on a big table
# (issue "GET /events latency on >=1M rows").
#
#   DATABASE_URL=postgres://user:pass@127.0.0.1:5432/chronicle scripts/pg-load.sh 1000000
#
# The schema must exist (`chronicle migrate`, or start Chronicle once with
# CHRONICLE_STORE=postgres). Rows are added to what is there, in
# transactions of CHUNK rows (default 100000), then the table is ANALYZEd.
#
# The rows look like production traffic: time-ordered UUIDv7 ids;
# microsecond timestamps spread over the last DAYS days (default 30) in
# insertion order; a few thousand actors of which a handful do most of the
# work; event types weighted like a real mix (mostly logins, some billing);
# resource ids with per-type cardinality (a session has a couple of
# events, documents and users are skewed toward popular ones); three
# consecutive events per correlation id;
# an entity on one event in five; metadata on half of them.
set -euo pipefail

usage() { echo "usage: DATABASE_URL=postgres://... $0 ROWS   (CHUNK, DAYS optional)" >&2; exit 2; }

rows=${1:-}
[[ $rows =~ ^[1-9][0-9]*$ ]] || usage
chunk=${CHUNK:-100000}
days=${DAYS:-30}
[[ $chunk =~ ^[1-9][0-9]*$ ]] || { echo "CHUNK must be a positive integer" >&2; exit 2; }
[[ $days =~ ^[1-9][0-9]*$ ]] || { echo "DAYS must be a positive integer" >&2; exit 2; }
: "${DATABASE_URL:?DATABASE_URL must name the Chronicle database, e.g. postgres://user:pass@127.0.0.1:5432/chronicle}"
command -v psql >/dev/null || { echo "psql is needed (apt-get install postgresql-client)" >&2; exit 1; }

# Never print the password.
shown=$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:xxxxx@#; s#(password=)[^& ]*#\1xxxxx#g')

pg() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

if [ "$(pg -Atc "SELECT to_regclass('audit_events') IS NOT NULL")" != t ]; then
  echo "pg-load: $shown has no audit_events table: run \`chronicle migrate\` first" >&2
  exit 1
fi

before=$(pg -Atc "SELECT count(*) FROM audit_events")
echo "pg-load: adding $rows rows to audit_events in $shown ($before there already)"
start=$(date +%s.%N)
since() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The rows of one chunk: g runs over [lo, hi] of 1..rows, and g's place in
# 1..rows sets the timestamp, so the table grows in time order like a real
# one. power(random(), k) skews a choice toward its first values.
load_chunk() {
  local lo=$1 hi=$2
  pg -v lo="$lo" -v hi="$hi" -v total="$rows" -v days="$days" <<'SQL'
INSERT INTO audit_events (id, actor, action, resource_type, resource_id, timestamp, event_type, correlation_id, entity_key, metadata)
SELECT
    -- UUIDv7: 48-bit Unix milliseconds, version 7, variant 10, random bits.
    (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(random()::text), 1, 3)
        || to_hex(8 + floor(random() * 4)::int)
        || substr(md5(random()::text), 1, 15))::uuid,
    actor,
    split_part(event_type, '.', 2),
    split_part(event_type, '.', 1),
    CASE split_part(event_type, '.', 1)
        WHEN 'security' THEN 'session-' || substr(md5((g / 2)::text), 1, 12)
        WHEN 'user'     THEN 'u-'   || floor(50000  * power(random(), 2))::int
        WHEN 'document' THEN 'doc-' || floor(200000 * power(random(), 3))::int
        ELSE                 'inv-' || floor(100000 * random())::int
    END,
    ts,
    event_type,
    md5('corr' || (g / 3))::uuid::text,
    CASE WHEN random() < 0.2 THEN 'org:' || floor(500 * power(random(), 2))::int END,
    CASE WHEN random() < 0.5 THEN jsonb_build_object(
        'ip', '10.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int,
        'user_agent', (ARRAY['Mozilla/5.0', 'curl/8.5.0', 'okhttp/4.12', 'Go-http-client/2.0'])[1 + floor(random() * 4)::int])
    END
FROM (
    SELECT g,
           now() - make_interval(days => :days)
               + (g::float8 / :total) * make_interval(days => :days)
               + floor(random() * 1000000) * interval '1 microsecond' AS ts,
           CASE WHEN random() < 0.02 THEN 'svc-' || (ARRAY['billing', 'sync', 'backup', 'audit'])[1 + floor(random() * 4)::int] || '@system'
                ELSE 'user' || floor(5000 * power(random(), 4))::int || '@example.com'
           END AS actor,
           CASE
               WHEN r < 0.30 THEN 'security.login'
               WHEN r < 0.45 THEN 'security.logout'
               WHEN r < 0.48 THEN 'security.password_reset'
               WHEN r < 0.50 THEN 'security.mfa_failed'
               WHEN r < 0.55 THEN 'user.created'
               WHEN r < 0.65 THEN 'user.updated'
               WHEN r < 0.66 THEN 'user.deleted'
               WHEN r < 0.82 THEN 'document.viewed'
               WHEN r < 0.90 THEN 'document.updated'
               WHEN r < 0.91 THEN 'document.deleted'
               WHEN r < 0.97 THEN 'billing.charge'
               WHEN r < 0.99 THEN 'billing.invoice_sent'
               ELSE               'billing.refund'
           END AS event_type
    FROM (SELECT g, random() AS r FROM generate_series(:lo::bigint, :hi::bigint) AS g) AS s
) AS e
ON CONFLICT (id) DO NOTHING;
SQL
}

done_rows=0
while [ "$done_rows" -lt "$rows" ]; do
  hi=$(( done_rows + chunk < rows ? done_rows + chunk : rows ))
  load_chunk $((done_rows + 1)) "$hi"
  done_rows=$hi
  elapsed=$(since)
  echo "pg-load: $done_rows/$rows rows in ${elapsed}s ($(awk -v n="$done_rows" -v s="$elapsed" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 1) }') rows/s)"
done

pg -c "ANALYZE audit_events"
after=$(pg -Atc "SELECT count(*) FROM audit_events")
echo "pg-load: done in $(since)s: audit_events has $after rows"
