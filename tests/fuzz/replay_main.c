/* replay_main.c — runs a fuzz harness over files, without libFuzzer.
 *
 * Usage: fuzz_<name>_replay DIR_OR_FILE...  Every regular file (names
 * starting with '.' skipped) is passed once to LLVMFuzzerTestOneInput, in
 * sorted order so a failure is reproducible.  Missing directories are
 * skipped (a harness may have no regressions yet).  Prints TAP: one test
 * point per directory; a broken invariant aborts the process (the harness
 * prints which input and why).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_FILE_BYTES_MAX (8u * 1024 * 1024) /* corpus files are small; bounds a bad path */
#define REPLAY_FILES_MAX 100000                  /* per directory */

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  uint8_t *buf = malloc(REPLAY_FILE_BYTES_MAX);
  size_t n = buf ? fread(buf, 1, REPLAY_FILE_BYTES_MAX, f) : 0;
  fclose(f);
  if (buf == NULL) return -1;
  /* A copy of exactly n bytes, so ASan sees reads past the input. */
  uint8_t *in = malloc(n ? n : 1);
  if (in == NULL) { free(buf); return -1; }
  memcpy(in, buf, n);
  free(buf);
  fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(in, n);
  free(in);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs run, or -1 when a file could not be read. */
static long run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  char **names = calloc(REPLAY_FILES_MAX, sizeof *names);
  size_t n = 0;
  struct dirent *de;
  while (names && n < REPLAY_FILES_MAX && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    names[n] = strdup(de->d_name);
    if (names[n]) n++;
  }
  closedir(d);
  if (names == NULL) return -1;
  qsort(names, n, sizeof *names, cmp_str);
  long ran = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(path) != 0) ran = -1;
      else if (ran >= 0) ran++;
    }
    free(names[i]);
  }
  free(names);
  return ran;
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  int failed = 0;
  printf("1..%d\n", argc - 1);
  for (int i = 1; i < argc; i++) {
    struct stat st;
    long ran;
    if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) ran = run_file(argv[i]) == 0 ? 1 : -1;
    else ran = run_dir(argv[i]);
    if (ran < 0) failed++;
    printf("%s %d - %s: %ld inputs replayed\n", ran < 0 ? "not ok" : "ok", i, argv[i], ran < 0 ? 0 : ran);
    fflush(stdout);
  }
  return failed ? 1 : 0;
}
