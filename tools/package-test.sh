#!/usr/bin/env bash
# tools/package-test.sh — the Debian package, end to end: installs the build
# dependencies (apt-get), builds tranche_*.deb with `dpkg-buildpackage -us -uc
# -b` from a copy of this tree in a temp directory (nothing is written here),
# checks it with lintian (warnings and errors fail; overrides carry reasons),
# installs it with apt, checks what it put where, runs `tranchectl init` and
# `tranched --check` from the installed paths as the tranche user, then purges
# it.  Refuses to run when a tranche package is already installed (it would
# replace an administrator's install).  Prints TAP-like "ok"/"FAILED" lines;
# exit 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
failed=0
ok() { echo "ok - $*"; }
check() { # check "what" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else echo "FAILED - $what"; failed=1; fi
}

if dpkg-query -W -f='${Status}' tranche 2>/dev/null | grep -q "install ok installed"; then
  echo "package-test: a tranche package is already installed; not touching it" >&2
  exit 1
fi

$sudo apt-get install -y -q --no-install-recommends debhelper dpkg-dev lintian >/dev/null
$sudo apt-get build-dep -y -q ./ >/dev/null

work=$(mktemp -d /tmp/tranche-pkg.XXXXXX)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then $sudo apt-get purge -y -q tranche >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"  # the tranche user reaches the test node below it

# The tracked files as they are in the work tree (a plain copy when this is
# not a git checkout), so the build never writes into the source tree.
src="$work/tranche"
mkdir "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
else
  tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$src"
fi

echo "# building the package in $work"
(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" dpkg-buildpackage -us -uc -b) \
  >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; echo "FAILED - dpkg-buildpackage"; exit 1; }
debs=("$work"/tranche_*.deb)
check "dpkg-buildpackage -us -uc -b made one tranche_*.deb (${debs[*]##*/})" test ${#debs[@]} -eq 1 -a -f "${debs[0]}"
deb=${debs[0]}
grep -E "completion" "$work/build.log" | sed 's/^/# /' || true

echo "# lintian"
check "lintian: no errors or warnings" lintian --fail-on error,warning --tag-display-limit 0 "$deb"

$sudo apt-get install -y -q "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; echo "FAILED - apt install"; exit 1; }
installed=1
ok "apt install ./${deb##*/}"

check "/usr/bin/tranched and /usr/bin/tranchectl are installed" test -x /usr/bin/tranched -a -x /usr/bin/tranchectl
check "the tranche system user exists" getent passwd tranche
check "/var/lib/tranche is 0700 tranche:tranche" \
  test "$(stat -c '%a %U %G' /var/lib/tranche)" = "700 tranche tranche"
check "/etc/tranche/tranched.conf is a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' tranche | grep -q '/etc/tranche/tranched.conf '"
check "the unit, its Debian drop-in, sysusers and tmpfiles entries are installed" \
  test -f /lib/systemd/system/tranched.service -a -f /lib/systemd/system/tranched.service.d/tranched-debian.conf \
       -a -f /usr/lib/sysusers.d/tranche.conf -a -f /usr/lib/tmpfiles.d/tranche.conf
check "the unit starts the installed binary with --config /etc/tranche/tranched.conf" \
  grep -q '^ExecStart=/usr/bin/tranched .*--config /etc/tranche/tranched.conf' \
       /lib/systemd/system/tranched.service.d/tranched-debian.conf
check "man pages tranched(8) and tranchectl(1)" \
  test -f /usr/share/man/man8/tranched.8.gz -a -f /usr/share/man/man1/tranchectl.1.gz
if /usr/bin/tranchectl completion bash >/dev/null 2>&1; then
  check "bash completion is installed" test -s /usr/share/bash-completion/completions/tranchectl
else
  check "no bash completion (tranchectl has no 'completion bash' yet)" \
    test ! -e /usr/share/bash-completion/completions/tranchectl
fi

node="$work/node"
check "tranchectl init (installed) creates a node" \
  /usr/bin/tranchectl init --datadir "$node" --chain package.test/ci --admin-out "$work/admin.key"
$sudo chown -R tranche:tranche "$node" || true
out=$($sudo runuser -u tranche -- /usr/bin/tranched --datadir "$node" --config /etc/tranche/tranched.conf --check 2>&1) || true
echo "$out" | sed 's/^/# /'
check "tranched --check (installed, as tranche, with /etc/tranche/tranched.conf) says configuration OK" \
  grep -q "configuration OK" <<<"$out"

$sudo apt-get purge -y -q tranche >/dev/null
installed=0
check "purge removes the binaries and the conffile" test ! -e /usr/bin/tranched -a ! -e /etc/tranche/tranched.conf

[ "$failed" = 0 ] && echo "package-test: all checks passed" || echo "package-test: FAILED" >&2
exit "$failed"
