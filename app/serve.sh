#!/usr/bin/env bash
# Serve Tailor: gunicorn (the API) and the learner side by side; Ctrl-C stops both.
set -euo pipefail
BIN="$(dirname "$0")/../.venv/bin"
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-2}"
THREADS="${THREADS:-4}"

pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop INT TERM EXIT

"$BIN/gunicorn" --bind "127.0.0.1:${PORT}" --workers "$WORKERS" --threads "$THREADS" \
  --worker-class gthread --access-logfile - --graceful-timeout 10 wsgi:app &
pids+=($!)
if "$BIN/tailor" learn --help >/dev/null 2>&1; then
  "$BIN/tailor" learn &
  pids+=($!)
fi
echo "Tailor serving on http://127.0.0.1:${PORT} (Ctrl-C to stop)" >&2
wait -n "${pids[@]}"
