#!/usr/bin/python3
"""test_http.py - HTTP/1.1 on the JSON-RPC port (PROTOCOL.md section 5.1).

Against the real daemon, with standard clients (curl, Python requests) and
raw sockets: JSON-RPC by POST / (batches, errors still 200, notifications
204), 415 without Content-Type (nothing executed), 413 over the limit
(nothing executed), 404/405, pipelining in order, the Host allowlist and
CORS, header and body slowloris (a 2 s request deadline), junk first bytes
closed, an HTTP body never executed as NDJSON, /health, /ready, and /metrics
parsed by prometheus_client's text parser.  Only 127.0.0.1.  Prints TAP.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
try:
    import requests
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # tools/deps.sh installs python3-requests and python3-prometheus-client
    print("1..0 # SKIP %s" % e)
    sys.exit(0)

DEADLINE_S = 2
CORS = "http://app.example"
HEAD = {"jsonrpc": "2.0", "method": "ledger.head", "id": 1}


def url(n, path="/"):
    return "http://127.0.0.1:%d%s" % (n.port, path)


def raw(n, data, timeout=10, until_close=True):
    """Sends bytes on a fresh connection; returns everything read until EOF (or timeout)."""
    s = socket.create_connection(("127.0.0.1", n.port), timeout=timeout)
    try:
        s.sendall(data)
        got = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got += d
            if not until_close and got.count(b"\r\n\r\n") >= 1:
                break
        return got
    finally:
        s.close()


def responses(data):
    """Splits raw HTTP/1.1 responses (Content-Length framed) into (status, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def post_raw(body, ctype=b"application/json", host=b"127.0.0.1", extra=b""):
    ct = b"Content-Type: " + ctype + b"\r\n" if ctype else b""
    return (b"POST / HTTP/1.1\r\nHost: " + host + b"\r\n" + ct + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def open_account_body(n):
    k = tc.Key()
    b = tc.tx_bytes(n.tx("account.open", n.admin, account=k.pk, roles=["investor"], jurisdiction="US", kyc=True))
    req = {"jsonrpc": "2.0", "method": "tx.submit", "id": 9, "params": {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}}
    return k, json.dumps(req).encode()


def not_opened(n, k):
    r = n.roe("account.get", {"account": k.pk})
    return isinstance(r, dict) and r.get("code") == -32004


# ------------------------------------------------------------------ cases

def case_curl(n):
    if shutil.which("curl") is None:
        T.comment("curl not installed; case skipped")
        return
    out = subprocess.run(["curl", "-sS", "-H", "Content-Type: application/json", "-d", json.dumps(HEAD), url(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    r = json.loads(out.stdout) if out.returncode == 0 else None
    T.check(isinstance(r, dict) and r.get("result", {}).get("size", 0) >= 1, "curl -d JSON-RPC: ledger.head answered",
            out.stdout[:300] + out.stderr[:300])
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-d", json.dumps(HEAD), url(n)],
                         stdout=subprocess.PIPE, timeout=20)
    T.eq(out.stdout, b"415", "curl -d without Content-Type: application/json -> 415")


def case_requests(n):
    with requests.Session() as s:
        r = s.post(url(n), json=HEAD, timeout=10)
        T.check(r.status_code == 200 and r.headers.get("Content-Type") == "application/json" and
                r.json()["result"]["size"] >= 1, "requests: POST / ledger.head -> 200 JSON", r.text[:300])
        r = s.post(url(n), json={"jsonrpc": "2.0", "method": "no.such", "id": 2}, timeout=10)
        T.check(r.status_code == 200 and r.json().get("error", {}).get("code") == -32601,
                "a JSON-RPC error still gets HTTP 200", r.text[:300])
        r = s.post(url(n), json=[dict(HEAD, id=i) for i in range(3)], timeout=10)
        T.check(r.status_code == 200 and [x["id"] for x in r.json()] == [0, 1, 2], "a batch -> array in order",
                r.text[:300])
        r = s.post(url(n), json={"jsonrpc": "2.0", "method": "ledger.head"}, timeout=10)
        T.check(r.status_code == 204 and r.content == b"", "notification only -> 204, no body", r.status_code)
        r = s.post(url(n), data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
        T.check(r.status_code == 200 and r.json().get("error", {}).get("code") == -32700, "bad JSON -> 200 with -32700")
        r = s.post(url(n), json=[dict(HEAD, id=i) for i in range(101)], timeout=10)
        T.check(r.json().get("error", {}).get("code") == -32600, "batch of 101 -> -32600 as on NDJSON", r.text[:200])
        k, body = open_account_body(n)
        r = s.post(url(n), data=body, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=20)
        T.check(r.status_code == 200 and "seq" in r.json().get("result", {}), "tx.submit over HTTP -> receipt",
                r.text[:300])
        T.check(not not_opened(n, k), "the account opened over HTTP exists")
        r = s.get(url(n, "/health"), timeout=10)
        T.check(r.status_code == 200, "GET /health -> 200 (same keep-alive session)")
        r = s.get(url(n, "/ready"), timeout=10)
        T.check(r.status_code == 200 and r.text == "ready\n", "GET /ready -> 200 ready", r.text)


def case_refusals(n):
    k, body = open_account_body(n)
    for ctype, name in ((None, "no Content-Type"), (b"text/plain", "text/plain"),
                        (b"application/x-www-form-urlencoded", "a form"), (b"application/jsonp", "application/jsonp")):
        rs = responses(raw(n, post_raw(body, ctype)))
        T.check(len(rs) == 1 and rs[0][0] == 415, "POST / with %s -> 415" % name, rs)
    time.sleep(0.3)
    T.check(not_opened(n, k), "415: nothing was executed (the tx.submit body did not run)")
    big = b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"params":{"x":"' + b"a" * (1024 * 1024) + b'"}}'
    rs = responses(raw(n, post_raw(big)))
    T.check(len(rs) == 1 and rs[0][0] == 413 and rs[0][1].get("connection") == "close", "a 1 MiB + body -> 413, close",
            [r[:2] for r in rs])
    s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
    s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n")
    got = s.recv(4096)
    T.check(got.startswith(b"HTTP/1.1 413"), "Content-Length 5 MB -> 413 before any body byte is sent", got[:100])
    s.close()
    chunk = b"a" * 65536
    chunked = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    rs = responses(raw(n, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + chunked))
    T.check(len(rs) == 1 and rs[0][0] == 413, "a chunked body over 1 MiB -> 413", [r[:2] for r in rs])
    for req, want, name in ((b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "unknown path"),
                            (b"GET /explorer.jsx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "a file the explorer has not"),
                            (b"PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405, "PUT /"),
                            (b"DELETE /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "DELETE /health"),
                            (b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405,
                             "POST /health (no state change by GET routes, no POST to them)"),
                            (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "GET /ws without an upgrade"),
                            (b"GET /health HTTP/1.0\r\n\r\n", 400, "no Host header"),
                            (b"GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403, "Host evil.example (rebinding)"),
                            (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: 127.0.0.1\r\n\r\n", 400, "two Host headers"),
                            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"y" * 20000 + b"\r\n\r\n", 431,
                             "a 20 kB header"),
                            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: y\r\n" * 150 + b"\r\n", 431,
                             "150 header lines"),
                            (b"GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 400, "malformed version")):
        rs = responses(raw(n, req, timeout=5))
        T.check(len(rs) >= 1 and rs[0][0] == want, "%s -> %d" % (name, want), [r[:2] for r in rs])
    for path, ctype, text in ((b"/", "text/html", b"tranche explorer"), (b"/?x=1", "text/html", b"tranche explorer"),
                              (b"/explorer.js", "text/javascript", b"verifyEntry"),
                              (b"/explorer.css", "text/css", b"font")):
        rs = responses(raw(n, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
        T.check(len(rs) == 1 and rs[0][0] == 200 and rs[0][1].get("content-type", "").startswith(ctype) and
                "script-src 'self'" in rs[0][1].get("content-security-policy", "") and text in rs[0][2],
                "GET %s -> 200 %s, compiled in, with a Content-Security-Policy" % (path.decode(), ctype),
                [r[:2] for r in rs])
    for host in (b"localhost:%d" % n.port, b"127.0.0.1:%d" % n.port, b"[::1]:%d" % n.port, b"ledger.example"):
        rs = responses(raw(n, b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"))
        T.check(len(rs) == 1 and rs[0][0] == 200, "Host %s allowed" % host.decode(), rs)
    k, body = open_account_body(n)
    rs = responses(raw(n, post_raw(body, extra=b"Origin: http://evil.example\r\nConnection: close\r\n")))
    T.check(len(rs) == 1 and rs[0][0] == 403, "POST from a foreign Origin -> 403", rs)
    time.sleep(0.3)
    T.check(not_opened(n, k), "the foreign-origin POST executed nothing")


def case_cors(n):
    rs = responses(raw(n, post_raw(json.dumps(HEAD).encode(), extra=b"Connection: close\r\n")))
    T.check(rs and rs[0][0] == 200 and "access-control-allow-origin" not in rs[0][1],
            "no Origin: no CORS header", rs)
    rs = responses(raw(n, post_raw(json.dumps(HEAD).encode(), extra=b"Origin: " + CORS.encode() +
                                   b"\r\nConnection: close\r\n")))
    T.check(rs and rs[0][0] == 200 and rs[0][1].get("access-control-allow-origin") == CORS,
            "the configured origin gets Access-Control-Allow-Origin", rs)
    rs = responses(raw(n, b"OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: " + CORS.encode() +
                       b"\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"))
    T.check(rs and rs[0][0] == 204 and "POST" in rs[0][1].get("access-control-allow-methods", "") and
            rs[0][1].get("access-control-allow-headers") == "Content-Type", "preflight from the configured origin", rs)
    rs = responses(raw(n, b"OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                          b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"))
    T.check(rs and rs[0][0] == 405 and "access-control-allow-origin" not in rs[0][1], "preflight from another origin fails",
            rs)


def case_pipelining(n):
    reqs = (post_raw(json.dumps(dict(HEAD, id=1)).encode()) +
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
            post_raw(json.dumps([dict(HEAD, id=2), dict(HEAD, id=3)]).encode()) +
            post_raw(json.dumps({"jsonrpc": "2.0", "method": "ledger.head"}).encode()) +
            b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
            post_raw(json.dumps(dict(HEAD, id=4)).encode(), extra=b"Connection: close\r\n") +
            post_raw(json.dumps(dict(HEAD, id=5)).encode()))  # after Connection: close: never read
    rs = responses(raw(n, reqs))
    got = [(st, json.loads(b)["id"] if st == 200 and b.startswith(b"{") else
            [x["id"] for x in json.loads(b)] if st == 200 and b.startswith(b"[") else b.decode()) for st, _, b in rs]
    T.eq(got, [(200, 1), (200, "ok\n"), (200, [2, 3]), (204, ""), (404, "not found\n"), (200, 4)],
         "7 pipelined requests in one write: answered in order, nothing after Connection: close")
    many = b"".join(post_raw(json.dumps(dict(HEAD, id=i)).encode()) for i in range(200))
    rs = responses(raw(n, many + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout=30))
    T.eq([json.loads(b)["id"] for st, _, b in rs[:-1]], list(range(200)), "200 pipelined POSTs: all answered in order")


def case_slowloris(n):
    for name, first, drip in (("header", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-a: b\r\n"),
                              ("body", b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 1000\r\n\r\n", b" ")):
        s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
        s.sendall(first)
        start, closed, got = time.monotonic(), False, b""
        s.settimeout(0.2)
        while time.monotonic() - start < DEADLINE_S + 4:
            try:
                s.sendall(drip)
            except OSError:
                closed = True
                break
            try:
                d = s.recv(4096)
                if not d:
                    closed = True
                    break
                got += d
            except socket.timeout:
                pass
        took = time.monotonic() - start
        s.close()
        T.check(closed and got.startswith(b"HTTP/1.1 408") and took < DEADLINE_S + 2,
                "%s slowloris: 408 and closed after the %d s deadline though bytes keep coming (%.1f s)" % (
                    name, DEADLINE_S, took), got[:100])


def case_cross_protocol(n):
    # The old hole: an HTTP POST's header lines got -32700 each and its JSON body ran as NDJSON.
    k, body = open_account_body(n)
    got = raw(n, post_raw(b"\n" + body + b"\n", ctype=b"text/plain", extra=b"Connection: close\r\n"))
    T.check(got.startswith(b"HTTP/1.1 415") and b"jsonrpc" not in got, "a text/plain POST with a JSON-RPC body: one 415",
            got[:300])
    got = raw(n, b"GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n" + body + b"\n")
    T.check(got.startswith(b"HTTP/1.1 403") and b"jsonrpc" not in got, "bytes after a refused request are not run",
            got[:300])
    time.sleep(0.3)
    T.check(not_opened(n, k), "no HTTP request's body ran as NDJSON")
    for junk, name in ((b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, "a TLS ClientHello"),
                       (b"xyz " + json.dumps(HEAD).encode() + b"\n", "a word"), (b"get /health HTTP/1.1\r\n\r\n",
                                                                                "a lower-case method"),
                       (b"GETX / HTTP/1.1\r\n\r\n", "an unknown method"), (b"\x00\n", "a NUL byte")):
        got = raw(n, junk, timeout=5)
        T.eq(got, b"", "junk first bytes (%s): closed without an answer" % name)
    c = n.connect()
    r = c.call("ledger.head", {})
    T.check(isinstance(r, dict) and r["size"] >= 1, "NDJSON still works on the same port")
    c.close()
    got = raw(n, b" \r\n" + json.dumps(HEAD).encode() + b"\n", timeout=3)
    T.check(b'"result"' in got, "JSON whitespace first: NDJSON", got[:200])


def case_metrics(n):
    r = requests.get(url(n, "/metrics"), timeout=10)
    T.check(r.status_code == 200 and r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
            "GET /metrics -> 200 text/plain; version=0.0.4", r.headers)
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    T.check(all(name.startswith("tranche_") for name in fams), "every metric is prefixed tranche_", sorted(fams))
    for name, typ in (("tranche_rpc_request_duration_seconds", "histogram"), ("tranche_batch_size_txs", "histogram"),
                      ("tranche_commit_duration_seconds", "histogram"), ("tranche_txs_committed", "counter"),
                      ("tranche_connections_accepted", "counter"), ("tranche_journal_entries", "gauge"),
                      ("tranche_connections_open", "gauge")):
        T.check(name in fams and fams[name].type == typ, "%s is a %s" % (name, typ),
                fams[name].type if name in fams else None)
    counters = [s.name for f in fams.values() if f.type == "counter" for s in f.samples]
    T.check(counters and all(x.endswith("_total") for x in counters), "counter samples end in _total", counters)

    def sample(fam, suffix, labels=None):
        for s in fams[fam].samples:
            if s.name == fam + suffix and (labels is None or s.labels == labels):
                return s.value
        return None
    T.check(sample("tranche_commit_duration_seconds", "_count") >= 1 and
            sample("tranche_batch_size_txs", "_bucket", {"le": "+Inf"}) == sample("tranche_batch_size_txs", "_count"),
            "commit and batch histograms counted the txs submitted earlier")
    T.check(sample("tranche_rpc_request_duration_seconds", "_count") >= 10, "request latency histogram is filled")
    head = n.call("ledger.head", {})
    T.check(sample("tranche_journal_entries", "") == head["size"] or sample("tranche_journal_entries", "") >= 1,
            "tranche_journal_entries is the journal size")


def main():
    node = tc.Node(workers=2)
    try:
        node.init()
        with open(os.path.join(node.datadir, "tranche.conf"), "a") as f:
            f.write("request_deadline = %d\nhttp_cors = %s\nhttp_hosts = ledger.example\n" % (DEADLINE_S, CORS))
        node.start()
        for name, fn in (("curl", case_curl), ("requests", case_requests), ("refusals", case_refusals),
                         ("cors", case_cors), ("pipelining", case_pipelining), ("slowloris", case_slowloris),
                         ("cross-protocol", case_cross_protocol), ("metrics", case_metrics)):
            T.comment("--- " + name)
            T.section(name, fn, node)
        T.check(node.alive(), "the daemon is still running")
        T.eq(node.stop(), 0, "tranched exits 0 on SIGTERM")
    except Exception:  # noqa: BLE001
        import traceback
        T.check(False, "no exception", traceback.format_exc() + "\n" + node.logs())
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
