#!/usr/bin/python3
"""test_subscribe.py - ledger.subscribe / ledger.unsubscribe (PROTOCOL.md section 5.2).

Against the real daemon, on newline-delimited JSON and on WebSocket (GET /ws):
subscribe from 1 and from the head while txs are submitted on another
connection (every entry once, in seq order, no gap at the backlog/live seam,
each equal to the journal and to its receipt), unsubscribe, the bounds
(subscriptions per connection, params), no subscription over POST /, and a
subscriber that never reads: cut off with one ledger.subscription_end
{reason: slow_consumer, next}, resubscribing from next misses nothing, and
the daemon's resident memory stays bounded.  Only 127.0.0.1.  Prints TAP.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)


class Lines:
    """A newline-delimited JSON-RPC connection."""
    name = "NDJSON"

    def __init__(self, n, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", n.port))
        self.buf = b""

    def send(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout=20):
        """The next message, or None after timeout seconds without one."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                return None
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def close(self):
        self.s.close()


class Ws:
    """JSON-RPC over WebSocket text messages (GET /ws)."""
    name = "WebSocket"

    def __init__(self, n, rcvbuf=None):
        import wsclient
        self.c = wsclient.connect(n.port, rcvbuf=rcvbuf)

    def send(self, obj):
        self.c.send_text(json.dumps(obj).encode())

    def recv(self, timeout=20):
        m = self.c.recv_message(timeout)
        if m is None:
            return None
        op, data = m
        if op != 1:
            raise ValueError("expected a text message, got opcode %d" % op)
        return json.loads(data)

    def close(self):
        self.c.close()


def call(conn, method, params=None, id_=1):
    """Sends a request and returns its answer; notifications that arrive first are returned too."""
    req = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        req["params"] = params
    conn.send(req)
    notes = []
    while True:
        m = conn.recv()
        if m is None:
            raise RuntimeError("no answer to %s" % method)
        if "id" in m:
            return m, notes
        notes.append(m)


def open_tx(n):
    k = tc.Key()
    b = tc.tx_bytes(n.tx("account.open", n.admin, account=k.pk, roles=["investor"], jurisdiction="US", kyc=True))
    return {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}


def submit_many(n, count, batch=100):
    """Submits count account.open txs on a connection of its own, in batches; returns the receipts."""
    out = []
    with n.connect() as c:
        for start in range(0, count, batch):
            reqs = [{"jsonrpc": "2.0", "method": "tx.submit", "id": i, "params": open_tx(n)}
                    for i in range(start, min(count, start + batch))]
            c.send_raw(json.dumps(reqs).encode() + b"\n")
            ans = json.loads(c.recv_line())
            out.extend(a["result"] for a in ans if "result" in a)
    return out


def collect(conn, sub, until_seq, timeout=60):
    """ledger.entry notifications of sub until the entry until_seq; returns their entries."""
    got = []
    deadline = time.monotonic() + timeout
    while (not got or got[-1]["seq"] < until_seq) and time.monotonic() < deadline:
        m = conn.recv(timeout=max(0.1, deadline - time.monotonic()))
        if m is None:
            break
        if m.get("method") == "ledger.entry" and m["params"]["subscription"] == sub:
            got.append(m["params"]["entry"])
    return got


def contiguous(entries, first, last):
    return [e["seq"] for e in entries] == list(range(first, last + 1))


# ------------------------------------------------------------------ cases

def case_from_one_under_load(n, kind):
    conn = kind(n)
    before = n.head()["size"]
    load = []
    th = threading.Thread(target=lambda: load.extend(submit_many(n, 300)))
    th.start()
    r, _ = call(conn, "ledger.subscribe", {"from": 1})
    sub = r["result"]["subscription"]
    T.check(r["result"]["from"] == 1 and isinstance(sub, str) and sub, "%s: subscribe from 1 -> {subscription, from: 1}"
            % kind.name, r)
    th.join()
    last = n.head()["size"]
    got = collect(conn, sub, last)
    T.check(len(load) == 300 and last >= before + 300, "%s: 300 txs committed meanwhile" % kind.name, len(load))
    T.check(contiguous(got, 1, last), "%s: entries 1..%d once each, in order (backlog then live, no gap or duplicate)"
            % (kind.name, last), [e["seq"] for e in got][:20])
    journal = {e["seq"]: e for e in n.all_entries(1000)}
    same = all(e["hash"] == journal[e["seq"]]["hash"] and e["txid"] == journal[e["seq"]]["txid"] and
               e["time"] == journal[e["seq"]]["time"] for e in got)
    T.check(same, "%s: seq, time, hash and txid equal the journal's" % kind.name)
    by_seq = {rc["seq"]: rc for rc in load}
    T.check(all(e["effects"] == by_seq[e["seq"]]["effects"] and e["type"] == "account.open" and
                e["signer"] == n.admin.pk for e in got if e["seq"] in by_seq),
            "%s: type, signer and effects equal each tx's receipt" % kind.name)
    T.check(got[0]["type"] == "genesis", "%s: entry 1 is the genesis" % kind.name, got[0])
    conn.close()


def case_from_head_under_load(n, kind):
    conn = kind(n)
    load = []
    th = threading.Thread(target=lambda: load.extend(submit_many(n, 300)))
    th.start()
    time.sleep(0.05)
    r, _ = call(conn, "ledger.subscribe")
    frm = r["result"]["from"]
    sub = r["result"]["subscription"]
    th.join()
    last = n.head()["size"]
    got = collect(conn, sub, last)
    T.check(frm >= 2 and contiguous(got, frm, last),
            "%s: subscribe without from -> from = after the head (%d); then %d..%d in order, none missing"
            % (kind.name, frm, frm, last), [e["seq"] for e in got][:10])
    # unsubscribe: answered true, and no more notifications
    r, notes = call(conn, "ledger.unsubscribe", {"subscription": sub}, id_=2)
    T.eq(r.get("result"), True, "%s: ledger.unsubscribe -> true" % kind.name)
    n.submit(n.tx("account.open", n.admin, account=tc.Key().pk, roles=["investor"], jurisdiction="US", kyc=True),
             n.admin)
    T.check(conn.recv(timeout=0.5) is None, "%s: nothing arrives after unsubscribe" % kind.name)
    r, _ = call(conn, "ledger.unsubscribe", {"subscription": sub}, id_=3)
    T.eq(r.get("result"), False, "%s: unsubscribing again -> false" % kind.name)
    conn.close()


def case_bounds(n, kind):
    conn = kind(n)
    subs = [call(conn, "ledger.subscribe", id_=i)[0] for i in range(16)]
    T.check(all("result" in r for r in subs), "%s: 16 subscriptions on one connection" % kind.name)
    r, _ = call(conn, "ledger.subscribe", id_=99)
    T.check(r.get("error", {}).get("code") == -32002, "%s: the 17th -> -32002 overloaded" % kind.name, r)
    for p, name in (({"from": 0}, "from 0"), ({"from": "1"}, "from a string"), ({"from": 1.5}, "from 1.5"),
                    ({"x": 1}, "an unknown param")):
        r, _ = call(conn, "ledger.subscribe", p, id_=100)
        T.check(r.get("error", {}).get("code") == -32602, "%s: subscribe with %s -> -32602" % (kind.name, name), r)
    r, _ = call(conn, "ledger.unsubscribe", {"subscription": "x" * 200}, id_=101)
    T.eq(r.get("result"), False, "%s: unsubscribe of an unknown id -> false" % kind.name)
    conn.close()
    time.sleep(0.2)
    open_now = n.call("node.status")["counters"]["subscriptions_open"]
    T.eq(open_now, 0, "%s: a closed connection's subscriptions end with it" % kind.name)


def case_not_over_post(n):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d/" % n.port, method="POST",
                                 data=json.dumps({"jsonrpc": "2.0", "method": "ledger.subscribe", "id": 1}).encode(),
                                 headers={"Content-Type": "application/json"})
    r = json.loads(urllib.request.urlopen(req, timeout=10).read())
    T.check(r.get("error", {}).get("code") == -32600, "POST / ledger.subscribe -> -32600 (needs a lasting connection)", r)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def case_slow_consumer(n, kind):
    slow = kind(n, rcvbuf=4096)  # a small window: the daemon's side fills first
    r, _ = call(slow, "ledger.subscribe")
    sub, frm = r["result"]["subscription"], r["result"]["from"]
    ended_before = n.call("node.status")["counters"]["subscriptions_slow"]
    rss0 = rss_kb(n.proc.pid)
    peak, sent = rss0, 0
    while sent < 60000:
        submit_many(n, 2000)
        sent += 2000
        peak = max(peak, rss_kb(n.proc.pid))
        if n.call("node.status")["counters"]["subscriptions_slow"] > ended_before:
            break
    T.check(n.call("node.status")["counters"]["subscriptions_slow"] == ended_before + 1,
            "%s: a subscriber that never reads is cut off (after %d txs)" % (kind.name, sent))
    submit_many(n, 2000)
    peak = max(peak, rss_kb(n.proc.pid))
    T.check(peak - rss0 < 64 * 1024, "%s: the daemon's RSS stayed bounded (+%d KiB while %d txs went by)"
            % (kind.name, peak - rss0, sent + 2000))
    got, end = [], None
    while True:
        m = slow.recv(timeout=10)
        if m is None:
            break
        if m.get("method") == "ledger.entry":
            got.append(m["params"]["entry"])
        elif m.get("method") == "ledger.subscription_end":
            end = m["params"]
            break
    T.check(end is not None and end["subscription"] == sub and end["reason"] == "slow_consumer",
            "%s: one ledger.subscription_end {reason: slow_consumer}" % kind.name, end)
    if end is None:
        return
    T.check(contiguous(got, frm, end["next"] - 1), "%s: before it, entries %d..next-1 (%d) in order, none missing"
            % (kind.name, frm, end["next"] - 1), [e["seq"] for e in got[-3:]])
    T.check(slow.recv(timeout=0.5) is None, "%s: nothing after the end notification" % kind.name)
    last = n.head()["size"]
    again = kind(n)
    r, _ = call(again, "ledger.subscribe", {"from": end["next"]})
    more = collect(again, r["result"]["subscription"], last, timeout=120)
    T.check(contiguous(more, end["next"], last), "%s: resubscribing from next gets %d..%d: nothing missed"
            % (kind.name, end["next"], last), [e["seq"] for e in more[:3]])
    again.close()
    slow.close()


def main():
    # Under AddressSanitizer freed memory sits in a 256 MB quarantine, which would
    # drown the RSS bound; a small quarantine keeps it meaningful there.
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    kinds = [Lines, Ws]
    with tc.Node() as n:
        n.init().start()
        for kind in kinds:
            case_from_one_under_load(n, kind)
            case_from_head_under_load(n, kind)
            case_bounds(n, kind)
        case_not_over_post(n)
        for kind in kinds:
            case_slow_consumer(n, kind)
        T.check(n.alive(), "the daemon is still running")
        lingering = Lines(n)  # a subscriber reading its backlog while the daemon stops
        call(lingering, "ledger.subscribe", {"from": 1})
        T.eq(n.stop(), 0, "tranched exits 0 on SIGTERM with a subscription open (nothing leaked under ASan)")
        lingering.close()
    T.done()


if __name__ == "__main__":
    main()
