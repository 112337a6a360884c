#!/usr/bin/env bash
# tools/demo.sh — build tranche, create a demo chain in ./demo-data with demo
# keys in ./demo-keys (once: an issuer, two investors, a term loan split into
# units, an issue, a trade and a coupon), then run the daemon on
# 127.0.0.1:7707 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
ctl=build/tools/tranchectl
listen=127.0.0.1:7707
fresh=0
if [ ! -d demo-data ]; then
  mkdir -p demo-keys && chmod 700 demo-keys
  $ctl init --datadir demo-data --chain demo.example/tranche --admin-out demo-keys/admin.key >/dev/null
  fresh=1
fi
build/daemon/tranched --datadir demo-data --listen "$listen" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 50); do $ctl status --rpc "$listen" >/dev/null 2>&1 && break; sleep 0.1; done

if [ $fresh = 1 ]; then
  echo "seeding demo data (keys in demo-keys/)"
  k() { $ctl keygen --out "demo-keys/$1.key"; }
  issuer=$(k issuer); alice=$(k alice); bob=$(k bob)
  run() { $ctl "$@" --rpc "$listen" >/dev/null; }
  run account open --key demo-keys/admin.key --account "$issuer" --roles issuer --jurisdiction US --kyc true
  run account open --key demo-keys/admin.key --account "$alice" --roles investor --jurisdiction GB --kyc true
  run account open --key demo-keys/admin.key --account "$bob" --roles investor --jurisdiction DE --kyc true
  run asset create --key demo-keys/issuer.key --asset ACME-TL-2029 --name "ACME Corp term loan 2029" \
      --kind term_loan --currency USD --principal 1000000000 --units 1000000 --coupon-bps 750 \
      --maturity 2029-06-30 --rating BBB --risk-weight-pct 100 --jurisdictions US,GB,DE --min-units 100
  run asset issue --key demo-keys/issuer.key --asset ACME-TL-2029 --to "$alice" --units 600000
  run asset issue --key demo-keys/issuer.key --asset ACME-TL-2029 --to "$bob" --units 400000
  run transfer --key demo-keys/alice.key --asset ACME-TL-2029 --to "$bob" --units 50000 --memo "secondary trade"
  run asset distribute --key demo-keys/issuer.key --asset ACME-TL-2029 --amount 1875000 --kind interest --memo "Q1 coupon"
fi
echo "tranched serving demo.example/tranche on $listen (Ctrl-C stops it). Try:"
echo "  $ctl asset show ACME-TL-2029"
echo "  $ctl asset holders ACME-TL-2029"
echo "  echo '{\"jsonrpc\":\"2.0\",\"method\":\"ledger.head\",\"id\":1}' | nc -q1 127.0.0.1 7707"
echo "  the explorer: http://$listen/"
wait $pid
