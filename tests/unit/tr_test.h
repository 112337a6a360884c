/* tr_test.h — a minimal TAP producer for unit tests (meson protocol: 'tap').
 *
 * TR_CHECK(cond, fmt, ...) records one test point; the program's exit status
 * is non-zero when any point failed.  Call tr_test_done() last. */
#ifndef TR_TEST_H
#define TR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tr_test_n_ = 0, tr_test_failed_ = 0;

#define TR_CHECK(cond, ...)                                                   \
  do {                                                                        \
    tr_test_n_++;                                                             \
    if (cond) {                                                               \
      printf("ok %d - ", tr_test_n_);                                         \
    } else {                                                                  \
      tr_test_failed_++;                                                      \
      printf("not ok %d - %s:%d: ", tr_test_n_, __FILE__, __LINE__);          \
      /* meson shows a TAP test's stderr only: name the failure there too */  \
      fprintf(stderr, "not ok %d - %s:%d: ", tr_test_n_, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fprintf(stderr, "\n");                                                  \
    }                                                                         \
    printf(__VA_ARGS__);                                                      \
    printf("\n");                                                             \
  } while (0)

#define TR_CHECK_EQ_INT(a, b, what)                                           \
  do {                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                       \
    TR_CHECK(a_ == b_, "%s (got %lld, want %lld)", what, a_, b_);             \
  } while (0)

#define TR_CHECK_EQ_STR(a, b, what)                                           \
  do {                                                                        \
    const char *a_ = (a), *b_ = (b);                                          \
    TR_CHECK(a_ && b_ && strcmp(a_, b_) == 0, "%s (got \"%s\", want \"%s\")", \
             what, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                   \
  } while (0)

static inline int tr_test_done(void) {
  printf("1..%d\n", tr_test_n_);
  if (tr_test_failed_) fprintf(stderr, "%d of %d checks failed\n", tr_test_failed_, tr_test_n_);
  return tr_test_failed_ ? 1 : 0;
}

#endif
