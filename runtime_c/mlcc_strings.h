/* mlcc runtime: string tensors. An element is an mlcc_str (mlcc_runtime.h): a pointer to NUL-terminated
 * UTF-8. Strings a run makes (StringConcat, StringSplit, ..., and a copy of every string output) live in the
 * instance's string heap: a chain of blocks emptied at the start of the next run. After a few runs the chain
 * is one block of the size a run needs, reused, so a steady state allocates nothing. Plain C, no dependencies.
 * An allocation that fails marks the heap (the run then returns MLCC_ERR_OUT_OF_MEMORY) and yields "". */
#ifndef MLCC_STRINGS_H
#define MLCC_STRINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlcc_runtime.h"

_Static_assert(sizeof(mlcc_str) == 8, "string tensors need 64-bit pointers (mlcc lays them out as 8 bytes)");

typedef struct mlcc_strblock {
  struct mlcc_strblock *next;
  size_t cap, used;
  char data[]; /* 8-byte aligned: the header is three 8-byte fields */
} mlcc_strblock;

typedef struct mlcc_strheap {
  mlcc_strblock *head; /* the block being filled; older ones follow */
  size_t total;        /* bytes handed out since the last reset */
  int failed;          /* an allocation failed since the last reset */
} mlcc_strheap;

#define MLCC_STRBLOCK_MIN ((size_t)1 << 16)

static inline void *mlcc_heap_alloc(mlcc_strheap *h, size_t n) {
  if (n > SIZE_MAX / 2) {
    h->failed = 1;
    return NULL;
  }
  n = (n + 7) & ~(size_t)7;
  mlcc_strblock *b = h->head;
  if (!b || b->cap - b->used < n) {
    size_t cap = b ? 2 * b->cap : MLCC_STRBLOCK_MIN;
    if (cap < n) cap = n;
    mlcc_strblock *fresh = (mlcc_strblock *)malloc(sizeof *fresh + cap);
    if (!fresh) {
      h->failed = 1;
      return NULL;
    }
    fresh->next = b;
    fresh->cap = cap;
    fresh->used = 0;
    h->head = b = fresh;
  }
  void *p = b->data + b->used;
  b->used += n;
  h->total += n;
  return p;
}

static inline void mlcc_strheap_free(mlcc_strheap *h) {
  while (h->head) {
    mlcc_strblock *next = h->head->next;
    free(h->head);
    h->head = next;
  }
  h->total = 0;
}

/* Forget every string of the last run. More than one block: replaced by one that holds a whole run. */
static inline void mlcc_strheap_reset(mlcc_strheap *h) {
  if (h->head && h->head->next) {
    size_t want = h->total;
    mlcc_strheap_free(h);
    mlcc_strblock *b = (mlcc_strblock *)malloc(sizeof *b + want);
    if (b) {
      b->next = NULL;
      b->cap = want;
      b->used = 0;
      h->head = b;
    }
  } else if (h->head) {
    h->head->used = 0;
  }
  h->total = 0;
  h->failed = 0;
}

/* A NULL element reads as the empty string. */
static inline const char *mlcc_s(mlcc_str s) { return s ? s : ""; }

/* A copy of the n bytes at s, NUL-terminated, in the heap. */
static inline mlcc_str mlcc_str_n(mlcc_strheap *h, const char *s, size_t n) {
  char *p = (char *)mlcc_heap_alloc(h, n + 1);
  if (!p) return "";
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static inline mlcc_str mlcc_str_cat(mlcc_strheap *h, mlcc_str a, mlcc_str b) {
  a = mlcc_s(a);
  b = mlcc_s(b);
  size_t na = strlen(a), nb = strlen(b);
  char *p = (char *)mlcc_heap_alloc(h, na + nb + 1);
  if (!p) return "";
  memcpy(p, a, na);
  memcpy(p + na, b, nb + 1);
  return p;
}

static inline bool mlcc_str_eq(mlcc_str a, mlcc_str b) { return strcmp(mlcc_s(a), mlcc_s(b)) == 0; }

/* An output's elements copied into the heap (the array and each string), so that it stays valid after the
 * caller's input strings go, until the next run. */
static inline mlcc_str *mlcc_str_publish(mlcc_strheap *h, const mlcc_str *src, int64_t n) {
  mlcc_str *out = (mlcc_str *)mlcc_heap_alloc(h, (size_t)(n > 0 ? n : 1) * sizeof(mlcc_str));
  if (!out) return NULL;
  for (int64_t i = 0; i < n; ++i) {
    const char *s = mlcc_s(src[i]);
    out[i] = mlcc_str_n(h, s, strlen(s));
  }
  return out;
}

#endif
