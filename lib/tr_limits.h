/* tr_limits.h — every bound tranche enforces, in one place, each with why.
 *
 * Crossing a bound is always a clear error to the caller (a refusal, a
 * JSON-RPC error, or backpressure); nothing already accepted is lost.
 */
#ifndef TR_LIMITS_H
#define TR_LIMITS_H

/* ---- Transactions (PROTOCOL.md §1, §2, §4) ---- */
#define TR_TX_BYTES_MAX          (16 * 1024)  /* contract: a tx is at most 16 KiB */
#define TR_JSON_DEPTH_MAX        16           /* tx nesting is 3 deep; RPC lines 8; bounds recursion */
#define TR_TX_ID_CHARS_MAX       64           /* contract regex for `id` */
#define TR_ASSET_ID_CHARS_MAX    32           /* contract regex for asset ids */
#define TR_CHAIN_ID_CHARS_MAX    64           /* contract regex for chain ids */
#define TR_TEXT_CHARS_MAX        200          /* name, memo, reason: Unicode scalar values */
#define TR_TEXT_BYTES_MAX        (TR_TEXT_CHARS_MAX * 4) /* UTF-8 worst case */
#define TR_RATING_CHARS_MAX      8            /* contract: rating is 1–8 chars */
#define TR_DOCUMENTS_MAX         32           /* contract: at most 32 documents */
#define TR_JURISDICTIONS_MAX     300          /* ISO 3166-1 has 249 codes; duplicates are refused */
#define TR_COUPON_BPS_MAX        100000       /* contract */
#define TR_RISK_WEIGHT_PCT_MAX   1250         /* contract: Basel standardised weights */
#define TR_HOLDERS_MAX           10000        /* contract: v1 maximum holders per asset */
#define TR_INT_MAX               9007199254740991ULL /* 2^53-1: exact in every JSON reader */

/* ---- JSON-RPC (PROTOCOL.md §5) ---- */
#define TR_RPC_LINE_BYTES_MAX    (1024 * 1024) /* contract default line limit */
#define TR_RPC_BATCH_MAX         100           /* contract */
#define TR_RPC_INFLIGHT_MAX      64            /* contract: per connection, then stop reading */
#define TR_RPC_PAGE_LIMIT_MAX    1000          /* contract */
#define TR_RPC_PAGE_LIMIT_DEFAULT 100          /* contract */
#define TR_RPC_CONNECTIONS_MAX   1024          /* keeps fds and buffers bounded; more are closed at accept */
#define TR_RPC_IDLE_TIMEOUT_MS   (5 * 60 * 1000) /* a silent peer cannot hold a slot forever */
/* Slowloris: an idle timer that every byte restarts lets one byte per minute
 * hold a slot for ever, so a request (line, or HTTP head and body) must arrive
 * whole within this long of its first byte: 1 MiB needs only ~35 KB/s. */
#define TR_RPC_REQUEST_DEADLINE_S_DEFAULT 30
#define TR_RPC_REQUEST_DEADLINE_S_LIMIT 3600   /* the most request_deadline may say */
/* One address may hold a quarter of the slots: filling them takes four, and
 * a newcomer then evicts the connection that made least progress (server.c).
 * A TLS terminator in front is one address: raise it there (config). */
#define TR_RPC_CONNECTIONS_PER_PEER_DEFAULT 256
#define TR_RPC_OUT_BYTES_MAX     (8 * 1024 * 1024) /* unread responses per connection before we stop reading */
#define TR_RPC_RESPONSE_BYTES_MAX (16 * 1024 * 1024) /* answers to one line; the rest of a batch gets -32600 */
#define TR_OUT_BYTES_TOTAL_MAX   (256u * 1024 * 1024) /* unwritten responses of all connections; past it reading pauses */
#define TR_INFLIGHT_BYTES_MAX    (256u * 1024 * 1024) /* all request lines in flight; past it reading pauses */

/* ---- HTTP on the same port (PROTOCOL.md §5.1) ---- */
#define TR_HTTP_URL_BYTES_MAX    2048          /* our paths are short; a longer target is 431 */
#define TR_HTTP_FIELD_NAME_BYTES_MAX 64        /* longer names are none we read (still counted) */
#define TR_HTTP_VALUE_BYTES_MAX  512           /* Host, Content-Type, Origin, Upgrade...: all short */
#define TR_HTTP_HEAD_BYTES_MAX   (16 * 1024)   /* request line + headers; browsers send < 8 KiB */
#define TR_HTTP_HEADERS_MAX      100           /* header lines per request */
#define TR_HTTP_LINGER_MS        2000          /* after a refusal mid-request, its input is drained this long */
/* The body of POST / is one JSON-RPC request: TR_RPC_LINE_BYTES_MAX, else 413. */

/* ---- Subscriptions (PROTOCOL.md §5.2) ---- */
#define TR_SUBS_PER_CONN_MAX     16            /* a client follows a few feeds; each one costs a scan per batch */
#define TR_SUBS_MAX              4096          /* all connections: the live fan-out runs on the loop thread */
/* A live subscriber whose connection holds this much unwritten output when an
 * entry arrives gets ledger.subscription_end (slow_consumer) instead: the feed
 * is never buffered without bound, and never waits (the sequencer goes on).
 * Above the biggest single notification (a distribution to 10,000 holders is
 * ~1.5 MB); resubscribing from `next` misses nothing. */
#define TR_SUB_OUT_BYTES_MAX     (4 * 1024 * 1024)
#define TR_SUB_PAGE_ENTRIES_MAX  256           /* backlog entries a worker reads per page */
#define TR_SUB_PAGE_BYTES_MAX    (1024 * 1024) /* ...and notification bytes per page (at least one entry) */
#define TR_SUB_RETRY_MS          20            /* an entry committed but its receipt not yet written: read again */

/* ---- Pipeline (daemon) ---- */
#define TR_WORKERS_MAX           64            /* more threads than this only adds contention */
#define TR_WORKER_GRAB_MAX       32            /* jobs a worker takes per hand-off: amortises locking */
#define TR_INTAKE_JOBS_MAX       8192          /* lines waiting for a worker; past it tx.submit is -32002 */
#define TR_SEQ_QUEUE_MAX         16384         /* verified txs waiting for the sequencer; past it -32002 */
#define TR_COMMIT_BATCH_MAX      1024          /* txs a batch (a single node commits up to TR_JOURNAL_QUEUE_MAX in one) */
/* Batches applied by tr-seq and not yet answered (daemon/journal_stage.c):
 * tr-journal commits every batch queued when it comes round in one fsynced
 * transaction, so the rules never wait for a commit and a tx waits for at
 * most the commit under way and its own, as when one thread did both.  Past
 * this many tr-seq waits (it is then ahead by ~8 fsyncs' worth of rules). */
#define TR_JOURNAL_QUEUE_MAX     8u
#define TR_CHECKPOINT_INTERVAL_MS 1000         /* contract: at least every second while growing */
/* The derived writer's queue of batches applied and journalled but not yet
 * in the state tables: past this the sequencer waits (a delta holds ~1 KB a
 * tx), so memory stays bounded when the disk is slower than the rules. */
#define TR_DERIVED_QUEUE_BYTES_MAX (128u * 1024 * 1024)
#define TR_DERIVED_WRITE_BYTES_MAX (4u * 1024 * 1024) /* batches per write behind: the journal waits at most one */
/* The lookup tables (tx.get, tx.find; schema 005) are written late, in
 * sorted runs: once the journal is this many entries past their mark (a
 * lookup scans at most that many entries after it, ~1 ms), whenever the
 * writer behind is idle, and at stop, by their own thread (daemon/lookups.c,
 * tr-lookups); sorted by key, in short transactions
 * of TR_LOOKUP_CHUNK_ROWS.  A catch-up from the journal (a start far
 * behind: a snapshot installed) covers TR_LOOKUP_WRITE_MAX entries a time. */
#define TR_LOOKUP_WRITE_EVERY    8192u
#define TR_LOOKUP_WRITE_MAX      65536u
#define TR_LOOKUP_CHUNK_ROWS     1024u   /* rows a transaction of the late write: the journal waits for one at most */
/* Each lookup table has two levels (schema 007).  Runs go into the large
 * one while it holds fewer than TR_LOOKUP_TWO_LEVELS_FROM rows; their keys
 * are random, so a run of TR_LOOKUP_WRITE_EVERY rows into N rows dirties
 * ~N / (200 x TR_LOOKUP_WRITE_EVERY) pages a row (~200 rows a page), up to
 * one a row past ~1.6 M.  Past that size runs go into the small level,
 * which is merged into the large one (TR_LOOKUP_CHUNK_ROWS a transaction,
 * a key range each) once it holds an eighth as many rows and at least
 * TR_LOOKUP_MERGE_MIN: a merge rewrites each page of the large level about
 * once, R / 200 pages a row for a ratio R, and a run dirties the small
 * level's, ~N / (2 R 200 TR_LOOKUP_WRITE_EVERY) a row; R = 8 balances the
 * two near 10^6 (~0.04 + ~0.04).  But a row then costs a second insert
 * (~1 us a tx for both tables, measured), which the saved pages repay only
 * from ~2^18 rows (tr-lookups 2.9 us a tx at 300k entries in one level,
 * 4.3 in two; 5.5-5.8 at 10^6 in one level, 4.6 in two). */
#define TR_LOOKUP_TWO_LEVELS_FROM 262144u
#define TR_LOOKUP_MERGE_RATIO    8u
#define TR_LOOKUP_MERGE_MIN      TR_LOOKUP_WRITE_EVERY
/* Account history rows fed to tr-lookups and not yet written (~40 B a row):
 * they are written after every derived write, so this many means writes
 * keep failing; past it they are read back from the journal instead. */
#define TR_HISTORY_HELD_MAX      262144u
/* They are written when a query waits for them, else after gathering this
 * long or this many rows: an account's page of account_entries is then
 * written once for hundreds of its rows (written after every derived
 * write, ~25 ms apart, history cost ~5 us a tx at full load; gathered, ~3).
 * The rows go in sorted, in transactions of TR_LOOKUP_CHUNK_ROWS, so the
 * journal's commit waits for one chunk at most. */
#define TR_HISTORY_LINGER_MS     200u
#define TR_HISTORY_WRITE_ROWS    32768u
/* The writer behind gathers batches for up to this long before it writes,
 * unless a query waits for its tables (tr_derived_hurry) or a write's worth
 * (TR_DERIVED_WRITE_BYTES_MAX) is queued: the derived rows of many batches
 * then share pages (an account's history page, a holding's page is written
 * once for hundreds of txs, not once for each batch of ~90), and a write
 * costs one fsync.  Reads never wait for it; only unread rows do. */
#define TR_DERIVED_LINGER_MS     25u
#define TR_DERIVED_RETRY_MS      1000          /* a failed derived write (disk full) is tried again this often */
/* The live state in memory (tr_mem.h), about 120 B a key, 70 a holding,
 * 32 an entry: past these a tx that would add one is answered -32603 (the
 * node needs more memory or a new version), never a silent failure.  The
 * defaults keep a node under ~4 GiB. */
#define TR_MEM_KEYS_MAX          (8u * 1024 * 1024)
#define TR_MEM_HOLDINGS_MAX      (16u * 1024 * 1024)
#define TR_MEM_ENTRIES_MAX       (64ull * 1024 * 1024)
#define TR_CLOCK_SKEW_MAX_S_DEFAULT 60       /* a clock reading this far ahead of elapsed time is refused */
#define TR_CLOCK_SKEW_MAX_S_LIMIT 86400      /* the most clock_skew_max may say */
#define TR_HISTORY_PENDING_MAX   65536         /* account.history rows a deferring store holds (ledger-bench) */
#define TR_HISTORY_LAG_MS        1000          /* ...or once the oldest has waited this long */

/* ---- Clusters (daemon/cluster.c, PROTOCOL.md §8) ---- */
/* A replicated batch is at most TR_COMMIT_BATCH_MAX txs of at most
 * TR_TX_BYTES_MAX each plus their signatures: at most ~17 MiB, and usually a
 * few hundred KiB. */
#define TR_BATCH_BYTES_MAX       (TR_BATCH_HEADER_BYTES + 1u + TR_BATCH_RPC_CHARS_MAX + 8u + \
                                  TR_COMMIT_BATCH_MAX * (4u + 64u + TR_TX_BYTES_MAX))
#define TR_BATCH_HEADER_BYTES    (4u + 8u * 4u + 32u + 4u) /* the fixed part, before the proposer's address */
#define TR_BATCH_RPC_CHARS_MAX   127u                      /* HOST:PORT, as the config's 128-byte fields hold */
/* A follower that hears no leader for 1-2x this starts an election;
 * leaders send heartbeats ten times as often (every 30 ms).  A failover
 * then takes 0.3-0.6 s plus the new leader's barrier, inside the one
 * second a system of record may stall; a node starved of CPU for longer
 * (a sanitizer build on a loaded host: the tests give those 1000) may lose
 * leadership, which pre-vote keeps from disrupting anyone else. */
#define TR_CLUSTER_ELECTION_TIMEOUT_MS 300u
/* Raft snapshots: one every this many committed entries (a batch each),
 * keeping this many behind it so a node down briefly catches up from the log. */
#define TR_CLUSTER_SNAPSHOT_EVERY    4096u
#define TR_CLUSTER_SNAPSHOT_TRAILING 2048u
/* A snapshot holds every journal entry (its time, signature and tx bytes):
 * past this size none is taken and raft keeps its log (logged). */
#define TR_CLUSTER_SNAPSHOT_BYTES_MAX (1024ull * 1024 * 1024)
/* Committed batches handed to the sequencer and not yet applied: past this
 * raft's thread waits, so a follower slower than its leader holds bounded memory. */
#define TR_CLUSTER_APPLY_QUEUE_BYTES_MAX (64u * 1024 * 1024)

/* ---- Storage ---- */
#define TR_SQLITE_BUSY_TIMEOUT_MS 5000         /* readers and a backup may briefly hold locks */

#endif
