#!/usr/bin/python3
"""test_explorer.py - the explorer page (GET /) in headless Chromium.

Seeds the demo chain of tools/demo.sh (an issuer, two investors, a term loan,
two issues, a trade, a coupon) with tranchectl, then drives the page with
playwright-core (npm, installed by tools/explorer-test-deps.sh into the build
directory) and Debian's chromium (tests/explorer/check.js): it loads and shows
the asset and its holders with a cap-table chart, the journal gains a row when
a tx is submitted, an entry shows its tx, its checks pass in the browser and a
tampered proof, checkpoint or entry fails.  Leaves a screenshot of the page in
the build directory (explorer.png).  Only 127.0.0.1.  Prints TAP.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSET = "ACME-TL-2029"

if not os.path.exists("/usr/bin/chromium") or shutil.which("node") is None:
    T.skip_all("needs Debian's chromium and node (tools/deps.sh)")
MODULES = os.environ.get("EXPLORER_NODE_MODULES") or os.path.join(os.environ.get("MESON_BUILD_ROOT", "/tmp"),
                                                                  "explorer-test-modules")
r = subprocess.run([os.path.join(ROOT, "tools", "explorer-test-deps.sh"), MODULES], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=600)
if r.returncode != 0:
    T.skip_all("playwright-core could not be installed from npm: %s" % r.stderr.decode()[-300:].replace("\n", " "))


def seed(n):
    """The demo chain of tools/demo.sh, made with tranchectl."""
    ctl, rpc = os.environ["TRANCHECTL"], "127.0.0.1:%d" % n.port
    kd = os.path.join(n.tmp, "keys")
    os.makedirs(kd, exist_ok=True)

    def key(name):
        out = subprocess.run([ctl, "keygen", "--out", os.path.join(kd, name + ".key")], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
        return out.split()[-1]

    def run(*a):
        subprocess.run([ctl] + list(a) + ["--rpc", rpc], check=True, stdout=subprocess.DEVNULL, timeout=60)

    issuer, alice, bob = key("issuer"), key("alice"), key("bob")
    ik = os.path.join(kd, "issuer.key")
    for acct, role, j in ((issuer, "issuer", "US"), (alice, "investor", "GB"), (bob, "investor", "DE")):
        run("account", "open", "--key", n.admin_key_path, "--account", acct, "--roles", role, "--jurisdiction", j,
            "--kyc", "true")
    run("asset", "create", "--key", ik, "--asset", ASSET, "--name", "ACME Corp term loan 2029", "--kind", "term_loan",
        "--currency", "USD", "--principal", "1000000000", "--units", "1000000", "--coupon-bps", "750",
        "--maturity", "2029-06-30", "--rating", "BBB", "--risk-weight-pct", "100", "--jurisdictions", "US,GB,DE",
        "--min-units", "100")
    run("asset", "issue", "--key", ik, "--asset", ASSET, "--to", alice, "--units", "600000")
    run("asset", "issue", "--key", ik, "--asset", ASSET, "--to", bob, "--units", "400000")
    run("transfer", "--key", os.path.join(kd, "alice.key"), "--asset", ASSET, "--to", bob, "--units", "50000",
        "--memo", "secondary trade")
    run("asset", "distribute", "--key", ik, "--asset", ASSET, "--amount", "1875000", "--kind", "interest",
        "--memo", "Q1 coupon")
    return alice, bob


def main():
    shot = os.path.join(os.environ.get("MESON_BUILD_ROOT", tempfile_dir()), "explorer.png")
    with tc.Node(chain="demo.example/tranche") as n:
        n.init().start()
        alice, bob = seed(n)
        time.sleep(1.5)  # a checkpoint covering the demo entries (one a second while the journal grows)
        p = subprocess.Popen(["node", os.path.join(ROOT, "tests", "explorer", "check.js"), MODULES, str(n.port), shot,
                              ASSET, "%s:550000" % alice, "%s:450000" % bob],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for raw in p.stdout:
                line = raw.decode().rstrip("\n")
                if line == "ready-for-tx":
                    r = n.submit(n.tx("account.open", n.admin, account=tc.Key().pk, roles=["investor"],
                                      jurisdiction="FR", kyc=True), n.admin)
                    p.stdin.write(b"tx %d\n" % r["seq"])
                    p.stdin.flush()
                    time.sleep(1.2)  # and a checkpoint covering it, for the entry page
                elif line.startswith("ok - "):
                    T.check(True, line[5:])
                elif line.startswith("not ok - "):
                    what, _, detail = line[9:].partition(" # ")
                    T.check(False, what, detail)
                else:
                    T.comment(line)
            rc = p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        err = p.stderr.read().decode()
        T.check(rc == 0 and T.n >= 15, "the browser checks ran to the end (%d)" % T.n, err[-2000:])
        T.check(os.path.exists(shot), "a screenshot of the page: %s" % shot)
    T.done()


def tempfile_dir():
    import tempfile
    return tempfile.gettempdir()


if __name__ == "__main__":
    main()
