#!/usr/bin/env bash
# Benchmark entry point (make bench): ensure wrk and the Express peer's
# node_modules exist, then hand every argument to bench/run.py.
#   bench/run.sh --duration 10 --peers express,service
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
    else
        sudo apt-get install -y wrk || { sudo apt-get update && sudo apt-get install -y wrk; }
    fi
fi

if [ ! -d bench/express/node_modules ]; then
    echo "bench: npm ci --prefix bench/express" >&2
    npm ci --prefix bench/express --no-audit --no-fund
fi

# 400 connections per peer plus the upstream side: lift the soft fd limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65535 2>/dev/null || true

# make bench passes its uv (PATH's, or the private .venv-bootstrap one).
UV="${UV:-$(command -v uv 2>/dev/null || echo .venv-bootstrap/bin/uv)}"
exec "$UV" run --frozen python bench/run.py "$@"
