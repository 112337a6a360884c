/* no_memory.c — an LD_PRELOAD shim for test_faults.py: a request whose
 * answer cannot be made, on cue.
 *
 * When the file named by TR_TEST_NO_MEMORY exists, the next calloc of one
 * request element (tr_elem_t, daemon/rpc.c) made by a verify worker removes
 * that file and returns NULL, as an exhausted heap would.  The daemon must
 * then close that connection after the answers before it (tr_job_t.lost),
 * since its client would otherwise wait for ever, and serve everyone else.
 *
 * Only element-sized callocs on tr-verify-* threads look for the cue, so the
 * check costs nothing elsewhere.  Only tests load this; nothing in tranched
 * knows of it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "job.h"

typedef void *(*calloc_fn)(size_t, size_t);

static bool on_a_verify_worker(void) {
  char name[16] = "";
  return prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strncmp(name, "tr-verify-", 10) == 0;
}

/* Takes the cue: true for exactly one caller per cue file. */
static bool cue_taken(void) {
  const char *cue = getenv("TR_TEST_NO_MEMORY");
  return cue != NULL && access(cue, F_OK) == 0 && unlink(cue) == 0;
}

void *calloc(size_t n, size_t size) {
  static calloc_fn real;
  static bool resolving;
  if (real == NULL) {
    /* The first call comes before any thread starts.  Should dlsym itself
     * allocate, it gets NULL, which it copes with. */
    if (resolving) return NULL;
    resolving = true;
    real = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
    resolving = false;
    if (real == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  if (n == 1 && size == sizeof(tr_elem_t) && on_a_verify_worker() && cue_taken()) {
    errno = ENOMEM;
    return NULL;
  }
  return real(n, size);
}
