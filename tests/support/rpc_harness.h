/* rpc_harness.h — the daemon's worker-side JSON-RPC path without a daemon.
 * See rpc_harness.c for what it links and fakes. */
#ifndef TR_RPC_HARNESS_H
#define TR_RPC_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"
#include "job.h"

#define RPC_HARNESS_CHAIN "fuzz.example/chain"
#define RPC_HARNESS_TIME_MS 1700000000000ULL

extern bool rpc_harness_keep_txs; /* commit accepted txs instead of rolling back */
extern tr_daemon_t g_daemon;
extern tr_worker_t g_worker;
/* Elements of the last rpc_harness_run line that had an answer before it was
 * rendered (tr_job_render frees the per-element copies). */
extern size_t rpc_harness_answers;

/* Builds the in-memory ledger once. */
void rpc_harness_setup(void);
/* Runs one line (no "\n") as the daemon would, with the intake queue full
 * when shed is set; returns the rendered job (job->response may be NULL for
 * notifications).  Free with tr_job_free. */
tr_job_t *rpc_harness_run(const char *line, size_t len, bool shed);

#endif
