/* mlcc runtime: the types a generated model's public header uses. Plain C, no dependencies. */
#ifndef MLCC_RUNTIME_H
#define MLCC_RUNTIME_H

#include <stdint.h>

/* Status codes returned by every generated function that can fail. */
enum mlcc_status {
  MLCC_OK = 0,
  MLCC_ERR_NULL_ARGUMENT = 1,        /* a required pointer argument was NULL */
  MLCC_ERR_OUT_OF_MEMORY = 2,        /* an allocation failed (at create time; at run time only for strings) */
  MLCC_ERR_WEIGHTS_FILE = 3,         /* the weights file could not be opened or read */
  MLCC_ERR_WEIGHTS_MISMATCH = 4,     /* the weights do not belong to this model (hash or size differ) */
  MLCC_ERR_NO_EMBEDDED_WEIGHTS = 5,  /* built with --weights external: use create_from_file */
  MLCC_ERR_CUDA = 6,                 /* a CUDA call failed (no device, out of device memory, launch error) */
  MLCC_ERR_BAD_HANDLE = 7,           /* not a live instance: destroyed, or not made by create */
  MLCC_ERR_SIZE_MISMATCH = 8,        /* run_checked: a buffer size differs from the tensor's nbytes */
  MLCC_ERR_BAD_INDEX = 9,            /* an input or output index out of range */
  MLCC_ERR_BAD_DATA = 10,            /* run: an input's contents are invalid (ImageDecoder: a corrupt image) */
  MLCC_ERR_UNSUPPORTED_DATA = 11,    /* run: an input is in a format or variant the model does not read
                                        (ImageDecoder: WebP, JPEG 2000, ...; the README lists what it reads) */
  MLCC_ERR_OVER_BOUND = 12,          /* run: a data-dependent output would exceed the bound the model was
                                        compiled with (mlcc --output-bound sets it) */
};

/* Element types, numbered as ONNX's TensorProto.DataType. */
enum mlcc_dtype {
  MLCC_FLOAT32 = 1,
  MLCC_UINT8 = 2,
  MLCC_INT8 = 3,
  MLCC_UINT16 = 4,
  MLCC_INT16 = 5,
  MLCC_INT32 = 6,
  MLCC_INT64 = 7,
  MLCC_STRING = 8, /* an mlcc_str per element */
  MLCC_BOOL = 9,
  MLCC_FLOAT16 = 10,
  MLCC_FLOAT64 = 11,
  MLCC_UINT32 = 12,
  MLCC_UINT64 = 13,
  MLCC_BFLOAT16 = 16, /* float16 and bfloat16 are stored as their 16-bit patterns */
};

/* A string tensor's element: NUL-terminated UTF-8 (an ONNX string holding a NUL byte ends there). Input
 * strings are the caller's, read during the run; output strings belong to the instance (see output_data). */
typedef const char *mlcc_str;

/* Metadata of one model input or output. */
typedef struct mlcc_tensor_info {
  const char *name;      /* the ONNX tensor name, byte for byte */
  int32_t dtype;         /* an mlcc_dtype */
  int32_t rank;          /* number of dims */
  const int64_t *shape;  /* `rank` dims, row-major */
  int64_t nbytes;        /* size of the contiguous buffer */
  int32_t dynamic_axis;  /* -1, or the (first) axis whose extent depends on the data: `shape` then holds an
                            upper bound, and PREFIX_output_shape gives the shape of the last run */
} mlcc_tensor_info;

#endif
