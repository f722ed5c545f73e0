#!/usr/bin/env bash
# Serve Tailor: gunicorn (the API) and the learner side by side; Ctrl-C stops both.
set -euo pipefail
BIN="${TAILOR_BIN:-$(dirname "$0")/../.venv/bin}"  # TAILOR_BIN: another venv's bin/
PORT="${PORT:-8000}"
# 4 processes x 2 threads, each process listening on its own socket (SO_REUSEPORT), so
# that the kernel spreads new connections over the workers. With one shared socket the
# worker that woke first accepted most of a client's kept-alive connections and served
# them alone, on one core, to the end (docs/bench-rank.md, third pass). REUSE_PORT=0:
# one shared socket, as gunicorn does by default.
WORKERS="${WORKERS:-4}"
THREADS="${THREADS:-2}"
REUSE_PORT="${REUSE_PORT:-1}"
LEARNER="${LEARNER:-1}"  # 0: serve only (benchmarks)
# The learner yields the CPU to gunicorn: it works in batches, rank waits in a page render.
LEARNER_NICE="${LEARNER_NICE:-10}"
# gunicorn's access log is off unless TAILOR_ACCESS_LOG=1: its lines carry URLs, and
# erasure URLs carry unit ids (docs/security.md); it also cost about a tenth of a
# worker's Python time per request (docs/bench-rank.md). /metrics counts every request.
ACCESS_LOG=()
if [ "${TAILOR_ACCESS_LOG:-0}" = 1 ]; then ACCESS_LOG=(--access-logfile -); fi

LISTEN=()
if [ "$REUSE_PORT" = 1 ]; then
  # Sockets with SO_REUSEPORT share their port with any other such socket of this user:
  # refuse to start beside another server on it rather than split its traffic.
  if ! "$BIN/python" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
    echo "serve.sh: port ${PORT} is in use" >&2
    exit 1
  fi
  LISTEN=(--reuse-port)
fi

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
"$BIN/gunicorn" --config python:app.gunicorn_hooks --bind "127.0.0.1:${PORT}" "${LISTEN[@]}" \
  --workers "$WORKERS" --threads "$THREADS" --worker-class gthread --preload \
  "${ACCESS_LOG[@]}" --graceful-timeout 10 wsgi:app &
pids+=($!)
if [ "$LEARNER" != 0 ] && "$BIN/tailor" learn --help >/dev/null 2>&1; then
  nice -n "$LEARNER_NICE" "$BIN/tailor" learn &
  pids+=($!)
fi
echo "Tailor serving on http://127.0.0.1:${PORT} (Ctrl-C to stop)" >&2
wait -n "${pids[@]}"
