"""Exceptions of the tranche client library.

Every error the library raises is a TrancheError, so a caller can catch one
class; the subclasses say what went wrong precisely enough to act on.
"""


class TrancheError(Exception):
    """Base class of everything this library raises on purpose."""


class TxError(TrancheError, ValueError):
    """A tx could not be built: a missing, unknown or wrongly typed field."""


class KeyFileError(TrancheError):
    """A key file is missing, malformed, readable by others, or already exists."""


class VerifyError(TrancheError):
    """A checkpoint, proof or receipt file did not verify (or is malformed)."""


class RpcError(TrancheError):
    """The node answered a JSON-RPC error; code, message and data as sent."""

    def __init__(self, code, message, data=None, method=None):
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        super().__init__("%s: %s (%s)%s" % (method or "rpc", message, code,
                                            "" if data is None else " %r" % (data,)))


class Refused(RpcError):
    """The ledger refused a tx (-32001): `reason` is one of PROTOCOL.md §6."""

    def __init__(self, code, message, data=None, method=None):
        super().__init__(code, message, data, method)
        data = data if isinstance(data, dict) else {}
        self.reason = data.get("reason")
        self.detail = data.get("detail")

    def __str__(self):
        return "refused: %s: %s" % (self.reason, self.detail)


class NotFound(RpcError):
    """An unknown account, asset, txid or entry (-32004)."""


class Unavailable(TrancheError):
    """No answer could be had: connection refused or lost, timeouts, or the
    node stayed overloaded through every attempt.  For a submit the outcome is
    unknown; `signed` holds the tx so it can be resubmitted as is later
    (resubmitting the same bytes is always safe: PROTOCOL.md §2)."""

    def __init__(self, message, signed=None):
        super().__init__(message)
        self.signed = signed


class ProtocolError(TrancheError):
    """The node's answer does not follow PROTOCOL.md (bad JSON, wrong id,
    a page cursor that does not advance, an over-long line)."""
