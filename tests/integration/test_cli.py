#!/usr/bin/python3
"""test_cli.py - tranchectl end to end against a real tranched (PROTOCOL.md section 7).

Covers init (--admin-out and its refusals), keygen, every tx-building command,
offline sign/--print + submit, refusals (exit 1, `refused: <reason>` on
stderr), usage errors (exit 2), connection failures (exit 3), queries in human
and --json form, the offline audit `verify` (a good live directory, a copy
with one entry's tx bytes changed, an online backup taken under load), the
light-client commands (checkpoint verify, proof inclusion/consistency/
export/verify), and the control socket (log-level, backup, stop).
Standard library (+ trclient); prints TAP.
"""
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
CTL = os.environ["TRANCHECTL"]
DOC_HASH = "ab" * 32


def ctl(*args, stdin=None, timeout=120):
    r = subprocess.run([CTL] + [str(a) for a in args], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def ok(res, msg):
    rc, out, err = res
    return T.check(rc == 0, msg, "exit %d\nstdout: %s\nstderr: %s" % (rc, out[-2000:], err[-2000:]))


def exits(res, code, msg, stderr_has=None, stdout_has=None):
    rc, out, err = res
    good = rc == code and (stderr_has is None or stderr_has in err) and (stdout_has is None or stdout_has in out)
    return T.check(good, msg, "exit %d (want %d)\nstdout: %s\nstderr: %s" % (rc, code, out[-2000:], err[-2000:]))


def as_json(res):
    try:
        return json.loads(res[1])
    except ValueError:
        return None


# ---------------------------------------------------------------- init, keygen

def init_cases(tmp):
    d = os.path.join(tmp, "n1")
    key = os.path.join(tmp, "admin1.key")
    rc, out, err = r = ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin-out", key)
    ok(r, "init --admin-out outside DIR succeeds")
    pk = tc.Key.load(key).pk if os.path.exists(key) else None
    T.eq(out.strip().splitlines()[-1:] if out.strip() else [], [pk], "init prints the admin public key alone on a line")
    T.eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, "admin key file is mode 0600")
    T.eq(stat.S_IMODE(os.stat(d).st_mode), 0o700, "data directory is mode 0700")
    for name in ("tranche.db", "node.key", "tranche.conf"):
        T.check(os.path.exists(os.path.join(d, name)), "init created %s" % name)

    d2 = os.path.join(tmp, "n2")
    exits(ctl("init", "--datadir", d2, "--chain", "cli.example/t", "--admin-out", os.path.join(d2, "a.key")), 1,
          "init refuses --admin-out inside a new DIR")
    T.check(not os.path.exists(d2), "the refused init created nothing")
    exits(ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin-out", os.path.join(d, "a.key")), 1,
          "init refuses --admin-out inside an existing DIR", stderr_has="inside")
    link = os.path.join(tmp, "link-to-n1")
    os.symlink(d, link)
    exits(ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin-out", os.path.join(link, "a.key")), 1,
          "init refuses --admin-out reaching DIR through a symlink", stderr_has="inside")
    k3 = os.path.join(tmp, "admin3.key")
    exits(ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin-out", k3), 1,
          "init refuses an existing DIR", stderr_has="exists")
    T.check(not os.path.exists(k3), "the refused init left no key file behind")
    exits(ctl("init", "--datadir", os.path.join(tmp, "n4"), "--chain", "cli.example/t", "--admin-out", key), 1,
          "init refuses an existing --admin-out file", stderr_has="exists")
    exits(ctl("init", "--datadir", os.path.join(tmp, "n5"), "--chain", "cli.example/t", "--admin", pk,
              "--admin-out", os.path.join(tmp, "x.key")), 2, "init with both --admin and --admin-out is a usage error")
    exits(ctl("init", "--datadir", os.path.join(tmp, "n6"), "--chain", "Bad Chain", "--admin", pk), 2,
          "init with a bad chain id is a usage error")
    T.check(not os.path.exists(os.path.join(tmp, "n6")), "the bad chain id created nothing")
    r = ctl("init", "--datadir", os.path.join(tmp, "n7"), "--chain", "cli.example/t", "--admin", pk)
    ok(r, "init --admin PUBKEY succeeds")
    T.eq(r[1].strip(), pk, "init --admin prints that key")

    kf = os.path.join(tmp, "k.key")
    r = ctl("keygen", "--out", kf)
    ok(r, "keygen succeeds")
    T.eq(r[1].strip(), tc.Key.load(kf).pk, "keygen prints the public key of the file it wrote")
    T.eq(stat.S_IMODE(os.stat(kf).st_mode), 0o600, "keygen file is mode 0600")
    exits(ctl("keygen", "--out", kf), 1, "keygen refuses to overwrite a key")


def help_cases():
    rc, out, err = ctl("--help")
    T.check(rc == 0 and "exit codes" in out and "verify" in out, "top-level --help lists commands and exit codes")
    exits(ctl(), 2, "no command is a usage error")
    exits(ctl("frobnicate"), 2, "an unknown command is a usage error")
    cmds = ["init", "keygen", "account open", "account update", "account recover", "asset create",
            "asset update", "asset issue", "asset redeem", "asset distribute", "asset status", "transfer",
            "force-transfer", "freeze", "sign", "submit", "account show", "account history", "asset show",
            "asset list", "asset holders", "asset payouts", "exposure", "ledger head", "ledger entry",
            "ledger checkpoint", "status", "rpc", "verify", "checkpoint verify", "proof inclusion",
            "proof consistency", "proof export", "proof verify", "backup", "log-level", "stop"]
    bad = [c for c in cmds if not (lambda r: r[0] == 0 and "usage:" in r[1] and "example:" in r[1])(
        ctl(*(c.split() + ["--help"])))]
    T.eq(bad, [], "every subcommand's --help shows usage and an example")
    exits(ctl("transfer", "--bogus", "1"), 2, "an unknown option is a usage error")


# ---------------------------------------------------------------- txs

class Ctx:
    pass


def tx_cases(node, cx):
    rpc = ["--rpc", "127.0.0.1:%d" % node.port]
    cx.rpc = rpc
    admin = node.admin_key_path
    cx.issuer_key = os.path.join(node.tmp, "issuer.key")
    cx.inv_key = os.path.join(node.tmp, "inv.key")
    cx.issuer = ctl("keygen", "--out", cx.issuer_key)[1].strip()
    cx.inv = ctl("keygen", "--out", cx.inv_key)[1].strip()
    r = ctl("account", "open", *rpc, "--key", admin, "--account", cx.issuer, "--roles", "issuer,investor",
            "--jurisdiction", "US", "--kyc", "true")
    ok(r, "account open (issuer) via the CLI")
    T.check("accepted" in r[1] and "seq" in r[1], "human receipt names the seq", r[1])
    r = ctl("account", "open", *rpc, "--key", admin, "--account", cx.inv, "--roles", "investor",
            "--jurisdiction", "GB", "--kyc", "true", "--json")
    rec = as_json(r)
    T.check(r[0] == 0 and isinstance(rec, dict) and rec.get("seq") == 3 and rec.get("duplicate") is False,
            "account open --json prints the receipt as JSON", r)
    exits(ctl("account", "open", *rpc, "--key", admin, "--account", cx.inv, "--roles", "investor",
              "--jurisdiction", "GB", "--kyc", "true"), 1, "opening an existing account is refused with exit 1",
          stderr_has="refused: exists:")
    r = ctl("asset", "create", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--name", "Acme term loan",
            "--kind", "term_loan", "--currency", "USD", "--principal", "100000000", "--units", "1000",
            "--coupon-bps", "650", "--maturity", "2030-06-30", "--rating", "BB", "--risk-weight-pct", "100",
            "--jurisdictions", "US,GB", "--min-units", "1", "--document", "prospectus=" + DOC_HASH)
    ok(r, "asset create with rules and a document")
    ok(ctl("asset", "issue", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--to", cx.issuer, "--units", "600"),
       "asset issue")
    r = ctl("transfer", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--to", cx.inv, "--units", "100",
            "--memo", "first sale", "--id", "sale-1", "--json")
    rec = as_json(r)
    cx.transfer_txid = rec.get("txid") if isinstance(rec, dict) else None
    moved = {h["account"]: h["units"] for h in rec["effects"]["holdings"]} if rec else {}
    T.check(r[0] == 0 and moved == {cx.inv: 100, cx.issuer: 500}, "transfer moves units", r)
    exits(ctl("transfer", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--to", cx.inv, "--units", "100",
              "--id", "sale-1"), 1, "reusing an id for a different tx is refused", stderr_has="refused: id_conflict:")
    exits(ctl("transfer", *rpc, "--key", cx.inv_key, "--asset", "LOAN-1", "--to", cx.issuer, "--units", "5000"), 1,
          "transfer over the holding is refused", stderr_has="refused: insufficient_units:")
    exits(ctl("transfer", *rpc, "--key", cx.inv_key, "--asset", "LOAN-1", "--to", cx.issuer, "--units", "1e3"), 2,
          "a non-integer amount is a usage error")
    exits(ctl("transfer", *rpc, "--key", cx.inv_key, "--asset", "LOAN-1", "--to", cx.issuer), 2,
          "a missing required option is a usage error")
    exits(ctl("account", "update", *rpc, "--key", admin, "--account", cx.inv, "--kyc", "maybe"), 2,
          "a bool that is not true/false is a usage error")
    exits(ctl("freeze", *rpc, "--key", cx.inv_key, "--asset", "LOAN-1", "--account", cx.inv, "--units", "1"), 1,
          "freeze by a non-agent is refused", stderr_has="refused: unauthorized:")
    ok(ctl("freeze", *rpc, "--key", admin, "--asset", "LOAN-1", "--account", cx.inv, "--units", "10"), "freeze")
    ok(ctl("force-transfer", *rpc, "--key", admin, "--asset", "LOAN-1", "--from", cx.inv, "--to", cx.issuer,
           "--units", "5", "--reason", "court order 7"), "force-transfer")
    r = ctl("asset", "distribute", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--amount", "1000",
            "--kind", "interest", "--memo", "Q1", "--json")
    rec = as_json(r)
    cx.dist_seq = rec.get("seq") if isinstance(rec, dict) else None
    T.check(r[0] == 0 and rec and rec["effects"]["distribution"]["amount"] == 1000, "asset distribute", r)
    ok(ctl("asset", "redeem", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--from", cx.issuer,
           "--units", "10", "--amount", "100000"), "asset redeem")
    ok(ctl("asset", "update", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--rating", "B",
           "--jurisdictions", "US,GB,DE"), "asset update (rating and rules)")
    ok(ctl("account", "update", *rpc, "--key", admin, "--account", cx.inv, "--jurisdiction", "DE"), "account update")
    ok(ctl("asset", "status", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--status", "matured"),
       "asset status matured")
    ok(ctl("asset", "status", *rpc, "--key", cx.issuer_key, "--asset", "LOAN-1", "--status", "active"),
       "asset status back to active")
    lost = ctl("keygen", "--out", os.path.join(node.tmp, "lost.key"))[1].strip()
    new = ctl("keygen", "--out", os.path.join(node.tmp, "new.key"))[1].strip()
    ok(ctl("account", "open", *rpc, "--key", admin, "--account", lost, "--roles", "investor", "--jurisdiction",
           "US", "--kyc", "true", "--expires", str(int(time.time() * 1000) + 600000)), "account open with --expires")
    ok(ctl("account", "recover", *rpc, "--key", admin, "--account", lost, "--to", new, "--reason", "lost phone"),
       "account recover")
    exits(ctl("account", "open", *rpc, "--key", admin, "--account", tc.Key().pk, "--roles", "investor",
              "--jurisdiction", "US", "--kyc", "true", "--expires", "1"), 1, "an expired tx is refused",
          stderr_has="refused: expired:")


def offline_cases(node, cx):
    rpc = cx.rpc
    r = ctl("transfer", "--key", cx.inv_key, "--asset", "LOAN-1", "--to", cx.issuer, "--units", "1",
            "--chain", node.chain, "--print")
    pair = as_json(r)
    T.check(r[0] == 0 and isinstance(pair, dict) and set(pair) == {"tx", "sig"}, "--print signs offline", r)
    tx = json.loads(pair["tx"])
    T.eq(sorted(tx), sorted(["type", "chain", "signer", "id", "asset", "to", "units"]),
         "the printed tx has exactly the section 4 fields")
    T.check(isinstance(tx["units"], int) and '"units":1' in pair["tx"], "integers are written as digits")
    T.check(tc.verify_sig(tx["signer"], bytes.fromhex(pair["sig"]), tc.TX_DOMAIN + pair["tx"].encode()),
            "the signature verifies over TRANCHE/TX/1 || tx")
    f = os.path.join(node.tmp, "signed.json")
    with open(f, "w") as fh:
        fh.write(r[1])
    r = ctl("submit", f, *rpc, "--json")
    T.check(r[0] == 0 and as_json(r) and as_json(r)["duplicate"] is False, "submit FILE", r)
    r = ctl("submit", "-", *rpc, "--json", stdin=open(f, "rb").read())
    T.check(r[0] == 0 and as_json(r) and as_json(r)["duplicate"] is True, "submit - (stdin) again is a duplicate", r)
    raw = json.dumps({"type": "transfer", "chain": node.chain, "signer": tc.Key.load(cx.inv_key).pk,
                      "id": "raw-1", "asset": "LOAN-1", "to": cx.issuer, "units": 1}, separators=(",", ":"))
    r = ctl("sign", "--key", cx.inv_key, "--tx", raw)
    pair = as_json(r)
    T.check(r[0] == 0 and pair and pair["tx"] == raw, "sign --tx keeps the exact bytes", r)
    r = ctl("submit", "-", *rpc, stdin=r[1].encode())
    ok(r, "submit a generic signed tx")
    bad = json.dumps({"tx": raw.replace('"units":1', '"units":2'), "sig": pair["sig"]})
    exits(ctl("submit", "-", *rpc, stdin=bad.encode()), 1, "a tx changed after signing is refused",
          stderr_has="refused: bad_signature:")


# ---------------------------------------------------------------- queries

def query_cases(node, cx):
    rpc = cx.rpc
    r = ctl("account", "show", cx.inv, *rpc, "--json")
    T.eq(as_json(r), node.call("account.get", {"account": cx.inv}) if r[0] == 0 else None,
         "account show --json equals account.get")
    r = ctl("account", "show", cx.inv, *rpc)
    T.check(r[0] == 0 and "jurisdiction" in r[1] and "LOAN-1" in r[1], "account show (human)", r)
    r = ctl("account", "history", cx.inv, *rpc, "--limit", "2", "--json")
    h = as_json(r)
    T.check(r[0] == 0 and h and len(h["entries"]) == 2 and h["next"] is not None, "account history pages", r)
    r2 = ctl("account", "history", cx.inv, *rpc, "--limit", "2", "--cursor", h["next"], "--json") if h else None
    T.check(r2 and r2[0] == 0 and as_json(r2)["entries"] != h["entries"], "account history --cursor", r2)
    r = ctl("asset", "show", "LOAN-1", *rpc)
    T.check(r[0] == 0 and "100000000 USD" in r[1] and "prospectus" in r[1], "asset show shows money with currency", r)
    a = as_json(ctl("asset", "show", "LOAN-1", *rpc, "--json"))
    T.check(a and a["rating"] == "B" and a["issuer"] == cx.issuer, "asset show --json", a)
    r = ctl("asset", "list", *rpc, "--json")
    T.check(r[0] == 0 and [x["asset"] for x in as_json(r)["assets"]] == ["LOAN-1"], "asset list --json", r)
    r = ctl("asset", "holders", "LOAN-1", *rpc, "--json")
    T.eq(as_json(r), node.call("asset.holders", {"asset": "LOAN-1"}), "asset holders --json equals asset.holders")
    r = ctl("asset", "holders", "LOAN-1", *rpc)
    T.check(r[0] == 0 and cx.inv in r[1] and "units" in r[1], "asset holders prints a table", r)
    r = ctl("asset", "payouts", "LOAN-1", "--distribution", cx.dist_seq, *rpc, "--json")
    p = as_json(r)
    T.check(r[0] == 0 and p and sum(x["amount"] for x in p["payouts"]) == 1000, "asset payouts sum to the amount", r)
    r = ctl("asset", "payouts", "LOAN-1", *rpc)
    T.check(r[0] == 0 and "USD" in r[1], "asset payouts (human) names the currency", r)
    r = ctl("exposure", cx.inv, *rpc, "--json")
    e = as_json(r)
    T.check(r[0] == 0 and e and e["totals"][0]["currency"] == "USD", "exposure --json", r)
    ok(ctl("exposure", cx.inv, *rpc), "exposure (human)")
    r = ctl("ledger", "head", *rpc, "--json")
    hd = as_json(r)
    T.check(r[0] == 0 and hd and hd["size"] == node.head()["size"], "ledger head --json", r)
    r = ctl("ledger", "entry", "1", *rpc, "--json")
    T.check(r[0] == 0 and json.loads(as_json(r)["tx"])["type"] == "genesis", "ledger entry 1 is the genesis", r)
    exits(ctl("ledger", "entry", "999999", *rpc), 1, "an unknown entry exits 1")
    exits(ctl("asset", "show", "NOPE", *rpc), 1, "an unknown asset exits 1")
    r = ctl("ledger", "checkpoint", *rpc)
    T.check(r[0] == 0 and r[1].startswith(node.chain + "\n") and "\n\u2014 " in r[1], "ledger checkpoint prints the note", r)
    st = as_json(ctl("status", *rpc, "--json"))
    T.check(st and st["chain"] == node.chain and st["vkey"].startswith(node.chain + "+"), "status --json")
    cx.vkey = st["vkey"] if st else ""
    ok(ctl("status", *rpc), "status (human)")
    r = ctl("rpc", "ledger.proof", '{"seq":1,"size":2}', *rpc)
    T.check(r[0] == 0 and as_json(r)["seq"] == 1, "rpc METHOD PARAMS prints the result JSON", r)
    exits(ctl("rpc", "no.such", *rpc), 3, "an unknown method exits 3")
    exits(ctl("rpc", "ledger.entry", '{"seq":"x"}', *rpc), 2, "bad params exit 2")
    exits(ctl("status", "--rpc", "127.0.0.1:%d" % tc.free_port()), 3, "no daemon: exit 3", stderr_has="cannot connect")
    conf = os.path.join(node.datadir, "tranche.conf")
    with open(conf, "a") as f:
        f.write("rpc = 127.0.0.1:%d\n" % node.port)
    r = ctl("status", "--datadir", node.datadir, "--json")
    T.check(r[0] == 0 and as_json(r)["chain"] == node.chain, "--datadir finds the address in tranche.conf", r)


# ---------------------------------------------------------------- proofs

def proof_cases(node, cx):
    rpc = cx.rpc
    time.sleep(1.2)  # a checkpoint covering everything so far
    cp = os.path.join(node.tmp, "cp.old")
    with open(cp, "w") as f:
        f.write(ctl("ledger", "checkpoint", *rpc)[1])
    exits(ctl("checkpoint", "verify", cp, "--vkey", cx.vkey), 0, "checkpoint verify", stdout_has="OK:")
    other = tc.Key()
    wrong = tc.vkey_of(node.chain, other.pk_bytes)[0]
    exits(ctl("checkpoint", "verify", cp, "--vkey", wrong), 1, "checkpoint verify with another key fails",
          stdout_has="FAILED")
    bad = os.path.join(node.tmp, "cp.bad")
    with open(cp) as f, open(bad, "w") as g:
        lines = f.read().split("\n")
        lines[1] = str(int(lines[1]) + 1)
        g.write("\n".join(lines))
    exits(ctl("checkpoint", "verify", bad, "--vkey", cx.vkey), 1, "a checkpoint with a changed size fails")
    exits(ctl("proof", "inclusion", "--txid", cx.transfer_txid, "--vkey", cx.vkey, *rpc), 0,
          "proof inclusion against the node's checkpoint", stdout_has="OK:")
    exits(ctl("proof", "inclusion", "--txid", cx.transfer_txid, "--checkpoint", cp, "--vkey", cx.vkey, *rpc), 0,
          "proof inclusion against a saved checkpoint", stdout_has="OK:")
    pf = os.path.join(node.tmp, "tx.proof")
    ok(ctl("proof", "export", cx.transfer_txid, "--out", pf, "--vkey", cx.vkey, *rpc), "proof export")
    text = open(pf).read() if os.path.exists(pf) else ""
    T.check(text.startswith("c2sp.org/tlog-proof@v1\nextra ") and "\nindex " in text, "the export is a tlog-proof")
    r = ctl("proof", "verify", pf, "--vkey", cx.vkey, "--json")
    v = as_json(r)
    T.check(r[0] == 0 and v and v["txid"] == cx.transfer_txid, "proof verify offline names the txid", r)
    lines = text.split("\n")
    idx = next(i for i, l in enumerate(lines) if l.startswith("index "))
    lines[idx] = "index %d" % (int(lines[idx][6:]) + 1)
    with open(pf + ".bad", "w") as f:
        f.write("\n".join(lines))
    exits(ctl("proof", "verify", pf + ".bad", "--vkey", cx.vkey), 1, "a proof with a changed index fails")
    ok(ctl("transfer", *rpc, "--key", cx.inv_key, "--asset", "LOAN-1", "--to", cx.issuer, "--units", "1"),
       "one more entry")
    time.sleep(1.2)
    exits(ctl("proof", "consistency", "--old", cp, "--vkey", cx.vkey, *rpc), 0, "proof consistency",
          stdout_has="OK:")
    cx.cp_old = cp


# ---------------------------------------------------------------- verify, backup

def copy_dir_with(node, dst, db_file=None):
    """A copy of the data directory; its database replaced by db_file when given."""
    skip = {"control.sock", "tranche.db-wal", "tranche.db-shm"} | ({"tranche.db"} if db_file else set())
    os.mkdir(dst, 0o700)
    for n in os.listdir(node.datadir):
        if n not in skip and not n.endswith(".tmp"):  # checkpoint.tmp lives a moment while a checkpoint is published
            shutil.copy2(os.path.join(node.datadir, n), os.path.join(dst, n))
    if db_file:
        shutil.copy2(db_file, os.path.join(dst, "tranche.db"))
    return dst


def verify_cases(node, cx):
    r = ctl("verify", "--datadir", node.datadir)
    T.check(r[0] == 0 and r[1].startswith("OK: ") and "checkpoint" in r[1], "verify a live directory: exit 0", r)
    exits(ctl("verify", "--datadir", node.datadir, "--checkpoint", cx.cp_old, "--vkey", cx.vkey, "--threads", "3"), 0,
          "verify against a given checkpoint and vkey", stdout_has="OK: ")
    wrong = tc.vkey_of(node.chain, tc.Key().pk_bytes)[0]
    exits(ctl("verify", "--datadir", node.datadir, "--checkpoint", cx.cp_old, "--vkey", wrong), 1,
          "verify with a checkpoint not signed by the vkey fails")
    exits(ctl("verify", "--datadir", node.datadir, "--checkpoint", cx.cp_old), 2, "--checkpoint without --vkey")

    b = os.path.join(node.tmp, "snap.db")
    ok(ctl("backup", "--datadir", node.datadir, "--to", b), "backup for the tamper test")
    t = copy_dir_with(node, os.path.join(node.tmp, "tampered"), b)
    db = sqlite3.connect(os.path.join(t, "tranche.db"))
    seq = 5  # asset issue of 600 units
    db.execute("DROP TRIGGER entries_append_only_u")
    (txb,) = db.execute("SELECT tx FROM entries WHERE seq = ?", (seq,)).fetchone()
    txb = bytes(txb)
    changed = txb.replace(b'"units":600', b'"units":601')
    db.execute("UPDATE entries SET tx = ? WHERE seq = ?", (changed, seq))
    db.commit()
    db.close()
    T.check(changed != txb, "tampered entry %d's tx bytes" % seq)
    r = ctl("verify", "--datadir", t)
    T.check(r[0] == 1 and r[1].startswith("FAILED at seq %d:" % seq), "verify names the tampered seq, exit 1", r)
    r = ctl("verify", "--datadir", t, "--threads", "1")
    T.check(r[0] == 1 and ("seq %d" % seq) in r[1], "the same with one thread", r)


def load(node, stop_evt, counter):
    admin = tc.Key.load(node.admin_key_path)
    with node.connect() as c:
        while not stop_evt.is_set():
            tx = tc.make_tx("account.open", admin, chain=node.chain, account=tc.Key().pk,
                            roles=["investor"], jurisdiction="US", kyc=True)
            b = tc.tx_bytes(tx)
            c.call("tx.submit", {"tx": b.decode(), "sig": tc.sign_tx(b, admin)})
            counter[0] += 1


def backup_cases(node, cx):
    stop_evt, counter = threading.Event(), [0]
    th = threading.Thread(target=load, args=(node, stop_evt, counter))
    th.start()
    try:
        time.sleep(0.5)
        dst = copy_dir_with(node, os.path.join(node.tmp, "restored"))  # checkpoint first, then the database
        b = os.path.join(node.tmp, "under-load.db")
        r = ctl("backup", "--datadir", node.datadir, "--to", b, "--json")
        res = as_json(r)
        T.check(r[0] == 0 and res and res["path"] == os.path.realpath(b) and res["size"] > 10,
                "backup under load answers {path, size, bytes}", r)
        exits(ctl("backup", "--datadir", node.datadir, "--to", b), 1, "backup never overwrites a file")
        r = ctl("verify", "--datadir", node.datadir)
        T.check(r[0] == 0, "verify a live directory under load", r)
    finally:
        stop_evt.set()
        th.join(30)
    T.check(counter[0] > 10, "load ran (%d txs)" % counter[0])
    shutil.copy2(b, os.path.join(dst, "tranche.db"))
    r = ctl("verify", "--datadir", dst)
    T.check(r[0] == 0 and r[1].startswith("OK: "), "the backup taken under load verifies", r)


def control_cases(node, cx):
    sock = os.path.join(node.datadir, "control.sock")
    T.check(stat.S_ISSOCK(os.stat(sock).st_mode), "control.sock exists")
    T.eq(stat.S_IMODE(os.stat(sock).st_mode), 0o600, "control.sock is mode 0600")
    ok(ctl("log-level", "--datadir", node.datadir, "debug"), "log-level debug")
    exits(ctl("log-level", "--datadir", node.datadir, "loud"), 2, "an unknown log level is a usage error")
    exits(ctl("backup", "--datadir", os.path.join(node.tmp, "nodir"), "--to", os.path.join(node.tmp, "x.db")), 3,
          "backup without a control socket exits 3")
    r = ctl("stop", "--datadir", node.datadir)
    ok(r, "stop via the control socket")
    try:
        rc = node.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    T.eq(rc, 0, "tranched exited 0 after stop")
    node.proc = None
    T.check(not os.path.exists(sock), "the control socket is gone")
    exits(ctl("verify", "--datadir", node.datadir), 0, "verify the stopped directory", stdout_has="OK: ")


# ---------------------------------------------------------------- operator hazards (issue 12)

def fifo_key_cases(tmp):
    """Finding 14: a key file that is a FIFO is refused at once, never waited on."""
    fifo = os.path.join(tmp, "fifo.key")
    os.mkfifo(fifo, 0o600)
    for args in (("sign", "--key", fifo, "--tx", "{}"),
                 ("transfer", "--key", fifo, "--asset", "A", "--to", "ab" * 32, "--units", "1", "--print",
                  "--chain", "cli.example/t")):
        try:
            r = ctl(*args, timeout=10)
        except subprocess.TimeoutExpired:
            r = (None, "", "timed out: blocked on the FIFO")
        exits(r, 1, "%s --key FIFO is refused without blocking" % args[0], stderr_has="not a regular file")
    exits(ctl("sign", "--key", tmp, "--tx", "{}", timeout=10), 1, "a directory as key file is refused",
          stderr_has="not a regular file")


def long_path_cases(tmp):
    """Finding 15: init refuses a DIR whose control.sock path would not fit a Unix socket address."""
    base = os.path.realpath(tmp)
    room = 107 - len(base) - len("/control.sock") - 1  # the longest name that still fits
    d_fit = os.path.join(base, "f" * room)
    d_long = os.path.join(base, "l" * (room + 1))
    T.eq(len(d_fit + "/control.sock"), 107, "test set-up: the fitting path is exactly 107 bytes")
    exits(ctl("init", "--datadir", d_long, "--chain", "cli.example/t", "--admin", tc.Key().pk), 1,
          "init refuses a DIR whose control socket path exceeds the Unix limit", stderr_has="too long")
    T.check(not os.path.exists(d_long), "the refused init created nothing")
    ok(ctl("init", "--datadir", d_fit, "--chain", "cli.example/t", "--admin", tc.Key().pk),
       "init accepts a DIR whose control socket path is exactly 107 bytes")
    rel = subprocess.run([CTL, "init", "--datadir", "r" * (room + 1), "--chain", "cli.example/t", "--admin",
                          tc.Key().pk], cwd=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(rel.returncode == 1 and b"too long" in rel.stderr,
            "a short relative DIR is judged by its absolute path", rel.stderr)


def ownership_cases(tmp):
    """Finding 16: tranched refuses (like ssh) a data directory or config that others can change."""
    d = os.path.join(tmp, "own")
    ok(ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin", tc.Key().pk), "init for the ownership cases")
    conf = os.path.join(d, "tranche.conf")
    tranched = os.environ["TRANCHED"]

    def check():
        r = subprocess.run([tranched, "--datadir", d, "--check"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    ok(check(), "tranched --check accepts a private directory")
    os.chmod(d, 0o770)
    exits(check(), 1, "a group-writable data directory is refused", stderr_has="writable by its group")
    os.chmod(d, 0o700)
    os.chmod(conf, 0o602)
    exits(check(), 1, "a world-writable tranche.conf is refused", stderr_has="writable by others")
    os.chmod(conf, 0o600)
    if os.geteuid() == 0:
        os.chown(conf, 65534, 65534)
        exits(check(), 1, "a tranche.conf owned by another user is refused", stderr_has="owned by uid 65534")
        os.chown(conf, 0, 0)
        other = os.path.join(tmp, "other.conf")
        with open(other, "w") as f:
            f.write("workers = 1\n")
        os.chown(other, 65534, 65534)
        r = subprocess.run([tranched, "--datadir", d, "--config", other, "--check"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        T.check(r.returncode == 1 and b"owned by uid 65534" in r.stderr, "--config FILE is judged the same way",
                r.stderr)
    ok(check(), "tranched --check accepts it again once private")


# ---------------------------------------------------------------- conveniences (issue 16)

def run_pty(args, env=None, timeout=60):
    """Runs CTL args with stderr on a pseudo-terminal; returns (rc, stdout, what the terminal got)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([CTL] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    out = p.communicate(timeout=timeout)[0]
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace"), got.decode("utf-8", "replace")


class FakeServer:
    """A loopback listener that accepts and either closes at once or answers one fixed line."""

    def __init__(self, answer=None, port=None, delay=0.0):
        import socket as so
        self.port = port or tc.free_port()
        self.answer, self.delay, self.stop = answer, delay, threading.Event()
        # Listening before the constructor returns (unless it is meant to come up late): a ping
        # run right after must find it.
        self.ls = None if delay > 0 else self.listen(so)
        self.th = threading.Thread(target=self.run, args=(so,), daemon=True)
        self.th.start()

    def listen(self, so):
        ls = so.socket(so.AF_INET, so.SOCK_STREAM)
        ls.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(8)
        ls.settimeout(0.2)
        return ls

    def run(self, so):
        time.sleep(self.delay)
        ls = self.ls or self.listen(so)
        while not self.stop.is_set():
            try:
                c, _ = ls.accept()
            except OSError:
                continue
            if self.answer is not None:
                c.settimeout(5)
                try:
                    c.recv(65536)
                    c.sendall(self.answer)
                except OSError:
                    pass
            c.close()
        ls.close()

    def close(self):
        self.stop.set()
        self.th.join(5)


def version_cases(node, cx):
    bench = os.path.join(os.path.dirname(CTL), "bench")
    progs = {"tranched": os.environ["TRANCHED"], "tranchectl": CTL,
             "tranche-bench": os.path.join(bench, "tranche-bench"), "ledger-bench": os.path.join(bench, "ledger-bench")}
    versions = set()
    for name, path in progs.items():
        r = subprocess.run([path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = r.stdout.decode().strip()
        good = r.returncode == 0 and out.startswith(name + " ") and len(out.split()) == 2
        T.check(good, "%s --version prints its name and version, exit 0" % name, (r.returncode, out, r.stderr))
        versions.add(out.split()[-1] if good else None)
    T.eq(len(versions), 1, "every program reports the same version")


def ping_cases(node, cx):
    live = "127.0.0.1:%d" % node.port
    exits(ctl("ping", "--rpc", live), 0, "ping a live node: exit 0", stdout_has="accepting")
    dead = "127.0.0.1:%d" % tc.free_port()
    exits(ctl("ping", "--rpc", dead), 2, "ping where nothing listens: exit 2", stdout_has="no answer")
    t0 = time.monotonic()
    exits(ctl("ping", "--rpc", dead, "--wait", "1"), 2, "ping --wait 1 where nothing listens: exit 2")
    T.check(time.monotonic() - t0 >= 1.0, "ping --wait kept trying for the whole second")
    closer = FakeServer()
    exits(ctl("ping", "--rpc", "127.0.0.1:%d" % closer.port), 1, "ping a server that closes at once: exit 1",
          stdout_has="refusing")
    closer.close()
    erring = FakeServer(answer=b'{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"overloaded"}}\n')
    exits(ctl("ping", "--rpc", "127.0.0.1:%d" % erring.port), 1, "ping a node answering an error: exit 1",
          stdout_has="overloaded")
    erring.close()
    exits(ctl("ping", "--rpc", live, "--wait", "x"), 3, "ping with a bad --wait: exit 3 (pg_isready's no attempt)")
    exits(ctl("ping", "--rpc", live, "--quiet"), 0, "ping --quiet: exit 0")
    T.eq(ctl("ping", "--rpc", live, "--quiet")[1], "", "ping --quiet prints nothing")
    # a daemon that comes up late: ping --wait and the global --wait wait for it
    port = tc.free_port()
    late = FakeServer(answer=b'{"jsonrpc":"2.0","id":1,"result":{"size":7}}\n', port=port, delay=1.0)
    exits(ctl("ping", "--rpc", "127.0.0.1:%d" % port, "--wait", "20"), 0, "ping --wait succeeds once the node is up")
    late.close()
    port = tc.free_port()
    exits(ctl("ledger", "head", "--rpc", "127.0.0.1:%d" % port), 3, "without --wait a command fails at once")
    late = FakeServer(answer=b'{"jsonrpc":"2.0","id":1,"result":{"size":7}}\n', port=port, delay=1.0)
    r = ctl("--wait", "20", "ledger", "head", "--rpc", "127.0.0.1:%d" % port, "--json")
    T.check(r[0] == 0 and '"size":7' in r[1], "global --wait retries until the daemon listens", r)
    late.close()
    exits(ctl("--wait", "soon", "status"), 2, "a bad global --wait is a usage error")


def env_cases(node, cx):
    live = "127.0.0.1:%d" % node.port
    env = dict(os.environ, TRANCHE_RPC=live)
    r = subprocess.run([CTL, "ledger", "head", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    T.check(r.returncode == 0 and b'"size"' in r.stdout, "TRANCHE_RPC names the node when no --rpc", r.stderr)
    env = dict(os.environ, TRANCHE_RPC="127.0.0.1:%d" % tc.free_port())
    r = subprocess.run([CTL, "ledger", "head", "--json", "--rpc", live], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    T.eq(r.returncode, 0, "--rpc wins over TRANCHE_RPC")
    r = subprocess.run([CTL, "ledger", "head"], env=dict(os.environ, TRANCHE_RPC="nonsense"), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    T.check(r.returncode != 0 and b"TRANCHE_RPC" in r.stderr, "a bad TRANCHE_RPC is named in the error", r.stderr)


def http_rpc_cases(node, cx):
    """--rpc http://HOST:PORT: the same answers over HTTP POST (PROTOCOL.md §5.1)."""
    line_rc, line_out, _ = ctl("ledger", "head", "--json", "--rpc", "127.0.0.1:%d" % node.port)
    url = "http://127.0.0.1:%d" % node.port
    rc, out, err = ctl("ledger", "head", "--json", "--rpc", url)
    T.check(rc == 0 and line_rc == 0 and json.loads(out) == json.loads(line_out),
            "--rpc http://: ledger head answers as over lines", (out, line_out, err))
    rc, out, err = ctl("status", "--json", "--rpc", url + "/")
    T.check(rc == 0 and json.loads(out).get("chain") == node.chain, "--rpc http://HOST:PORT/: status", err)
    k = tc.Key()
    rc, out, err = ctl("account", "open", "--key", node.admin_key_path, "--account", k.pk, "--roles", "investor",
                       "--jurisdiction", "GB", "--kyc", "true", "--json", "--rpc", url)
    T.check(rc == 0 and "seq" in json.loads(out), "--rpc http://: a tx is submitted and its receipt printed", err)
    rc, out, err = ctl("account", "open", "--key", node.admin_key_path, "--account", k.pk, "--roles", "investor",
                       "--jurisdiction", "GB", "--kyc", "true", "--rpc", url)
    T.check(rc == 1 and "refused: exists" in err, "--rpc http://: a refusal is reported as over lines", err)
    rc, _, err = ctl("ledger", "head", "--rpc", "http://127.0.0.1:%d" % tc.free_port())
    T.check(rc == 3 and "cannot connect" in err, "--rpc http:// to nothing: cannot connect, exit 3", err)
    rc, _, err = ctl("import", "-", "--rpc", url)
    T.check(rc == 2 and "HOST:PORT" in err, "import refuses an http:// address (it streams lines)", err)


def completion_cases(node, cx):
    rc, script, err = ctl("completion", "bash")
    T.check(rc == 0 and "complete -F _tranchectl tranchectl" in script, "completion bash prints a script", err)
    path = os.path.join(node.tmp, "completion.bash")
    with open(path, "w") as f:
        f.write(script)

    def complete(*words):
        w = " ".join("'%s'" % x for x in words)
        cmd = "source %s; COMP_WORDS=(tranchectl %s); COMP_CWORD=%d; _tranchectl; echo \"${COMPREPLY[*]}\"" % (
            path, w, len(words))
        r = subprocess.run(["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return set(r.stdout.decode().split())

    top = complete("")
    want = {"init", "keygen", "account", "asset", "transfer", "verify", "backup", "restore", "ping", "completion",
            "stop", "ledger", "proof", "status"}
    T.check(want <= top, "the first word completes to every command", sorted(want - top))
    T.eq(complete("asset", ""), {"create", "update", "issue", "redeem", "distribute", "status", "show", "list",
                                 "holders", "payouts"}, "asset completes to its subcommands")
    T.check({"--key", "--asset", "--to", "--units"} <= complete("transfer", "--"), "transfer's options complete")
    T.eq(complete("restore", "--f"), {"--from", "--force"}, "restore --f completes to --from and --force")
    T.check({"--key", "--account", "--roles"} <= complete("account", "open", "--"), "account open's options complete")


def daemon_log_cases(node, cx):
    """journald priority prefixes, and --log-file reopened on SIGHUP."""
    d = os.path.join(node.tmp, "logs-node")
    ok(ctl("init", "--datadir", d, "--chain", "cli.example/t", "--admin", tc.Key().pk), "init for the log cases")
    tranched = os.environ["TRANCHED"]

    def run(extra, env, stderr_path):
        port = tc.free_port()
        with open(stderr_path, "wb") as err:
            env_all = dict(os.environ, **env)
            env_all.pop("JOURNAL_STREAM", None) if "JOURNAL_STREAM" not in env else None
            if callable(env.get("JOURNAL_STREAM")):
                st = os.fstat(err.fileno())
                env_all["JOURNAL_STREAM"] = env["JOURNAL_STREAM"](st)
            p = subprocess.Popen([tranched, "--datadir", d, "--listen", "127.0.0.1:%d" % port, "--workers", "1"] +
                                 extra, stdout=subprocess.DEVNULL, stderr=err, env=env_all)
        exits(ctl("ping", "--rpc", "127.0.0.1:%d" % port, "--wait", "20", "--quiet"), 0, "the log-case node is up")
        return p

    jpath = os.path.join(node.tmp, "journal.err")
    p = run([], {"JOURNAL_STREAM": lambda st: "%d:%d" % (st.st_dev, st.st_ino)}, jpath)
    p.terminate()
    p.wait(30)
    lines = open(jpath).read().splitlines()
    T.check(lines and all(l.startswith(("<6>info ", "<4>warn ", "<3>error", "<7>debug")) for l in lines),
            "with $JOURNAL_STREAM naming stderr, every line has a <N> priority and no timestamp", lines[:5])
    npath = os.path.join(node.tmp, "plain.err")
    p = run([], {"JOURNAL_STREAM": lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1)}, npath)
    p.terminate()
    p.wait(30)
    lines = open(npath).read().splitlines()
    T.check(lines and all(l[:4].isdigit() and "Z " in l[:30] for l in lines),
            "a $JOURNAL_STREAM naming another stream is ignored: timestamps", lines[:3])

    logf = os.path.join(node.tmp, "tranched.log")
    p = run(["--log-file", logf], {}, os.path.join(node.tmp, "filelog.err"))
    os.rename(logf, logf + ".1")
    p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (os.path.exists(logf) and "reopened" in open(logf).read()):
        time.sleep(0.1)
    p.terminate()
    rc = p.wait(30)
    old, new = open(logf + ".1").read(), open(logf).read() if os.path.exists(logf) else ""
    T.check("serving chain" in old, "--log-file receives the log", old[-500:])
    T.check("reopened" in new and "stopped cleanly" in new and "serving chain" not in new,
            "after SIGHUP the log goes to a new file at the same path", new[-500:])
    T.eq(rc, 0, "the log-file node stops cleanly")
    T.eq(stat.S_IMODE(os.stat(logf).st_mode), 0o600, "the log file is mode 0600")


def progress_cases(node, cx):
    rc, out, term = run_pty(["verify", "--datadir", node.datadir])
    T.check(rc == 0 and "\r" in term and "signatures" in term and "replay" in term and "/s" in term,
            "verify draws phase, done/total and rate on a terminal", term[-400:])
    rc, out, term = run_pty(["verify", "--datadir", node.datadir, "--quiet"])
    T.check(rc == 0 and "\r" not in term and "signatures" not in term, "verify --quiet draws nothing", term[-400:])
    r = ctl("verify", "--datadir", node.datadir)
    T.check(r[0] == 0 and "\r" not in r[2] and r[2] == "", "verify with stderr not a terminal is silent", r[2])
    b = os.path.join(node.tmp, "progress.db")
    rc, out, term = run_pty(["backup", "--datadir", node.datadir, "--to", b])
    T.check(rc == 0 and "backup" in term and "MiB" in term and "100%" in term,
            "backup shows its progress on a terminal", term[-400:])
    b2 = os.path.join(node.tmp, "progress-quiet.db")
    rc, out, term = run_pty(["backup", "--datadir", node.datadir, "--to", b2, "--quiet"])
    T.check(rc == 0 and "MiB" not in term, "backup --quiet draws nothing", term[-400:])
    admin = tc.Key.load(node.admin_key_path)
    lines = []
    for _ in range(30):
        t = tc.tx_bytes(tc.make_tx("account.open", admin, chain=node.chain, account=tc.Key().pk, roles=["investor"],
                                   jurisdiction="US", kyc=True))
        lines.append(json.dumps({"tx": t.decode(), "sig": tc.sign_tx(t, admin)}))
    f = os.path.join(node.tmp, "progress.jsonl")
    with open(f, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    rc, out, term = run_pty(["import", f, "--rpc", "127.0.0.1:%d" % node.port])
    T.check(rc == 0 and "import 30/30" in term and "accepted" in out, "import shows lines done of the total",
            (term[-400:], out))


def main():
    tmp = tempfile.mkdtemp(prefix="tranche-cli-")
    try:
        T.section("init", init_cases, tmp)
        T.section("help", help_cases)
        T.section("fifo key", fifo_key_cases, tmp)
        T.section("long path", long_path_cases, tmp)
        T.section("ownership", ownership_cases, tmp)
        with tc.Node() as node:
            node.init().start()
            cx = Ctx()
            for name, fn in (("tx", tx_cases), ("offline", offline_cases), ("query", query_cases),
                             ("proof", proof_cases), ("verify", verify_cases), ("backup", backup_cases),
                             ("version", version_cases), ("ping", ping_cases), ("env", env_cases), ("http rpc", http_rpc_cases),
                             ("completion", completion_cases), ("daemon log", daemon_log_cases),
                             ("progress", progress_cases), ("control", control_cases)):
                T.section(name, fn, node, cx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    T.done()


main()
