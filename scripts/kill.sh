#!/usr/bin/env bash
# kill.sh: stop (SIGTERM, so they drain) the Chronicle processes that
# scripts/run.sh started, from their pid files. A pid file whose process is
# gone, or is no longer a chronicle process, is just removed.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
stopped=0
for f in .run/*.pid; do
  pid=$(cat "$f")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q chronicle; then
    kill -TERM "$pid" && echo "stopped $(basename "$f" .pid) (pid $pid)" && stopped=$((stopped + 1))
  fi
  rm -f "$f"
done
[ "$stopped" -gt 0 ] || echo "no Chronicle process started by make is running"
