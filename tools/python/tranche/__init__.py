"""tranche — a client library for the tranche ledger daemon.

Keys and key files, tx building and signing byte for byte as the contract
(PROTOCOL.md §2, §4) and tranchectl, a JSON-RPC client whose submit is safe
to retry, page iterators over the queries, and offline verification of
checkpoints, Merkle proofs and receipt files.  See README.md for a tutorial.
"""
from .client import Client, Connection
from .errors import (KeyFileError, NotFound, ProtocolError, Refused, RpcError, TrancheError, TxError,
                     Unavailable, VerifyError)
from .keys import Key, is_public_key, verify_signature
from .tx import TX_DOMAIN, TX_TYPES, SignedTx, Signer, encode, new_id, sign, tx_fields, txid
from .verify import (Checkpoint, ProvenEntry, Vkey, entry_bytes, entry_hash, leaf_hash, merkle_root,
                     open_checkpoint, verify_checkpoint_extends, verify_consistency, verify_inclusion,
                     verify_note, verify_proof)

__version__ = "0.1.0"

__all__ = [
    "Client", "Connection", "Key", "Signer", "SignedTx", "Vkey", "Checkpoint", "ProvenEntry",
    "TrancheError", "TxError", "KeyFileError", "VerifyError", "RpcError", "Refused", "NotFound",
    "Unavailable", "ProtocolError", "is_public_key", "verify_signature", "TX_DOMAIN", "TX_TYPES",
    "encode", "new_id", "sign", "tx_fields", "txid", "entry_bytes", "entry_hash", "leaf_hash",
    "merkle_root", "open_checkpoint", "verify_checkpoint_extends", "verify_consistency",
    "verify_inclusion", "verify_note", "verify_proof",
]
