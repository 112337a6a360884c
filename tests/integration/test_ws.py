#!/usr/bin/python3
"""test_ws.py - JSON-RPC over WebSocket, GET /ws (RFC 6455, PROTOCOL.md section 5.1).

Against the real daemon, with a standard client (python3-websocket) and a
frame-by-frame one (wsclient.py): the handshake (accept key, bad key,
version, origin), requests and batches as text messages in order, masking
required, fragmentation with control frames between fragments, ping/pong,
the close handshake, and what is refused: unmasked, reserved bits, binary,
invalid UTF-8, a frame or a fragmented message over 1 MiB (1009, refused on
its header), a 64-bit length with its top bit set.  Only 127.0.0.1.  Prints TAP.
"""
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402
import wsclient as wc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)

HEAD = {"jsonrpc": "2.0", "method": "ledger.head", "id": 1}


def req(id_, method="ledger.head", params=None):
    r = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        r["params"] = params
    return json.dumps(r).encode()


def closed_with(c, code, timeout=10):
    """True when the next frame is a close with `code` and the TCP connection then ends."""
    m = c.recv_message(timeout)
    if m is None or m[0] != 8 or len(m[1]) < 2 or struct.unpack("!H", m[1][:2])[0] != code:
        return False, m
    try:
        more = c.recv_frame(timeout)
    except (EOFError, ConnectionResetError):
        return True, m
    return False, (m, more)


def case_standard_client(n):
    try:
        import websocket
    except ImportError:
        T.comment("python3-websocket not installed; standard-client case skipped")
        return
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws" % n.port, timeout=10)
    ws.send(json.dumps(HEAD))
    r = json.loads(ws.recv())
    T.check(r.get("result", {}).get("size", 0) >= 1, "websocket-client: ledger.head answered in a text message", r)
    ws.ping(b"hello")
    op, frame = ws.recv_data_frame(control_frame=True)
    T.check(op == websocket.ABNF.OPCODE_PONG and frame.data == b"hello", "websocket-client: ping -> pong, same payload",
            (op, frame.data))
    ws.send_close(websocket.STATUS_NORMAL)
    op, frame = ws.recv_data_frame(control_frame=True)
    T.check(op == websocket.ABNF.OPCODE_CLOSE and frame.data[:2] == b"\x03\xe8",
            "websocket-client: close 1000 -> close 1000", (op, frame.data))
    ws.shutdown()


def case_handshake(n):
    s, status, hdrs, _, key = wc.handshake_raw(n.port)
    T.check(status == 101 and hdrs.get("upgrade", "").lower() == "websocket" and
            hdrs.get("sec-websocket-accept", "").encode() == wc.accept_of(key) and "content-length" not in hdrs,
            "handshake: 101, Upgrade: websocket, Sec-WebSocket-Accept = base64(SHA-1(key + GUID))", (status, hdrs))
    s.close()
    for key, name in ((b"not base64!!not base64!!", "a key that is not base64"),
                      (b"AAAAAAAAAAAAAAAAAAAA", "a key of 15 bytes"), (b"", "an empty key")):
        s, status, hdrs, _, _ = wc.handshake_raw(n.port, key=key)
        T.check(status == 400, "handshake with %s -> 400" % name, (status, hdrs))
        s.close()
    s, status, hdrs, _, _ = wc.handshake_raw(n.port, version=b"8")
    T.check(status == 426 and hdrs.get("sec-websocket-version") == "13",
            "Sec-WebSocket-Version 8 -> 426 with Sec-WebSocket-Version: 13", (status, hdrs))
    s.close()
    s, status, hdrs, _, _ = wc.handshake_raw(n.port, extra=b"Origin: http://evil.example\r\n")
    T.check(status == 403, "an upgrade from a foreign Origin -> 403 (cross-site WebSocket hijacking)", status)
    s.close()
    s, status, hdrs, _, _ = wc.handshake_raw(n.port, extra=b"Origin: http://127.0.0.1:%d\r\n" % n.port)
    T.check(status == 101, "an upgrade from this origin -> 101", status)
    s.close()


def case_messages(n):
    c = wc.connect(n.port)
    for i in range(5):
        c.send_text(req(i))
    ids = [json.loads(c.recv_message()[1])["id"] for _ in range(5)]
    T.eq(ids, [0, 1, 2, 3, 4], "five pipelined messages -> five answers in order")
    c.send_text(b"[" + req(7) + b"," + req(8, "no.such") + b"]")
    r = json.loads(c.recv_message()[1])
    T.check(isinstance(r, list) and [x["id"] for x in r] == [7, 8] and r[1]["error"]["code"] == -32601,
            "a batch in one message -> one array message", r)
    c.send_text(b"{nope")
    r = json.loads(c.recv_message()[1])
    T.check(r.get("error", {}).get("code") == -32700, "bad JSON in a message -> -32700 and the connection stays", r)
    k = tc.Key()
    b = tc.tx_bytes(n.tx("account.open", n.admin, account=k.pk, roles=["investor"], jurisdiction="US", kyc=True))
    c.send_text(req(9, "tx.submit", {"tx": b.decode(), "sig": tc.sign_tx(b, n.admin)}))
    r = json.loads(c.recv_message()[1])
    T.check("seq" in r.get("result", {}), "tx.submit over WebSocket -> receipt", r)
    c.send_text(json.dumps({"jsonrpc": "2.0", "method": "ledger.head"}).encode())
    c.send_text(req(10))
    r = json.loads(c.recv_message()[1])
    T.eq(r.get("id"), 10, "a notification gets no message")
    c.close()
    # frames in the same packet as the handshake
    s, status, _, rest, _ = wc.handshake_raw(n.port, extra=b"")
    s.close()
    import base64
    import socket
    s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + wc.frame(1, req(11)))
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    c = wc.Client(s, got.partition(b"\r\n\r\n")[2])
    r = json.loads(c.recv_message()[1])
    T.eq(r.get("id"), 11, "a frame sent with the handshake is answered after the 101")
    c.close()


def case_fragments_and_control(n):
    c = wc.connect(n.port)
    body = req(21)
    a, b, d = body[:10], body[10:20], body[20:]
    c.send(wc.frame(1, a, fin=False) + wc.frame(9, b"mid") + wc.frame(0, b, fin=False) + wc.frame(0, d))
    m1, m2 = c.recv_message(), c.recv_message()
    T.check(m1 == (10, b"mid") and m2[0] == 1 and json.loads(m2[1])["id"] == 21,
            "three fragments with a ping between them: the pong first, then one answer", (m1, m2))
    c.send(wc.frame(9, b"x" * 125))
    T.eq(c.recv_message(), (10, b"x" * 125), "ping with 125 bytes -> pong with the same 125 bytes")
    c.send(wc.frame(10, b"unasked"))
    c.send_text(req(22))
    r = c.recv_message()
    T.check(r[0] == 1 and json.loads(r[1])["id"] == 22, "an unasked pong is ignored", r)
    c.send(wc.frame(8, struct.pack("!H", 1000) + b"bye"))
    ok, m = closed_with(c, 1000)
    T.check(ok, "close 1000 -> close 1000 echoed, then the TCP connection ends", m)
    c.close()


def refused(n, data, code, name, drain_big=False):
    c = wc.connect(n.port)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    ok, m = closed_with(c, code)
    T.check(ok, "%s -> close %d, connection closed" % (name, code), m)
    c.close()


def case_refusals(n):
    refused(n, wc.frame(1, req(1), mask=False), 1002, "an unmasked frame")
    refused(n, wc.frame(1, req(1), rsv=4), 1002, "a reserved bit set")
    refused(n, wc.frame(2, b"\x00\x01"), 1003, "a binary message")
    refused(n, wc.frame(1, b'"\xff\xfe"'), 1007, "text that is not UTF-8")
    refused(n, wc.frame(0, req(1)), 1002, "a continuation with no message")
    refused(n, wc.frame(1, b"[", fin=False) + wc.frame(1, b"]"), 1002, "a new message inside a fragmented one")
    refused(n, wc.frame(9, b"p", fin=False), 1002, "a fragmented ping")
    refused(n, wc.frame(9, b"p" * 126), 1002, "a ping over 125 bytes")
    refused(n, wc.frame(3, b""), 1002, "an unknown opcode")
    refused(n, wc.frame(8, struct.pack("!H", 999)), 1002, "close with an invalid code")
    # oversized: refused on the header, before the payload is sent
    c = wc.connect(n.port)
    c.send(wc.frame(1, b"", length=2 * 1024 * 1024)[:14])  # header + mask only
    ok, m = closed_with(c, 1009)
    T.check(ok, "a frame header announcing 2 MiB -> close 1009 before any payload is sent", m)
    c.close()
    big = b"x" * (1024 * 1024 + 1)
    refused(n, wc.frame(1, big), 1009, "a 1 MiB + 1 frame (sent whole)")
    half = b"x" * (600 * 1024)
    refused(n, wc.frame(1, half, fin=False) + wc.frame(0, half), 1009, "two fragments adding up to 1.2 MiB")
    c = wc.connect(n.port)
    c.send(b"\x81\xff\x80" + b"\x00" * 7 + b"abcd")
    ok, m = closed_with(c, 1002)
    T.check(ok, "a 64-bit length with its top bit set -> close 1002", m)
    c.close()
    c = wc.connect(n.port)
    c.send_text(b" " * (1024 * 1024 - 20) + req(5)[:0] + b"{}")
    r = c.recv_message()
    T.check(r is not None and r[0] == 1, "a message just under 1 MiB is taken (answered)", r and r[:1])
    c.close()
    T.check(n.alive(), "the daemon is still running after every refusal")


def main():
    with tc.Node() as n:
        n.init().start()
        T.section("standard client", case_standard_client, n)
        T.section("handshake", case_handshake, n)
        T.section("messages", case_messages, n)
        T.section("fragments and control", case_fragments_and_control, n)
        T.section("refusals", case_refusals, n)
        time.sleep(0.2)
        metrics = tc.Rpc("127.0.0.1", n.port).call("node.status", {})
        T.check(metrics["counters"]["connections_open"] >= 1, "node.status still answers")
        T.eq(n.stop(), 0, "tranched exits 0 on SIGTERM (nothing leaked under ASan)")
    T.done()


if __name__ == "__main__":
    main()
