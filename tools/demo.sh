#!/usr/bin/env bash
# tools/demo.sh — build tranche, create a demo chain in ./demo-data (once) and
# run the daemon in the foreground on 127.0.0.1:7707.  Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
if [ ! -d demo-data ]; then
  build/tools/tranchectl init --datadir demo-data --chain demo.example/tranche --admin-out demo-admin.key
  echo "admin key written to demo-admin.key (outside the data directory)"
fi
echo "serving on 127.0.0.1:7707 — try: build/tools/tranchectl status"
exec build/daemon/tranched --datadir demo-data --listen 127.0.0.1:7707
