#!/usr/bin/python3
"""test_hostile.py - a catalogue of hostile input against the running daemon.

Every case must end in a clear JSON-RPC error or a closed connection, and
the daemon must keep serving others: after each case a ledger.head on a
fresh connection must answer, and its resident memory (VmRSS) must stay
bounded (growth under RSS_GROWTH_MAX_KB over the whole run).  Cases: over-
long line, a line that never ends, invalid UTF-8, deep nesting, hostile
numbers in params and in tx bytes, duplicate names, NUL raw and escaped,
1100 connections from five addresses (limit 1024), 300 from one address
(limit 256 per address), a client that pipelines without reading,
half-closed sockets, batches of 101 / 0 / 100, notifications only, binary
garbage; then, on a second node with a 2 s request deadline, Slowloris: 1030
connections dribbling one byte at a time while honest clients keep being
served.  Only 127.0.0.0/8; bounded in time.  Prints TAP.
"""
import json
import os
import random
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
RNG = random.Random(int(os.environ.get("TRANCHE_TEST_SEED", "4242")))
MIB = 1024 * 1024
RSS_GROWTH_MAX_KB = 200 * 1024
CONNECTIONS_MAX = 1024
HEAD = b'{"jsonrpc":"2.0","method":"ledger.head","id":%d}\n'


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Ctx:
    def __init__(self, node):
        self.node = node
        self.rss0 = rss_kb(node.proc.pid)
        self.rss_max = self.rss0

    def alive(self, case):
        """The daemon still answers a fresh connection; RSS is sampled."""
        ok = False
        try:
            with self.node.connect(timeout=20) as c:
                r = c.call("ledger.head", {})
                ok = isinstance(r, dict) and r.get("size", 0) >= 1
        except Exception as e:  # noqa: BLE001
            r = repr(e)
        T.check(ok and self.node.alive(), "%s: daemon still serves a fresh connection" % case, r)
        rss = rss_kb(self.node.proc.pid) if self.node.alive() else 0
        self.rss_max = max(self.rss_max, rss)
        T.check(rss - self.rss0 < RSS_GROWTH_MAX_KB, "%s: RSS growth %d kB < %d kB" % (
            case, rss - self.rss0, RSS_GROWTH_MAX_KB))


def error_code(resp):
    return resp.get("error", {}).get("code") if isinstance(resp, dict) else None


def expect_error(c, codes, msg, id_=None, check_id=True):
    """Reads one line: an error with a code in codes (and the given id)."""
    line = c.recv_line(timeout=30)
    if line is None:
        return T.check(False, msg + ": got a closed connection instead of an error")
    try:
        resp = tc.loads_strict(line)
    except ValueError as e:
        return T.check(False, msg + ": response is not JSON: %s" % e, line[:300])
    ok = error_code(resp) in codes and (not check_id or resp.get("id") == id_)
    return T.check(ok, "%s -> error %s" % (msg, "/".join(str(x) for x in codes)), resp)


def sender(sock, chunks):
    """Sends chunks in a thread; the peer may close on us (that is allowed)."""
    def run():
        try:
            for ch in chunks:
                sock.sendall(ch)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ------------------------------------------------------------------ cases

def case_oversized_line(ctx):
    c = ctx.node.connect(timeout=30)
    body = b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":{"x":"' + b"a" * (MIB + 16) + b'"}}\n'
    t = sender(c.sock, [body[i:i + 65536] for i in range(0, len(body), 65536)])
    line = c.recv_line(timeout=30)
    resp = tc.loads_strict(line) if line else None
    T.check(resp is None or (error_code(resp) == -32600 and resp.get("id") is None),
            "line over 1 MiB -> -32600 with id null (or a closed connection)", resp)
    T.check(c.at_eof(timeout=10), "line over 1 MiB: the connection is closed afterwards")
    t.join(10)
    c.close()


def case_endless_line(ctx):
    c = ctx.node.connect(timeout=30)
    chunk = b"[" + b"1," * 32767 + b"1"
    t = sender(c.sock, [b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":{"x":'] + [chunk] * 48)
    line = c.recv_line(timeout=30)
    resp = tc.loads_strict(line) if line else None
    T.check(resp is None or (error_code(resp) == -32600 and resp.get("id") is None),
            "3 MiB without a newline -> -32600 id null once past 1 MiB (or closed)", resp)
    T.check(c.at_eof(timeout=10), "endless line: the connection is closed")
    t.join(10)
    c.close()


def case_invalid_utf8(ctx):
    c = ctx.node.connect()
    for name, raw in (("byte 0xff", b'"\xff"'), ("overlong '/'", b'"\xc0\xaf"'),
                      ("raw surrogate", b'"\xed\xa0\x80"'), ("truncated sequence", b'"\xe2\x82"'),
                      ("above U+10FFFF", b'"\xf4\x90\x80\x80"'), ("lone escaped surrogate", b'"\\ud800"'),
                      ("BOM", None)):
        if raw is None:
            c.send_raw(b"\xef\xbb\xbf" + HEAD % 1)
        else:
            c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":{"x":' + raw + b"}}\n")
        expect_error(c, (-32700,), "invalid UTF-8 / text: " + name, None)
    c.close()


def case_deep_nesting(ctx):
    c = ctx.node.connect(timeout=30)
    c.send_raw(b"[" * 100000 + b"\n")
    expect_error(c, (-32700,), "100k '[' -> parse error", None)
    c.send_raw(b'{"a":' * 100000 + b"1" + b"}" * 100000 + b"\n")
    expect_error(c, (-32700,), "100k nested objects -> parse error", None)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":' + b"[" * 20 + b"]" * 20 + b"}\n")
    expect_error(c, (-32700, -32602), "params nested 20 deep -> parse error or invalid params", None,
                 check_id=False)
    c.close()


def case_numbers_in_params(ctx):
    c = ctx.node.connect()
    for lit in (b"1e400", b"-1e400", b"-1", b"1.5", b"99999999999999999999", b"9007199254740992", b"-0", b"0",
                b"1e-400", b'"1"', b"null", b"true"):
        c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entry","id":7,"params":{"seq":' + lit + b"}}\n")
        expect_error(c, (-32602, -32700), "ledger.entry seq=%s" % lit.decode(), 7, check_id=False)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entries","id":8,"params":{"from":1,"limit":1001}}\n')
    expect_error(c, (-32602,), "ledger.entries limit 1001", 8)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1e400}\n')
    line = c.recv_line(timeout=10)
    T.check(line is not None and tc.loads_strict(line.replace(b"1e400", b"0")) is not None,
            "id 1e400 answered with some JSON (not a crash)", line)
    c.close()


def case_numbers_in_tx(ctx):
    n = ctx.node
    c = n.connect()
    k = tc.Key()
    base = tc.tx_bytes(n.tx("asset.issue", n.admin, asset="NUM", to=k.pk, units=12345))
    for lit in (b"1e3", b"-1", b"1.0", b"1.5", b"-0", b"01", b"9007199254740992", b"99999999999999999999",
                b"1e400", b"0", b'"10"', b"null", b"true", b"[1]"):
        b = base.replace(b'"units":12345', b'"units":' + lit)
        c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "id": 3,
                    "params": {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}})
        r = c.recv()
        T.check(tc.reason_of(r.get("error")) == "invalid", "tx bytes units=%s -> refused invalid" % lit.decode(),
                r)
    c.close()


def case_integer_forms_in_params(ctx):
    # Integer params are 0 or [1-9][0-9]* (§1): 1.0, 1e0 and -1 are -32602, in
    # single requests and inside batches, judged on the request's own bytes.
    c = ctx.node.connect()
    for lit in (b"1.0", b"1e0", b"1E0", b"-1", b"1.5"):
        c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entry","params":{"seq":' + lit + b'},"id":7}\n')
        expect_error(c, (-32602,), "ledger.entry seq=%s -> -32602" % lit.decode(), 7)
    c.send_raw(b'[{"jsonrpc":"2.0","method":"ledger.entry","params":{"seq":1},"id":1},'
               b'{"jsonrpc":"2.0","method":"ledger.entry","params":{"seq":1.0},"id":2}]\n')
    r = c.recv()
    T.check(isinstance(r, list) and len(r) == 2 and "result" in r[0] and r[1].get("error", {}).get("code") == -32602,
            "in a batch only the element with seq=1.0 is -32602", r)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entry","params":{"seq":1},"id":1.5}\n')
    line = c.recv_line(timeout=10)
    r = json.loads(line) if line else None  # the echoed id 1.5 is a float: not loads_strict
    T.check(isinstance(r, dict) and "result" in r, "a fractional id does not make integer params invalid", r)
    c.close()


def case_duplicate_keys(ctx):
    n = ctx.node
    c = n.connect()
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"id":2}\n')
    expect_error(c, (-32700,), "duplicate id member in the request", None)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entry","id":1,"params":{"seq":1,"se\\u0071":2}}\n')
    expect_error(c, (-32700,), "duplicate param name (one escaped)", None)
    k = tc.Key()
    tx = n.tx("account.open", n.admin, account=k.pk, roles=["investor"], jurisdiction="US", kyc=True)
    b = tc.tx_bytes(tx)
    for name, dup in (("kyc twice", b.replace(b'"kyc":true', b'"kyc":false,"kyc":true')),
                      ("account twice", b.replace(b'"account":', b'"account":"%s","account":' % k.pk.encode())),
                      ("escaped duplicate", b.replace(b'"kyc":true', b'"kyc":true,"\\u006byc":true'))):
        c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "id": 4,
                    "params": {"tx": dup.decode(), "sig": tc.sign_tx(dup, n.admin)}})
        r = c.recv()
        T.check(tc.reason_of(r.get("error")) == "invalid", "tx with %s -> refused invalid" % name, r)
    T.check(isinstance(n.roe("account.get", {"account": k.pk}), dict) and
            n.roe("account.get", {"account": k.pk}).get("code") == -32004, "no account was opened by them")
    c.close()


def case_nul(ctx):
    n = ctx.node
    c = n.connect()
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":{"x":"a\x00b"}}\n')
    expect_error(c, (-32700,), "raw NUL inside a string", None)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1}\x00\n')
    expect_error(c, (-32700,), "raw NUL after the request", None)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":"\\u0000"}\n')
    expect_error(c, (-32700,), "escaped \\u0000 in the id", None)
    c.send_raw(b"\x00\x00\x00\n")
    expect_error(c, (-32700,), "a line of NUL bytes", None)
    b = tc.tx_bytes(n.tx("account.open", n.admin, account=tc.Key().pk, roles=["investor"], jurisdiction="US",
                         kyc=True))
    b = b[:-1] + b',"memo":"a\\u0000b"}'
    c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "id": 5,
                "params": {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}})
    r = c.recv()
    T.check(tc.reason_of(r.get("error")) == "invalid", "escaped \\u0000 inside tx bytes -> refused invalid", r)
    c.close()


def case_many_connections(ctx, total=1100, sources=5, per_peer=None):
    """total connections from `sources` loopback addresses, all idle at first:
    at most CONNECTIONS_MAX (or per_peer from one address) are served, the
    rest are closed (refused, or evicted as the least progressed), none hangs."""
    limit = raise_nofile(total + 200)
    if limit < total + 50:
        T.comment("RLIMIT_NOFILE %d is too low for %d connections; case skipped" % (limit, total))
        return
    served_max = per_peer if per_peer is not None else CONNECTIONS_MAX
    socks, refused_at_connect = [], 0
    try:
        for k in range(total):
            try:
                src = ("127.0.0.%d" % (1 + k % sources), 0)
                socks.append(socket.create_connection(("127.0.0.1", ctx.node.port), timeout=10,
                                                      source_address=src))
            except OSError:
                refused_at_connect += 1
        time.sleep(0.5)
        answered = closed = 0
        for i, s in enumerate(socks):
            try:
                s.sendall(HEAD % i)
            except OSError:
                pass
        for i, s in enumerate(socks):
            s.settimeout(15)
            buf = b""
            try:
                while b"\n" not in buf:
                    d = s.recv(4096)
                    if not d:
                        break
                    buf += d
            except OSError:
                pass
            if b"\n" in buf and json.loads(buf.split(b"\n")[0]).get("id") == i:
                answered += 1
            else:
                closed += 1
        T.comment("%d connections: %d answered, %d closed, %d refused at connect" % (
            total, answered, closed, refused_at_connect))
        T.check(served_max - 8 <= answered <= served_max,
                "%d connections from %d address(es): about %d served (got %d)" % (total, sources, served_max, answered))
        T.check(answered + closed + refused_at_connect == total and closed + refused_at_connect >= total - served_max,
                "the excess connections are closed, none hangs")
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)


def case_one_peer(ctx):
    case_many_connections(ctx, total=300, sources=1, per_peer=PER_PEER_MAX)


def case_slowloris(node, deadline_s):
    """1030 connections from five addresses each send a partial line and then
    one more byte every 0.25 s.  Honest clients from a sixth address must be
    answered throughout (a newcomer evicts the connection that made least
    progress), and every dribbling connection is closed within the request
    deadline although it never stops sending."""
    total, sources = 1030, 5
    if raise_nofile(total + 300) < total + 100:
        T.comment("RLIMIT_NOFILE too low for %d connections; case skipped" % total)
        return
    attackers = []
    for k in range(total):
        s = socket.create_connection(("127.0.0.1", node.port), timeout=10,
                                     source_address=("127.0.0.%d" % (2 + k % sources), 0))
        s.setblocking(False)
        attackers.append(s)
    start = time.monotonic()
    dribble = b'{"jsonrpc":"2.0","method":"ledger.head","id":1}'
    alive = {s: 0 for s in attackers}

    def tick():
        """One byte to every attacker still open; returns how many are open."""
        for s, i in list(alive.items()):
            try:
                if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                    del alive[s]
                    continue
            except BlockingIOError:
                pass
            except OSError:
                del alive[s]
                continue
            try:
                s.send(dribble[i % len(dribble):i % len(dribble) + 1])
                alive[s] = i + 1
            except BlockingIOError:
                pass
            except OSError:
                del alive[s]
        return len(alive)

    honest_ok, honest_n, honest_worst = 0, 0, 0.0
    while time.monotonic() - start < deadline_s * 0.75:  # before any deadline can fire
        tick()
        t0 = time.monotonic()
        try:
            with tc.Rpc("127.0.0.1", node.port, timeout=5) as c:
                r = c.call("ledger.head", {})
                honest_ok += isinstance(r, dict) and r.get("size", 0) >= 1
        except Exception:  # noqa: BLE001
            pass
        honest_n += 1
        honest_worst = max(honest_worst, time.monotonic() - t0)
        time.sleep(0.05)
    T.comment("slowloris: %d of %d honest requests answered while 1030 dribblers were connected (worst %.2f s)" % (
        honest_ok, honest_n, honest_worst))
    T.check(honest_n >= 3 and honest_ok == honest_n,
            "slowloris: every honest client is served while all slots are held by dribblers")
    while alive and time.monotonic() - start < deadline_s + 4:
        tick()
        time.sleep(0.25)
    T.check(not alive, "slowloris: every dribbling connection is closed within the %d s request deadline "
            "although it keeps sending (%d still open after %.1f s)" % (deadline_s, len(alive), time.monotonic() - start))
    st = node.call("node.status", {})["counters"]
    T.comment("slowloris: evicted %d, closed as too slow %d" % (st["connections_evicted"], st["requests_too_slow"]))
    T.check(st["connections_evicted"] >= 1 and st["requests_too_slow"] >= 1,
            "slowloris: node.status counts evictions and requests over the deadline", st)
    for s in attackers:
        s.close()
    # A line that completes within the deadline is not cut, however slowly it started.
    c = node.connect(timeout=10)
    c.send_raw(b'{"jsonrpc":"2.0",')
    time.sleep(deadline_s * 0.5)
    c.send_raw(b'"method":"ledger.head","id":5}\n')
    r = c.recv(timeout=10)
    T.check(r.get("id") == 5 and "result" in r, "a line completed within the deadline is answered", r)
    c.close()


def case_slow_reader(ctx):
    """Pipelines many requests and never reads: the daemon must stop reading it."""
    s = socket.create_connection(("127.0.0.1", ctx.node.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    req = b'{"jsonrpc":"2.0","method":"rpc.discover","id":%d}\n'
    sent, total, stalled = 0, 400000, False
    s.settimeout(3.0)
    i = 0
    deadline = time.monotonic() + 60
    while i < total and time.monotonic() < deadline:
        chunk = b"".join(req % j for j in range(i, i + 1000))
        try:
            s.sendall(chunk)
        except socket.timeout:
            stalled = True
            break
        sent += len(chunk)
        i += 1000
    rss = rss_kb(ctx.node.proc.pid)
    T.comment("slow reader: %d request bytes (%d requests) accepted by TCP before the stall; daemon RSS %d kB" % (
        sent, i, rss))
    T.check(stalled, "a client that never reads is stopped being read (its sends stall)")
    ctx.alive("while a slow reader is stalled")
    s.settimeout(10)
    got = b""
    try:
        while got.count(b"\n") < 3:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    first = [json.loads(x).get("id") for x in got.split(b"\n")[:3]] if got.count(b"\n") >= 3 else None
    T.eq(first, [0, 1, 2], "the slow reader's first answers are in order once it reads")
    s.close()
    time.sleep(1.0)


def case_big_answers_unread(ctx, conns=4, lines=64):
    """Issue #12 finding 1: lines whose answers are ~100 times their size (batches of 100 x ledger.entries
    {limit: 1000} over a journal of 1000+ entries), pipelined by clients that never read. Every response byte
    counts against the connection's bound before it is made, so RSS stays bounded."""
    node = ctx.node
    with node.connect(timeout=60) as c:  # a journal of > 1000 entries, 100 txs a line
        for b in range(12):
            batch = []
            for j in range(100):
                tx = tc.tx_bytes(node.tx("account.open", node.admin, account=tc.Key().pk, roles=["investor"],
                                         jurisdiction="DE", kyc=True))
                batch.append({"jsonrpc": "2.0", "method": "tx.submit", "id": j,
                              "params": {"tx": tx.decode(), "sig": tc.sign_tx(tx, node.admin)}})
            c.send_obj(batch)
            c.recv(timeout=60)
    with node.connect(timeout=30) as c:  # a fresh connection: earlier cases evict idle ones
        size = c.call("ledger.head", {})["size"]
    line = (json.dumps([{"jsonrpc": "2.0", "method": "ledger.entries", "id": i, "params": {"from": 1, "limit": 1000}}
                        for i in range(100)], separators=(",", ":")) + "\n").encode()
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", node.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(2.0)
        socks.append(s)
    sent = [0] * conns
    deadline = time.monotonic() + 15
    peak = rss_kb(node.proc.pid)
    for _ in range(lines):
        for k, s in enumerate(socks):
            try:
                s.sendall(line)
                sent[k] += 1
            except OSError:
                pass
        peak = max(peak, rss_kb(node.proc.pid))
        if time.monotonic() > deadline:
            break
    for _ in range(20):  # the workers go on making answers for a while: sample the peak
        time.sleep(0.25)
        peak = max(peak, rss_kb(node.proc.pid))
    T.comment("big unread answers: journal %d entries, %d lines of %d bytes sent on %d connections (~%d MB of "
              "answers asked), daemon RSS %d kB -> peak %d kB" % (size, sum(sent), len(line), conns,
                                                               sum(sent) * 100 * 1000 * 300 // 10 ** 6, ctx.rss0, peak))
    T.check(size > 1000, "big unread answers: the journal has more than 1000 entries")
    # Per connection at most TR_RPC_OUT_BYTES_MAX (8 MiB) unwritten plus the line being made (<= 16 MiB,
    # rendered once more into its line); all connections together TR_OUT_BYTES_TOTAL_MAX (256 MiB); glibc
    # keeps some freed memory in its arenas. Before the bound, 4 such clients took it past 8 GB.
    bound_kb = 320 * 1024
    T.check(peak - ctx.rss0 < bound_kb, "big unread answers: peak RSS growth %d kB < %d kB with %d clients that "
            "never read" % (peak - ctx.rss0, bound_kb, conns))
    with node.connect(timeout=20) as c:
        r = c.call("ledger.head", {})
    T.check(r.get("size") == size, "big unread answers: the daemon still serves another client meanwhile")
    s = socks[0]
    s.settimeout(20)
    got = b""
    try:
        while got.count(b"\n") < 2:
            d = s.recv(1 << 20)
            if not d:
                break
            got += d
    except OSError:
        pass
    first = [[r.get("id") for r in json.loads(x)][:3] for x in got.split(b"\n")[:2]] if got.count(b"\n") >= 2 else None
    T.eq(first, [[0, 1, 2], [0, 1, 2]], "big unread answers: once it reads, its answers come whole and in order")
    for s in socks:
        s.close()
    for _ in range(40):  # their unwritten answers are freed once the daemon sees the close
        if rss_kb(node.proc.pid) - ctx.rss0 < RSS_GROWTH_MAX_KB:
            break
        time.sleep(0.25)


def case_half_close(ctx):
    c = ctx.node.connect()
    c.send_raw(HEAD % 11)
    c.sock.shutdown(socket.SHUT_WR)
    r = c.recv(timeout=20)
    T.check(r.get("id") == 11 and "result" in r, "request then shutdown(SHUT_WR): the answer arrives", r)
    T.check(c.at_eof(timeout=10), "half-closed: the daemon closes after answering")
    c.close()
    c = ctx.node.connect()
    c.send_raw(b"".join(HEAD % i for i in range(50)))
    c.sock.shutdown(socket.SHUT_WR)
    ids = []
    for _ in range(50):
        line = c.recv_line(timeout=20)
        if line is None:
            break
        ids.append(json.loads(line).get("id"))
    T.eq(ids, list(range(50)), "50 pipelined requests then SHUT_WR: all 50 answers, in order")
    c.close()
    c = ctx.node.connect()
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1}')  # no newline, then EOF
    c.sock.shutdown(socket.SHUT_WR)
    line = c.recv_line(timeout=20)
    T.check(line is None or error_code(tc.loads_strict(line)) is not None or b'"id":1' in line,
            "an unterminated last line then EOF: closed or answered, no hang", line)
    c.close()


def case_batches(ctx):
    c = ctx.node.connect()
    one = {"jsonrpc": "2.0", "method": "ledger.head"}
    c.send_obj([dict(one, id=i) for i in range(101)])
    resp = c.recv()
    T.check(isinstance(resp, dict) and error_code(resp) == -32600 and resp.get("id") is None,
            "batch of 101 -> one -32600 error with id null", resp)
    c.send_raw(b"[]\n")
    resp = c.recv()
    T.check(isinstance(resp, dict) and error_code(resp) == -32600 and resp.get("id") is None,
            "empty batch -> one -32600 error with id null", resp)
    c.send_raw(b"[ ]\n")
    T.check(error_code(c.recv()) == -32600, "empty batch with a space -> -32600")
    c.send_obj([dict(one, id=i) for i in range(100)])
    resp = c.recv()
    T.check(isinstance(resp, list) and [r.get("id") for r in resp] == list(range(100)),
            "batch of 100 -> 100 answers in order", resp if not isinstance(resp, list) else len(resp))
    c.send_raw(b'[1,"x",null,[],{}]\n')
    resp = c.recv()
    T.check(isinstance(resp, list) and len(resp) == 5 and all(error_code(r) == -32600 for r in resp),
            "batch of 5 non-requests -> 5 x -32600", resp)
    c.close()


def case_notifications(ctx):
    n = ctx.node
    c = n.connect()
    note = {"jsonrpc": "2.0", "method": "ledger.head"}
    c.send_obj([note, dict(note, method="no.such"), dict(note, params={"bad": 1})])
    c.send_obj(note)
    c.send_obj({"jsonrpc": "2.0", "method": "ledger.head", "id": "after"})
    r = c.recv()
    T.check(r.get("id") == "after", "batch of notifications and a lone notification get no response", r)
    T.check(c.silent(0.5), "nothing else arrives")
    # tx.submit as a notification: executed, never answered (JSON-RPC 2.0 section 4.1, PROTOCOL section 5).
    k = tc.Key()
    b = tc.tx_bytes(n.tx("account.open", n.admin, account=k.pk, roles=["investor"], jurisdiction="US", kyc=True))
    c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "params": {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}})
    bad = b.replace(b'"kyc":true', b'"kyc":1')
    c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "params": {"tx": bad.decode(), "sig": tc.sign_tx(bad, n.admin)}})
    c.send_obj([{"jsonrpc": "2.0", "method": "tx.submit", "params": {"tx": bad.decode(), "sig": "00" * 64}}])
    c.send_obj({"jsonrpc": "2.0", "method": "ledger.head", "id": "after2"})
    r = c.recv()
    T.check(r.get("id") == "after2",
            "tx.submit notifications (accepted, refused, refused in a batch) get no response", r)
    deadline = time.monotonic() + 10
    got = None
    while time.monotonic() < deadline:
        got = n.roe("tx.get", {"txid": tc.txid_of(b)})
        if "seq" in got:
            break
        time.sleep(0.1)
    T.check(isinstance(got, dict) and "seq" in got, "the tx.submit notification was still executed", got)
    c.close()


def case_garbage(ctx):
    data = bytes(RNG.getrandbits(8) for _ in range(256 * 1024))
    if data[0] not in b"{[ \t\r\n":  # section 5.1: junk first bytes are closed, nothing executed
        c = ctx.node.connect()
        c.send_raw(data[:4096])
        T.check(c.at_eof(timeout=10) and not c.buf, "random first bytes: closed without an answer")
        c.close()
    c = ctx.node.connect()
    t = sender(c.sock, [b"\n", data, b"\n"])  # JSON whitespace first: line framing
    t.join(30)
    n = 0
    while n < 10000:
        line = c.recv_line(timeout=10) if not c.silent(2.0) or c.buf else None
        if line is None:
            break
        resp = tc.loads_strict(line)
        if error_code(resp) not in (-32700, -32600):
            T.check(False, "random bytes: only parse errors", resp)
            break
        n += 1
    T.comment("256 KiB of random bytes: %d error lines" % n)
    T.check(n >= 1, "random bytes get parse errors")
    c.close()


def case_bad_envelopes(ctx):
    c = ctx.node.connect()
    for raw, codes in ((b'{"jsonrpc":"2.0","method":"ledger.head","id":{"a":1}}', (-32600,)),
                       (b'{"jsonrpc":"2.0","method":"ledger.head","id":[1]}', (-32600,)),
                       (b'{"jsonrpc":"1.0","method":"ledger.head","id":1}', (-32600,)),
                       (b'{"jsonrpc":"2.0","method":1,"id":1}', (-32600,)),
                       (b'{"jsonrpc":"2.0","method":"ledger.head","params":"x","id":1}', (-32600, -32602)),
                       (b'"just a string"', (-32600,)), (b"12", (-32600,)), (b"null", (-32600,)),
                       (b"{", (-32700,)), (b'{"jsonrpc":"2.0","method":"ledger.head","id":1} {}', (-32700,))):
        c.send_raw(raw + b"\n")
        expect_error(c, codes, "envelope %s" % raw[:50].decode(), None, check_id=False)
    # Error messages quote (a prefix of) the method or param name: never cut inside a UTF-8 sequence.
    for n in range(55, 62):
        c.send_raw(('{"jsonrpc":"2.0","method":"%s\u00e9\u20ac","id":1}\n' % ("m" * n)).encode())
        expect_error(c, (-32601,), "unknown method of %d+5 bytes: message is valid UTF-8" % n, 1)
    for n in range(36, 42):
        c.send_raw(('{"jsonrpc":"2.0","method":"ledger.head","id":2,"params":{"%s\u00e9":1}}\n' % ("p" * n)).encode())
        expect_error(c, (-32602,), "unknown param of %d+2 bytes: message is valid UTF-8" % n, 2)
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":"' + b"i" * 500000 + b'"}\n')
    r = c.recv(timeout=30)
    T.check(isinstance(r.get("id"), str) and len(r["id"]) == 500000, "a 500 kB string id is echoed", str(r)[:200])
    c.close()


CASES = [
    ("oversized line", case_oversized_line), ("endless line", case_endless_line),
    ("invalid UTF-8", case_invalid_utf8), ("deep nesting", case_deep_nesting),
    ("numbers in params", case_numbers_in_params), ("integer forms in params", case_integer_forms_in_params), ("numbers in tx bytes", case_numbers_in_tx),
    ("duplicate keys", case_duplicate_keys), ("NUL bytes", case_nul), ("bad envelopes", case_bad_envelopes),
    ("batches", case_batches), ("notifications", case_notifications), ("half-close", case_half_close),
    ("random bytes", case_garbage), ("1100 connections", case_many_connections),
    ("one address", case_one_peer), ("slow reader", case_slow_reader), ("big answers unread", case_big_answers_unread),
]
def stalled_count(node):
    with node.connect(timeout=20) as c:
        return c.call("node.status", {})["counters"]["connections_stalled"]


def pipeline_unread(node, rcvbuf=16 * 1024, lines=20):
    """A client that pipelines lines of 100 x rpc.discover (~1 MB of answers each) and reads nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", node.port))
    s.settimeout(2.0)
    line = (json.dumps([{"jsonrpc": "2.0", "method": "rpc.discover", "id": i} for i in range(100)]) + "\n").encode()
    sent = 0
    for _ in range(lines):
        try:
            s.sendall(line)
            sent += 1
        except socket.timeout:
            break  # the daemon stopped reading it: over its output bound
    return s, sent


def case_stalled_reader(node, deadline_s):
    """A client that pipelines and never reads held its slot for ever (it has writes pending, so it was never
    evicted or timed out). Now: over its output bound with nothing taken for request_deadline, it is closed;
    a client that reads, however slowly, is not."""
    before = stalled_count(node)
    slow, sent = pipeline_unread(node)
    got = 0
    t_end = time.monotonic() + deadline_s * 3
    slow.settimeout(5)
    while time.monotonic() < t_end:  # 64 KiB every 0.25 s: slow, but reading
        d = slow.recv(64 * 1024)
        if not d:
            break
        got += len(d)
        time.sleep(0.25)
    T.check(stalled_count(node) == before, "a client that reads slowly (64 KiB / 0.25 s, %d bytes in %ds) is not "
            "closed as stalled" % (got, deadline_s * 3))
    want = sent * 100
    buf, answers = b"", 0
    slow.settimeout(20)
    while answers < sent:
        d = slow.recv(1 << 20)
        if not d:
            break
        buf += d
        answers = buf.count(b"\n")
    T.eq(answers, sent, "...and gets every one of its %d answers (%d requests)" % (sent, want))
    slow.close()

    before = stalled_count(node)
    s, sent = pipeline_unread(node)
    T.comment("stalled reader: %d lines sent before the daemon stopped reading" % sent)
    t0 = time.monotonic()
    closed_after = None
    while time.monotonic() - t0 < deadline_s + 10:
        if stalled_count(node) > before:
            closed_after = time.monotonic() - t0
            break
        time.sleep(0.25)
    T.check(closed_after is not None and closed_after < deadline_s + 4,
            "a client that pipelines and never reads is closed about request_deadline (%ds) after it stalls "
            "(after %s s)" % (deadline_s, closed_after and round(closed_after, 1)))
    s.settimeout(10)
    ended = False
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                ended = True
                break
    except ConnectionResetError:
        ended = True
    except socket.timeout:
        pass
    T.check(ended, "its connection is closed (EOF or reset once it drains what the kernel held)")
    s.close()
    with node.connect(timeout=20) as c:
        T.check(c.call("ledger.head", {}).get("size", 0) >= 1, "the daemon serves others meanwhile")


PER_PEER_MAX = 256
SLOW_DEADLINE_S = 2


def main():
    raise_nofile(1400)  # before start: the daemon inherits it and needs > 1024 descriptors
    # Under AddressSanitizer freed memory sits in a 256 MB quarantine, which would
    # drown the RSS bound; a small quarantine keeps the bound meaningful there.
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    node = tc.Node(workers=2)
    try:
        node.init().start()
        ctx = Ctx(node)
        for name, fn in CASES:
            T.comment("--- " + name)
            T.section(name, fn, ctx)
            ctx.alive(name)
        T.comment("RSS: start %d kB, max %d kB" % (ctx.rss0, ctx.rss_max))
        T.eq(node.stop(), 0, "tranched exits 0 on SIGTERM after the catalogue")
        slow = tc.Node(workers=2)
        try:
            slow.init()
            with open(os.path.join(slow.datadir, "tranche.conf"), "a") as f:
                f.write("request_deadline = %d\n" % SLOW_DEADLINE_S)
            slow.start()
            T.comment("--- slowloris")
            T.section("slowloris", case_slowloris, slow, SLOW_DEADLINE_S)
            T.comment("--- stalled reader")
            T.section("stalled reader", case_stalled_reader, slow, SLOW_DEADLINE_S)
            T.eq(slow.stop(), 0, "tranched exits 0 after the slowloris case")
        finally:
            slow.cleanup()
    except Exception:  # noqa: BLE001
        import traceback
        T.check(False, "no exception", traceback.format_exc() + "\n" + node.logs())
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
