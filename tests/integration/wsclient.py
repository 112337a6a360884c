"""wsclient.py - a small RFC 6455 client for the tests, frame by frame.

Written out so the tests can also send what a library would refuse to:
unmasked frames, reserved bits, oversized headers, fragments and control
frames in any order.  Not for production use.
"""
import base64
import hashlib
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame; length overrides the header's length field (the payload is sent as given)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class Client:
    def __init__(self, sock, leftover=b""):
        self.s = sock
        self.buf = leftover

    def send(self, data):
        self.s.sendall(data)

    def send_text(self, payload):
        self.send(frame(1, payload))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                return False
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        return True

    def recv_frame(self, timeout=20):
        """(fin, opcode, payload) of the next server frame, or None after timeout."""
        deadline = time.monotonic() + timeout
        if not self._fill(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ValueError("a server frame is masked")
        n, head = b1 & 0x7F, 2
        if n == 126:
            if not self._fill(4, deadline):
                return None
            n, head = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._fill(10, deadline):
                return None
            n, head = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not self._fill(head + n, deadline):
            return None
        payload = self.buf[head:head + n]
        self.buf = self.buf[head + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_message(self, timeout=20):
        """(opcode, payload) of the next whole message or control frame, or None after timeout."""
        parts, op = [], None
        while True:
            f = self.recv_frame(timeout)
            if f is None:
                return None
            fin, opcode, payload = f
            if opcode >= 8:
                return opcode, payload
            if opcode != 0:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def handshake_raw(port, key=None, version=b"13", path=b"/ws", extra=b"", rcvbuf=None):
    """Sends the upgrade request; returns (socket, status, headers, leftover bytes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)) if key is None else key
    req = (b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: " % port + key + b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        d = s.recv(4096)
        if not d:
            break
        got += d
    head, _, rest = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    return s, status, hdrs, rest, key


def connect(port, rcvbuf=None):
    s, status, hdrs, rest, key = handshake_raw(port, rcvbuf=rcvbuf)
    if status != 101 or hdrs.get("sec-websocket-accept", "").encode() != accept_of(key):
        raise RuntimeError("WebSocket handshake failed: %d %r" % (status, hdrs))
    return Client(s, rest)
