"""Bounds of the client library, each with its reason (as lib/tr_limits.h)."""

TX_BYTES_MAX = 16 * 1024            # PROTOCOL.md §2: a tx is at most 16 KiB
INT_MAX = (1 << 53) - 1             # PROTOCOL.md §1: integers are <= 2^53-1
RESPONSE_BYTES_MAX = 16 << 20       # one response line; as tranchectl (CTL_RESPONSE_BYTES_MAX)
TIMEOUT_S = 30.0                    # connect, send and each receive; as tranchectl
SUBMIT_ATTEMPTS = 6                 # tries of one submit before Unavailable (same bytes each time)
RETRY_DELAY_S = 0.25                # first back-off; doubles per attempt, capped below
RETRY_DELAY_MAX_S = 4.0
PAGE_LIMIT_MAX = 1000               # PROTOCOL.md §5: limit is 1..1000
PAGES_MAX = 1 << 20                 # an iterator stops (ProtocolError) after this many pages
NOTE_BYTES_MAX = 1024 * 1024        # a signed note; as TR_NOTE_BYTES_MAX
NOTE_SIGS_MAX = 100                 # signature lines of a note; as TR_NOTE_SIGS_MAX
NOTE_SIG_BYTES_MAX = 8192           # one decoded signature of any type; as TR_NOTE_SIG_BYTES_MAX
NOTE_NAME_BYTES_MAX = 255           # key names and origins we hold; as TR_NOTE_NAME_BYTES_MAX
PROOF_BYTES_MAX = 2 * 1024 * 1024   # a tlog-proof; as TR_TLOG_PROOF_BYTES_MAX
MERKLE_PATH_MAX = 64                # hashes in a proof path: a tree of < 2^64 leaves
KEY_FILE_BYTES_MAX = 80             # a key file is 65 bytes; read no more than this
