#!/usr/bin/env bash
# run.sh NAME CMD...: run a Chronicle process in the foreground and record
# its pid in .run/NAME.pid, so `make kill` stops only processes that make
# started (never by name).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
mkdir -p .run
pidfile=".run/$name.pid"
# Several processes of one kind (e.g. two consumers of a role) get
# numbered pid files.
i=1
while [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; do
  i=$((i + 1)); pidfile=".run/$name-$i.pid"
done
echo $$ > "$pidfile"
exec "$@"
