#!/usr/bin/python3
"""test_concurrency.py - races through the real daemon (PROTOCOL.md sections 2-4).

  * double spend: an investor holding 10 units sends 8 different transfers of
    10 units on 8 connections at once: exactly one is accepted, the other 7
    are refused with insufficient_units (several rounds);
  * the same signed tx on 8 connections at once: one journal entry; every
    connection gets a receipt with the same seq, txid and hash, exactly one
    with duplicate false (several rounds);
  * the same signed tx sent 40 times on one connection, spread over
    successive batches (the first still being committed while later copies
    are applied): one entry, the same receipt for all, duplicate true but the
    first;
  * a distribution racing transfers among its holders: the payouts sum to the
    amount and equal the section 4 allocation over the holdings just before
    the distribution's entry, recomputed from the journal.
Finally the chain is recomputed, the daemon is stopped with SIGTERM (exit 0)
and `tranchectl verify` must pass.  Run under ThreadSanitizer by
`TSAN=1 tools/test.sh`.  Prints TAP.
"""
import hashlib
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
RNG = random.Random(int(os.environ.get("TRANCHE_TEST_SEED", "20240607")))
ASSET = "RACE-1"
CONNS = 8


def allocate(amount, holdings):
    """Section 4 asset.distribute: floor, then largest remainders, ties to the smaller account id."""
    total = sum(holdings.values())
    base = {a: amount * u // total for a, u in holdings.items()}
    rem = {a: amount * u % total for a, u in holdings.items()}
    for a in sorted(holdings, key=lambda a: (-rem[a], a))[:amount - sum(base.values())]:
        base[a] += 1
    return base


def must(node, tx, key, what):
    r = node.submit(tx, key)
    if not (isinstance(r, dict) and "seq" in r and r.get("duplicate") is False):
        raise RuntimeError("%s was not accepted: %r" % (what, r))
    return r


def open_investor(node, key, j="US"):
    must(node, node.tx("account.open", node.admin, account=key.pk, roles=["investor"], jurisdiction=j, kyc=True),
         node.admin, "account.open")


def setup(node):
    issuer = tc.Key()
    must(node, node.tx("account.open", node.admin, account=issuer.pk, roles=["issuer"], jurisdiction="US",
                       kyc=True), node.admin, "open issuer")
    must(node, node.tx("asset.create", issuer, asset=ASSET, name="race", kind="receivable", currency="USD",
                       principal=10 ** 9, units=10 ** 12, coupon_bps=0, maturity="2031-01-31", rating="B",
                       risk_weight_pct=100, rules={}), issuer, "asset.create")
    return issuer


def simultaneously(node, payloads):
    """Sends one pre-serialised tx.submit per connection at the same instant; returns the answers."""
    conns = [node.connect(timeout=60) for _ in payloads]
    barrier = threading.Barrier(len(payloads))
    out = [None] * len(payloads)

    def run(i):
        try:
            barrier.wait(timeout=30)
            conns[i].send_raw(payloads[i])
            resp = conns[i].recv(timeout=60)
            out[i] = resp.get("result", resp.get("error"))
        except Exception as e:  # noqa: BLE001 - reported as a failed check below
            out[i] = {"exception": repr(e)}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    for c in conns:
        c.close()
    return out


def submit_line(tx, key, id_=1):
    b = tc.tx_bytes(tx)
    return json.dumps({"jsonrpc": "2.0", "method": "tx.submit", "id": id_,
                       "params": {"tx": b.decode(), "sig": tc.sign_tx(b, key)}}).encode() + b"\n"


def double_spend(node, issuer, rounds=4):
    receivers = [tc.Key() for _ in range(CONNS)]
    for k in receivers:
        open_investor(node, k)
    for rnd in range(rounds):
        spender = tc.Key()
        open_investor(node, spender)
        must(node, node.tx("asset.issue", issuer, asset=ASSET, to=spender.pk, units=10), issuer, "issue 10")
        lines = [submit_line(node.tx("transfer", spender, asset=ASSET, to=receivers[i].pk, units=10), spender, i)
                 for i in range(CONNS)]
        answers = simultaneously(node, lines)
        accepted = [a for a in answers if isinstance(a, dict) and "seq" in a and a.get("duplicate") is False]
        refused = [a for a in answers if tc.reason_of(a) == "insufficient_units"]
        T.check(len(accepted) == 1 and len(refused) == CONNS - 1,
                "double spend round %d: exactly 1 of %d transfers of 10 units accepted, %d insufficient_units"
                % (rnd + 1, CONNS, CONNS - 1), answers)
        held = node.call("account.get", {"account": spender.pk})["holdings"]
        T.eq(held, [], "double spend round %d: the spender holds nothing afterwards" % (rnd + 1))


def same_tx(node, issuer, rounds=4):
    for rnd in range(rounds):
        k = tc.Key()
        tx = node.tx("account.open", node.admin, account=k.pk, roles=["investor"], jurisdiction="GB", kyc=True)
        line = submit_line(tx, node.admin, 5)
        size0 = node.head()["size"]
        answers = simultaneously(node, [line] * CONNS)
        receipts = [a for a in answers if isinstance(a, dict) and "seq" in a]
        T.eq(len(receipts), CONNS, "same tx round %d: every connection gets a receipt" % (rnd + 1))
        T.eq(len({(a["seq"], a["txid"], a["hash"]) for a in receipts}), 1,
             "same tx round %d: one seq, txid and hash in every receipt" % (rnd + 1))
        T.eq(sorted(a.get("duplicate") for a in receipts), [False] + [True] * (CONNS - 1),
             "same tx round %d: exactly one receipt with duplicate false" % (rnd + 1))
        T.eq(node.head()["size"], size0 + 1, "same tx round %d: exactly one journal entry" % (rnd + 1))


def same_tx_staggered(node, issuer, rounds=4, copies=40):
    """One connection sends the same transfer `copies` times, a fraction of a
    millisecond apart, while four others keep the journal busy: the copies
    land in successive batches, some while the first one's batch is still
    queued for its commit by tr-journal (the duplicate's receipt then comes
    from the batch in flight), some after."""
    receiver = tc.Key()
    open_investor(node, receiver)
    stop = threading.Event()

    def busy():  # keeps the journal stage busy, so batches queue behind its commits
        c = node.connect(timeout=60)
        try:
            while not stop.is_set():
                tx = node.tx("account.open", node.admin, account=tc.Key().pk, roles=["investor"],
                             jurisdiction="FR", kyc=True)
                c.send_raw(submit_line(tx, node.admin, 1))
                c.recv(timeout=60)
        finally:
            c.close()

    load = [threading.Thread(target=busy) for _ in range(4)]
    for t in load:
        t.start()
    try:
        staggered_rounds(node, issuer, receiver, rounds, copies)
    finally:
        stop.set()
        for t in load:
            t.join(60)


def staggered_rounds(node, issuer, receiver, rounds, copies):
    for rnd in range(rounds):
        sender = tc.Key()
        open_investor(node, sender)
        must(node, node.tx("asset.issue", issuer, asset=ASSET, to=sender.pk, units=100), issuer, "issue 100")
        line = submit_line(node.tx("transfer", sender, asset=ASSET, to=receiver.pk, units=7), sender, 9)
        c = node.connect(timeout=60)
        try:
            for i in range(copies):
                c.send_raw(line)
                time.sleep(0.0001 if i < copies // 2 else 0.0005)
            answers = []
            for _ in range(copies):
                resp = c.recv(timeout=60)
                answers.append(resp.get("result", resp.get("error")))
        finally:
            c.close()
        receipts = [a for a in answers if isinstance(a, dict) and "seq" in a]
        T.check(len(receipts) == copies, "staggered copies round %d: every copy gets a receipt" % (rnd + 1),
                [a for a in answers if a not in receipts][:3])
        T.eq(len({json.dumps([a["seq"], a["txid"], a["hash"], a["time"], a["effects"]], sort_keys=True)
                  for a in receipts}), 1,
             "staggered copies round %d: the same seq, txid, hash, time and effects in every receipt" % (rnd + 1))
        T.eq([a.get("duplicate") for a in receipts], [False] + [True] * (copies - 1),
             "staggered copies round %d: the first receipt has duplicate false, every later one true" % (rnd + 1))
        held = node.call("account.get", {"account": sender.pk})["holdings"]
        T.eq([h["units"] for h in held], [93], "staggered copies round %d: 7 units moved once (one entry)" % (rnd + 1))


def distribution_race(node, issuer):
    holders = [tc.Key() for _ in range(6)]
    for k in holders:
        open_investor(node, k)
        must(node, node.tx("asset.issue", issuer, asset=ASSET, to=k.pk, units=RNG.randint(1000, 5000)), issuer,
             "issue")
    stop = threading.Event()
    results = []

    def mover(i):
        me = holders[i]
        c = node.connect(timeout=60)
        try:
            while not stop.is_set():
                to = holders[(i + RNG.randint(1, len(holders) - 1)) % len(holders)]
                tx = node.tx("transfer", me, asset=ASSET, to=to.pk, units=RNG.randint(1, 300))
                b = tc.tx_bytes(tx)
                results.append(c.result_or_error("tx.submit", {"tx": b.decode(), "sig": tc.sign_tx(b, me)}))
        finally:
            c.close()

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(len(holders))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    amount = 1000003
    dist = node.submit(node.tx("asset.distribute", issuer, asset=ASSET, amount=amount, kind="interest"), issuer)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(60)
    moved = sum(1 for r in results if isinstance(r, dict) and "seq" in r)
    T.check(isinstance(dist, dict) and "seq" in dist, "distribution accepted while transfers race", dist)
    T.comment("%d transfers accepted around the distribution (%d refused)" % (moved, len(results) - moved))
    T.check(not any(isinstance(r, dict) and "code" in r and tc.reason_of(r) not in ("insufficient_units",)
                    for r in results), "racing transfers: only receipts or insufficient_units",
            [r for r in results if isinstance(r, dict) and "code" in r][:3])
    dseq = dist["seq"]
    pays = node.call("asset.payouts", {"asset": ASSET, "distribution": dseq, "limit": 1000})["payouts"]
    T.eq(sum(p["amount"] for p in pays), amount, "payouts sum exactly to the amount")
    # The holdings just before entry dseq, replayed from the journal.
    held = {}
    for e in node.all_entries():
        if e["seq"] >= dseq:
            break
        tx = json.loads(e["tx"])
        if tx.get("asset") != ASSET:
            continue
        if tx["type"] == "asset.issue":
            held[tx["to"]] = held.get(tx["to"], 0) + tx["units"]
        elif tx["type"] == "transfer":
            held[tx["signer"]] -= tx["units"]
            held[tx["to"]] = held.get(tx["to"], 0) + tx["units"]
    held = {a: u for a, u in held.items() if u > 0}
    want = allocate(amount, held)
    T.eq({p["account"]: p["amount"] for p in pays}, want,
         "payouts equal the allocation over the holdings at the distribution's place in the journal")
    T.eq(dist.get("effects", {}).get("distribution"), {"seq": dseq, "count": len(held), "amount": amount},
         "distribution effects name the holder count of that snapshot")


def main():
    node = tc.Node(workers=2)
    try:
        node.init().start()
        issuer = setup(node)
        T.section("double spend", double_spend, node, issuer)
        T.section("same tx", same_tx, node, issuer)
        T.section("same tx, staggered", same_tx_staggered, node, issuer)
        T.section("distribution race", distribution_race, node, issuer)
        ok, msg, _ = tc.check_chain(node.all_entries())
        T.check(ok, "journal links and hashes recompute (%s)" % msg, msg)
        rc = node.stop()
        T.eq(rc, 0, "tranched exits 0 on SIGTERM")
        with open(node.err_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        T.check("ThreadSanitizer" not in err and "Sanitizer" not in err, "no sanitizer report in the daemon's log",
                err[-4000:])
        r = node.ctl("verify", "--datadir", node.datadir)
        T.eq(r.returncode, 0, "tranchectl verify passes", )
        if r.returncode != 0:
            T.comment(r.stdout.decode() + r.stderr.decode())
    except Exception:  # noqa: BLE001
        import traceback
        T.check(False, "no exception", traceback.format_exc() + "\n" + node.logs())
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
