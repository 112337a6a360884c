/* tr_err.c — tr_strerror() and reason words, generated from TR_ERR_MAP. */
#include "tr_err.h"

#include <stddef.h>

const char *tr_strerror(int err) {
  switch (err) {
  case TR_OK: return "ok";
#define XX(name, reason, text) case TR_E##name: return text;
  TR_ERR_MAP(XX)
#undef XX
  default: return "unknown error";
  }
}

const char *tr_err_reason(int err) {
  switch (err) {
#define XX(name, reason, text) case TR_E##name: return reason;
  TR_ERR_MAP(XX)
#undef XX
  default: return NULL;
  }
}

int tr_err_is_refusal(int err) { return tr_err_reason(err) != NULL; }
