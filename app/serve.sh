#!/usr/bin/env bash
# Serve Tailor: gunicorn (the API) and the learner side by side; Ctrl-C stops both.
set -euo pipefail
BIN="${TAILOR_BIN:-$(dirname "$0")/../.venv/bin}"  # TAILOR_BIN: another venv's bin/
PORT="${PORT:-8000}"
# 4 processes x 2 threads: clients that keep few connections open (a pool, a benchmark)
# are pinned to the workers that accepted them; with 2 workers one could get them all and
# leave a core idle (docs/bench-rank.md, third pass). 4 spread the load over both cores.
WORKERS="${WORKERS:-4}"
THREADS="${THREADS:-2}"
LEARNER="${LEARNER:-1}"  # 0: serve only (benchmarks)
# gunicorn's access log is off unless TAILOR_ACCESS_LOG=1: its lines carry URLs, and
# erasure URLs carry unit ids (docs/security.md); it also cost about a tenth of a
# worker's Python time per request (docs/bench-rank.md). /metrics counts every request.
ACCESS_LOG=()
if [ "${TAILOR_ACCESS_LOG:-0}" = 1 ]; then ACCESS_LOG=(--access-logfile -); fi

# /metrics adds up the counters of every gunicorn worker from files in this directory
# (docs/operations.md); a fresh start begins from zero.
if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  PROMETHEUS_MULTIPROC_DIR="$(mktemp -d -t tailor-metrics.XXXXXX)"
  own_metrics_dir=1
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

pids=()
stop() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  if [ -n "${own_metrics_dir:-}" ]; then rm -rf "$PROMETHEUS_MULTIPROC_DIR"; fi
}
trap stop INT TERM EXIT

# --preload: the app is imported once and workers are forked from it, so a worker that
# dies is replaced in milliseconds instead of re-importing everything (seconds). The hooks
# freeze that imported heap out of the garbage collector's reach (app/gunicorn_hooks.py).
"$BIN/gunicorn" --config python:app.gunicorn_hooks --bind "127.0.0.1:${PORT}" \
  --workers "$WORKERS" --threads "$THREADS" --worker-class gthread --preload \
  "${ACCESS_LOG[@]}" --graceful-timeout 10 wsgi:app &
pids+=($!)
if [ "$LEARNER" != 0 ] && "$BIN/tailor" learn --help >/dev/null 2>&1; then
  "$BIN/tailor" learn &
  pids+=($!)
fi
echo "Tailor serving on http://127.0.0.1:${PORT} (Ctrl-C to stop)" >&2
wait -n "${pids[@]}"
