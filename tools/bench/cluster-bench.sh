#!/usr/bin/env bash
# tools/bench/cluster-bench.sh — a 3-node cluster on this one machine against
# a single node, in the same run (#14's throughput target: >= 0.5), plus a
# follower's CPU per applied tx by thread, from /proc.
#
#   tools/bench/cluster-bench.sh [BUILD_DIR] [TXS]      (defaults: build 40000)
#
# Both loads are `tranche-bench --lean` (one poll loop, <= 0.1 cores): first
# against a single node it spawns, then against the cluster's leader.  The
# nodes run with --workers 2; on a 2-core machine the three processes share
# the cores, so the ratio is what replication costs here, not on 3 hosts.
set -euo pipefail
build=${1:-build}
txs=${2:-40000}
bin=$(cd "$build" && pwd)
ctl=$bin/tools/tranchectl
tranched=$bin/daemon/tranched
bench=$bin/tools/bench/tranche-bench
tmp=$(mktemp -d /tmp/tranche-cluster-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rpc_call() { # HOST:PORT METHOD -> the response line
  python3 - "$1" "$2" <<'EOF'
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[2]}).encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    buf += s.recv(1 << 20)
print(buf.decode().strip())
EOF
}
# CPU ticks by thread name of a process: "name ticks" lines
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    awk '{ n = $2; gsub(/[()]/, "", n); sub(/[0-9]+$/, "", n); print n, $14 + $15 }' "$t/stat" 2>/dev/null || true
  done | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }'
}

echo "== single node: tranche-bench --lean --txs $txs"
"$bench" --lean --txs "$txs" --tranched "$tranched" --tranchectl "$ctl" | tee "$tmp/single.out"
rate_of() { grep -o 'end-to-end [0-9]* tx/s' "$1" | awk '{ print $2 }' | tail -1; }
single=$(rate_of "$tmp/single.out")

echo "== 3-node cluster"
args=()
declare -A rpc
for i in 1 2 3; do
  rp=$(free_port); pp=$(free_port)
  rpc[$i]=127.0.0.1:$pp
  args+=(--node "$i=127.0.0.1:$rp,127.0.0.1:$pp,$tmp/n$i")
done
"$ctl" cluster init --chain bench.example/cluster --admin-out "$tmp/admin.key" "${args[@]}" >/dev/null 2>&1
declare -A pid
for i in 1 2 3; do
  "$tranched" --datadir "$tmp/n$i" --workers 2 >"$tmp/n$i.log" 2>&1 &
  pid[$i]=$!
  pids+=($!)
done
leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    if rpc_call "${rpc[$i]}" node.status 2>/dev/null | grep -q '"role":"leader","term":[0-9]*,"leader":[0-9]*,"commit":[0-9]*,"applied":[0-9]*,"last_index":[0-9]*,"taking_writes":true'; then
      leader=$i
      break 2
    fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader"; tail -5 "$tmp"/n*.log; exit 1; }
follower=$(( leader % 3 + 1 ))
echo "leader: node $leader (pid ${pid[$leader]}), follower measured: node $follower (pid ${pid[$follower]})"
committed() { rpc_call "${rpc[$follower]}" node.status | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["counters"]["committed_txs"])'; }
c0=$(committed)
thread_ticks "${pid[$follower]}" >"$tmp/f0"
"$bench" --lean --txs "$txs" --rpc "${rpc[$leader]}" --admin-key "$tmp/admin.key" --pid "${pid[$leader]}" | tee "$tmp/cluster.out"
sleep 2 # the follower applies the last batches
thread_ticks "${pid[$follower]}" >"$tmp/f1"
c1=$(committed)
clustered=$(rate_of "$tmp/cluster.out")
hz=$(getconf CLK_TCK)
echo "== follower (node $follower): CPU per applied tx by thread, µs ($((c1 - c0)) txs applied)"
join "$tmp/f0" "$tmp/f1" 2>/dev/null | awk -v n=$((c1 - c0)) -v hz="$hz" \
  '{ d = $3 - $2; if (n > 0 && d > 0) printf "  %-12s %8.1f\n", $1, d * 1e6 / hz / n; t += d } END { if (n > 0) printf "  %-12s %8.1f\n", "total", t * 1e6 / hz / n }'
echo "== throughput: single node ${single:-?} tx/s, 3-node cluster ${clustered:-?} tx/s"
python3 -c "import sys; a, b = sys.argv[1:]; print('cluster / single = %.2f' % (float(b) / float(a)))" "${single:-0}" "${clustered:-0}" || true
