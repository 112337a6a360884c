"""A JSON-RPC 2.0 client of tranched (PROTOCOL.md §5): one TCP connection,
one request a line, one response a line.

    c = Client("127.0.0.1", 7707)
    receipt = c.submit(signed)          # Refused(reason) when the ledger says no
    for h in c.holders("ACME-TL-2029"):  # every page, in account order
        ...

submit() resubmits the same bytes after a timeout, a lost connection, an
`overloaded` answer or a `not_leader` redirect: the node answers a tx it
already holds with the stored receipt (`duplicate: true`), so a retry can
never apply a tx twice.  Queries are retried after a lost connection too
(they change nothing).  Every wait is bounded (limits.py).
"""
import json
import socket
import time

from .errors import NotFound, ProtocolError, Refused, RpcError, Unavailable
from .limits import (PAGE_LIMIT_MAX, PAGES_MAX, RESPONSE_BYTES_MAX, RETRY_DELAY_MAX_S, RETRY_DELAY_S,
                     SUBMIT_ATTEMPTS, TIMEOUT_S)
from .tx import SignedTx
from . import verify

REFUSED, OVERLOADED, NOT_FOUND, NOT_LEADER = -32001, -32002, -32004, -32005
DEFAULT_ADDRESS = ("127.0.0.1", 7707)


def _no_float(text):
    raise ProtocolError("the node sent a non-integer number %r" % text)


def loads(line):
    """Strict JSON of a response: integers are plain digits (§5), never floats."""
    try:
        return json.loads(line, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, ProtocolError):
            raise
        raise ProtocolError("the node sent a line that is not JSON: %s" % e) from None


def parse_address(text):
    """"HOST:PORT" (or "[v6]:PORT") -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError("not HOST:PORT: %r" % text)
    return host.strip("[]"), int(port)


class Connection:
    """One TCP connection with newline framing; no retries at this layer."""

    def __init__(self, host, port, timeout=TIMEOUT_S):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_id = 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_line(self, timeout=None):
        """One line without its newline; None at EOF; socket.timeout when none
        arrives in time; ProtocolError for a line over RESPONSE_BYTES_MAX."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            if len(self.buf) > RESPONSE_BYTES_MAX:
                raise ProtocolError("a response line is over %d bytes" % RESPONSE_BYTES_MAX)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no response line within %.1fs" % (self.timeout if timeout is None else timeout))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return None
            if not chunk:
                if self.buf:  # an unterminated last line: still report it
                    line, self.buf = self.buf, b""
                    return line
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def request(self, method, params=None, id=None):
        if id is None:
            id, self.next_id = self.next_id, self.next_id + 1
        req = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            req["params"] = params
        return req

    def call_raw(self, method, params=None):
        """The whole response object of one call (result or error)."""
        req = self.request(method, params)
        self.send_raw(json.dumps(req, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n")
        line = self.recv_line()
        if line is None:
            raise ConnectionError("the node closed the connection")
        resp = loads(line)
        if not isinstance(resp, dict) or resp.get("id") != req["id"]:
            raise ProtocolError("the response does not answer request %r: %r" % (req["id"], resp))
        return resp


def raise_error(method, err):
    """Raises the exception that matches a JSON-RPC error object."""
    if not isinstance(err, dict):
        raise ProtocolError("%s: malformed error %r" % (method, err))
    code, msg, data = err.get("code"), err.get("message"), err.get("data")
    cls = {REFUSED: Refused, NOT_FOUND: NotFound}.get(code, RpcError)
    raise cls(code, msg, data, method)


class Client:
    """A client of one node (HOST, PORT), or of a cluster: `not_leader`
    answers move submits to the leader they name."""

    def __init__(self, host=DEFAULT_ADDRESS[0], port=DEFAULT_ADDRESS[1], timeout=TIMEOUT_S,
                 attempts=SUBMIT_ATTEMPTS):
        self.address = (host, port)
        self.timeout = timeout
        self.attempts = attempts
        self.conn = None

    @classmethod
    def connect(cls, address, **kw):
        """From "HOST:PORT"."""
        host, port = parse_address(address)
        return cls(host, port, **kw)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ transport

    def _connection(self):
        if self.conn is None:
            self.conn = Connection(self.address[0], self.address[1], self.timeout)
        return self.conn

    def _call_once(self, method, params):
        """One attempt: the response object; OSError or socket.timeout when the
        connection failed (it is dropped, so the next attempt reconnects)."""
        try:
            return self._connection().call_raw(method, params)
        except (OSError, ProtocolError):
            self.close()  # a late answer must never be read as the next call's
            raise

    def call(self, method, params=None):
        """One call; returns the result or raises RpcError / Refused / NotFound.
        A lost connection is retried once (the request may have been lost
        before the node read it), with a fresh connection."""
        params = {} if params is None else params
        for attempt in (1, 2):
            try:
                resp = self._call_once(method, params)
                break
            except (OSError, socket.timeout) as e:
                if attempt == 2:
                    raise Unavailable("%s: no answer from %s:%d: %s" % ((method,) + self.address + (e,))) from None
        if "error" in resp:
            raise_error(method, resp["error"])
        return resp["result"]

    # ------------------------------------------------------------ txs

    def submit(self, signed):
        """tx.submit; returns the receipt {seq, txid, hash, time, duplicate,
        effects}, sent by the node only once the entry is durable.  Raises
        Refused (with .reason) when the ledger refuses the tx, Unavailable
        (with .signed, to resubmit later) when no attempt got an answer."""
        if not isinstance(signed, SignedTx):
            raise TypeError("submit takes a SignedTx (Signer methods return one)")
        delay, last = RETRY_DELAY_S, "no attempt"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_MAX_S)
            try:
                resp = self._call_once("tx.submit", signed.params())
            except (OSError, socket.timeout) as e:
                last = "no answer: %s" % e  # unknown outcome: the same bytes again
                continue
            err = resp.get("error")
            if err is None:
                return resp["result"]
            code = err.get("code") if isinstance(err, dict) else None
            if code == OVERLOADED:
                last = "overloaded"
                continue
            if code == NOT_LEADER:
                leader = (err.get("data") or {}).get("leader")
                last = "not the leader (leader %s)" % leader
                if leader:
                    self.close()
                    self.address = parse_address(leader)
                continue
            raise_error("tx.submit", err)
        raise Unavailable("tx %s: no receipt after %d attempts (last: %s); resubmit the same SignedTx"
                          % (signed.txid, self.attempts, last), signed)

    def check(self, signed, with_signature=True):
        """tx.check: a dry run, {ok, duplicate, seq, reasons}."""
        params = signed.params() if with_signature else {"tx": signed.tx}
        return self.call("tx.check", params)

    # ------------------------------------------------------------ queries

    def status(self):
        return self.call("node.status")

    def chain(self):
        return self.status()["chain"]

    def head(self):
        return self.call("ledger.head")

    def entry(self, seq):
        return self.call("ledger.entry", {"seq": seq})

    def tx(self, txid):
        return self.call("tx.get", {"txid": txid})

    def find(self, signer, id):
        return self.call("tx.find", {"signer": signer, "id": id})

    def account(self, account):
        return self.call("account.get", {"account": account})

    def asset(self, asset):
        return self.call("asset.get", {"asset": asset})

    def exposure(self, account):
        return self.call("risk.exposure", {"account": account})

    def checkpoint(self):
        """ledger.checkpoint: {checkpoint, size, vkey}, unverified."""
        return self.call("ledger.checkpoint")

    def proof(self, seq, size):
        return self.call("ledger.proof", {"seq": seq, "size": size})

    def consistency(self, first, second):
        return self.call("ledger.consistency", {"from": first, "to": second})

    # Page iterators: every item of every page, in the node's key order.

    def _pages(self, method, params, key, cursor_param="cursor", start=None, limit=100):
        if not 1 <= limit <= PAGE_LIMIT_MAX:
            raise ValueError("limit is 1..%d" % PAGE_LIMIT_MAX)
        cursor, seen = start, set()
        for _ in range(PAGES_MAX):
            page = self.call(method, dict(params, **{cursor_param: cursor, "limit": limit}))
            for item in page[key]:
                yield item
            cursor = page.get("next")
            if cursor is None:
                return
            marker = json.dumps(cursor, sort_keys=True)
            if marker in seen:
                raise ProtocolError("%s: the cursor %r came back twice" % (method, cursor))
            seen.add(marker)
        raise ProtocolError("%s: more than %d pages" % (method, PAGES_MAX))

    def entries(self, first=1, limit=100):
        return self._pages("ledger.entries", {}, "entries", "from", first, limit)

    def assets(self, limit=100):
        return self._pages("asset.list", {}, "assets", limit=limit)

    def holders(self, asset, limit=100):
        return self._pages("asset.holders", {"asset": asset}, "holders", limit=limit)

    def payouts(self, asset, distribution=None, limit=100):
        params = {"asset": asset}
        if distribution is not None:
            params["distribution"] = distribution
        return self._pages("asset.payouts", params, "payouts", limit=limit)

    def history(self, account, limit=100):
        return self._pages("account.history", {"account": account}, "entries", limit=limit)

    # ------------------------------------------------------------ proofs

    def verified_checkpoint(self, vkey):
        """The node's latest checkpoint, verified with the pinned vkey."""
        return verify.open_checkpoint(self.checkpoint()["checkpoint"], vkey)

    def export_proof(self, txid, vkey, wait_s=10.0):
        """A receipt file for a tx, as `tranchectl proof export` writes it: a
        C2SP tlog-proof whose extra data is the entry bytes, with the
        inclusion path under the node's latest checkpoint (waiting, bounded,
        for one that covers the entry).  Verified with vkey before it is
        returned, so what you store is known good."""
        t = self.tx(txid)
        e = self.entry(t["seq"])
        data = verify.entry_bytes(e["seq"], e["time"], bytes.fromhex(e["prev"]), bytes.fromhex(e["txid"]),
                                  bytes.fromhex(e["sig"]))
        if e["txid"] != txid:
            raise ProtocolError("the node's entry %d is not tx %s" % (e["seq"], txid))
        deadline = time.monotonic() + wait_s
        while True:
            cp = self.verified_checkpoint(vkey)
            if cp.size >= e["seq"] or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if cp.size < e["seq"]:
            raise Unavailable("no checkpoint covers entry %d within %.0fs" % (e["seq"], wait_s))
        p = self.proof(e["seq"], cp.size)
        text = verify.format_proof(e["seq"] - 1, data, p["path"], cp.text)
        verify.verify_proof(text, vkey, t["tx"])
        return text
