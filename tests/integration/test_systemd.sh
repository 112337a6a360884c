#!/usr/bin/env bash
# test_systemd.sh — `systemd-analyze verify` on the unit meson generated, with
# ExecStart pointed at the built binary (the installed path may not exist
# here).  TAP; skips when systemd-analyze is absent.
set -u
unit=$1 tranched=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "1..0 # SKIP systemd-analyze not installed"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -e "s|^ExecStart=[^ ]*|ExecStart=$tranched|" -e "s|^ExecReload=/bin/kill|ExecReload=$(command -v kill)|" \
  "$unit" > "$dir/tranched.service"
out=$(systemd-analyze verify --man=no "$dir/tranched.service" 2>&1)
rc=$?
# Outside a booted systemd (containers, CI) verify cannot load the default
# dependency targets; that says nothing about our unit, so only those lines are dropped.
problems=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'sysinit.target' || true)
if [ -z "$problems" ]; then echo "ok 1 - systemd-analyze verify accepts tranched.service"
else printf 'not ok 1 - systemd-analyze verify: %s (rc %d)\n' "$problems" "$rc"; fi
grep -q '^Type=notify' "$unit" && echo "ok 2 - Type=notify" || echo "not ok 2 - Type=notify"
for opt in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes Restart=on-failure User=tranche StateDirectory=tranche; do
  grep -q "^$opt" "$unit" && echo "ok - $opt" || echo "not ok - $opt missing"
done
echo "1..8"
