/* fuzz.h — what every tranche fuzz harness shares.
 *
 * Each harness defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with -fsanitize=fuzzer it is a libFuzzer
 * target; linked with replay_main.c it is a plain executable that runs every
 * file of its seed corpus and of tests/fuzz/regressions/<name>/, so past
 * finds are replayed on every `meson test` (suite `fuzz`).
 *
 * A broken invariant calls FUZZ_CHECK, which prints what broke and aborts:
 * libFuzzer saves the input, and the replay test fails.
 */
#ifndef TR_FUZZ_H
#define TR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "fuzz invariant broken at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
              what, #cond);                                                           \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#endif
