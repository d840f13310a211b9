/* mlcc runtime implementation, compiled into each generated library by #include from the model source.
 * Every function is static: two models in one process never share a symbol or any state. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h> /* madvise: model.c defines _DEFAULT_SOURCE, C++ (nvcc) has it by default */
#endif

#include "mlcc_runtime.h"

#define MLCC_ALIGN 64
#define MLCC_HUGE_PAGE ((uint64_t)2 << 20)
#define MLCC_MAGIC 0x6d6c6363u   /* "mlcc": first field of a live instance */
#define MLCC_DEAD 0x64656164u    /* "dead": set by destroy */
#define MLCC_WEIGHTS_HEADER 64 /* "MLCCWTS1", sha256 (32 bytes), payload size (u64 LE), zero padding */

/* The message for a status code. */
static inline const char *mlcc_status_message(int status) {
  switch (status) {
    case MLCC_OK: return "ok";
    case MLCC_ERR_NULL_ARGUMENT: return "a required pointer argument is NULL";
    case MLCC_ERR_OUT_OF_MEMORY: return "out of memory";
    case MLCC_ERR_WEIGHTS_FILE: return "cannot open or read the weights file";
    case MLCC_ERR_WEIGHTS_MISMATCH: return "the weights do not belong to this model";
    case MLCC_ERR_NO_EMBEDDED_WEIGHTS: return "no weights linked in (built with --weights external); use create_from_file";
    case MLCC_ERR_CUDA: return "a CUDA call failed (no usable GPU, out of device memory, or a launch error)";
    case MLCC_ERR_BAD_HANDLE: return "not a live model instance (destroyed, or not made by create)";
    case MLCC_ERR_SIZE_MISMATCH: return "a buffer size differs from the tensor's size (see the info functions)";
    case MLCC_ERR_BAD_INDEX: return "an input or output index out of range";
    case MLCC_ERR_BAD_DATA: return "an input's contents are invalid (a corrupt or truncated image)";
    case MLCC_ERR_UNSUPPORTED_DATA:
      return "an input is in a format or variant the model does not read (ImageDecoder: BMP, PNM, TIFF, PNG, JPEG, "
             "WebP, JPEG 2000 and GIF are read; not arithmetic-coded JPEG or JPEG-compressed TIFF)";
    case MLCC_ERR_OVER_BOUND:
      return "a data-dependent output would exceed the bound the model was compiled with (raise it with mlcc "
             "--output-bound NAME=D0,D1,...)";
    default: return "unknown status";
  }
}

/* A zeroed block of `bytes` (at least 1) aligned to MLCC_ALIGN, or NULL. A block of MLCC_HUGE_PAGE bytes or
   more is aligned to MLCC_HUGE_PAGE and asked for in transparent huge pages (Linux; a hint, ignored where they
   are off): the weights, constants and arena of a large model are read once per run, and with 4 KiB pages every
   4 KiB of them costs a TLB miss (resnet50 at 1 thread: 1.6 of 77 ms). */
static inline void *mlcc_aligned_alloc(uint64_t bytes) {
  uint64_t align = MLCC_ALIGN;
#if defined(MADV_HUGEPAGE)
  if (bytes >= MLCC_HUGE_PAGE) align = MLCC_HUGE_PAGE;
#endif
  uint64_t rounded = (bytes + align - 1) / align * align;
  if (rounded == 0) rounded = align;
  if (rounded > (uint64_t)SIZE_MAX) return NULL;
  void *p = aligned_alloc((size_t)align, (size_t)rounded);
#if defined(MADV_HUGEPAGE)
  if (p && align == MLCC_HUGE_PAGE) (void)madvise(p, (size_t)rounded, MADV_HUGEPAGE);
#endif
  if (p) memset(p, 0, (size_t)rounded);
  return p;
}

/* Free a block from mlcc_aligned_alloc; NULL is ignored. */
static inline void mlcc_aligned_free(void *p) { free(p); }

static inline int mlcc_hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* MLCC_OK if `blob` (`size` bytes) is a weights image for the model `hash_hex` with `payload` bytes. */
static inline int mlcc_check_weights(const uint8_t *blob, uint64_t size, const char *hash_hex, uint64_t payload) {
  if (size < MLCC_WEIGHTS_HEADER || memcmp(blob, "MLCCWTS1", 8) != 0) return MLCC_ERR_WEIGHTS_MISMATCH;
  for (int i = 0; i < 32; ++i) {
    int hi = mlcc_hex_digit(hash_hex[2 * i]), lo = mlcc_hex_digit(hash_hex[2 * i + 1]);
    if (hi < 0 || lo < 0 || blob[8 + i] != (uint8_t)(hi * 16 + lo)) return MLCC_ERR_WEIGHTS_MISMATCH;
  }
  uint64_t declared = 0;
  for (int i = 7; i >= 0; --i) declared = declared * 256 + blob[40 + i];
  if (declared != payload || size - MLCC_WEIGHTS_HEADER < payload) return MLCC_ERR_WEIGHTS_MISMATCH;
  return MLCC_OK;
}

/* Read a weights file into an aligned buffer (*out, freed with mlcc_aligned_free) and check it. */
static inline int mlcc_read_weights(const char *path, const char *hash_hex, uint64_t payload, void **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return MLCC_ERR_WEIGHTS_FILE;
  uint64_t size = MLCC_WEIGHTS_HEADER + payload;
  uint8_t *buf = (uint8_t *)mlcc_aligned_alloc(size);
  if (!buf) {
    fclose(f);
    return MLCC_ERR_OUT_OF_MEMORY;
  }
  size_t got = fread(buf, 1, (size_t)size, f);
  int extra = fgetc(f);
  fclose(f);
  int status = got != size ? MLCC_ERR_WEIGHTS_MISMATCH : mlcc_check_weights(buf, size, hash_hex, payload);
  if (status == MLCC_OK && extra != EOF) status = MLCC_ERR_WEIGHTS_MISMATCH;
  if (status != MLCC_OK) {
    mlcc_aligned_free(buf);
    return status;
  }
  *out = buf;
  return MLCC_OK;
}

/* The thread count asked for by MLCC_NUM_THREADS (1 when unset or invalid; capped at 256). */
static inline int mlcc_env_threads(void) {
  const char *s = getenv("MLCC_NUM_THREADS");
  if (!s || !*s) return 1;
  char *end = NULL;
  long n = strtol(s, &end, 10);
  if (*end != '\0' || n < 1) return 1;
  return n > 256 ? 256 : (int)n;
}

/* MLCC_OK if every size equals the tensor's nbytes; sizes may be NULL only when n is 0. */
static inline int mlcc_check_sizes(const int64_t *sizes, const mlcc_tensor_info *info, int n) {
  if (n && !sizes) return MLCC_ERR_NULL_ARGUMENT;
  for (int i = 0; i < n; ++i)
    if (sizes[i] != info[i].nbytes) return MLCC_ERR_SIZE_MISMATCH;
  return MLCC_OK;
}
