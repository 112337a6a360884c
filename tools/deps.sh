#!/usr/bin/env bash
# tools/deps.sh — installs what tranche needs on Debian 12 (only what is missing).
set -euo pipefail
packages=(build-essential meson ninja-build pkg-config libsodium-dev libsqlite3-dev libuv1-dev
          libcjson-dev python3 python3-cryptography python3-nacl python3-pytest sqlite3 clang libclang-rt-14-dev netcat-openbsd)
packages+=(faketime)  # the clock-step tests (libfaketime, monotonic clock left alone)
packages+=(node-llhttp)  # llhttp 8.1 C sources, compiled into tranched (HTTP on the JSON-RPC port)
packages+=(curl python3-requests python3-prometheus-client)
packages+=(python3-websocket)  # test_ws: a standard WebSocket client
packages+=(chromium nodejs)  # test_explorer: the page in headless Chromium, driven by playwright-core from npm (tools/explorer-test-deps.sh)
command -v npm >/dev/null || packages+=(npm)  # Debian's; a nodejs that ships its own npm keeps it
packages+=(libraft-dev)  # C-Raft 0.15: the cluster's consensus (daemon/cluster.c) and its simulator (raft/fixture.h)
packages+=(iproute2)  # test_cluster_partition: ip netns, veth pairs and a bridge for real network cuts (skipped without it)
packages+=(nettle-dev)  # SHA-1 and base64 for the WebSocket handshake (GET /ws)  # test_http: standard HTTP clients, the Prometheus text parser
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
