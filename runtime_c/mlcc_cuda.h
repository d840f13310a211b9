/* mlcc CUDA helpers, compiled into each generated CUDA library by #include from model.cu. All static. */
#ifndef MLCC_CUDA_H
#define MLCC_CUDA_H

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include "mlcc_runtime.h"

/* Return MLCC_ERR_CUDA from the enclosing function when a CUDA call fails. */
#define MLCC_CUDA_TRY(call)                      \
  do {                                           \
    if ((call) != cudaSuccess) return MLCC_ERR_CUDA; \
  } while (0)

/* cudaMalloc of at least 1 byte (so empty regions still get a valid pointer). */
static inline cudaError_t mlcc_cuda_alloc(void **p, uint64_t bytes) { return cudaMalloc(p, bytes ? bytes : 1); }

template <typename T>
__global__ void mlcc_cuda_fill_kernel(T *p, int64_t n, T value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) p[i] = value;
}

/* Fill n elements of device memory with `value` on `stream`. */
template <typename T>
static inline void mlcc_cuda_fill(T *p, int64_t n, T value, cudaStream_t stream) {
  int64_t blocks = (n + 255) / 256;
  mlcc_cuda_fill_kernel<T><<<(unsigned)(blocks < 65535 ? (blocks ? blocks : 1) : 65535), 256, 0, stream>>>(p, n, value);
}

/* Sum (or max) of `v` over a block of at most 1024 threads; every thread gets the result. `scratch` holds 32. */
template <typename T, bool Max>
__device__ inline T mlcc_block_reduce(T v, T *scratch) {
  for (int d = 16; d > 0; d >>= 1) {
    T o = __shfl_xor_sync(0xffffffffu, v, d);
    v = Max ? (o > v ? o : v) : v + o;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < warps; ++w) v = Max ? (scratch[w] > v ? scratch[w] : v) : v + scratch[w];
  return v;
}

/* Split-K (templates/cuda/kernels/tile_gemm.cuh.j2): called by every thread of a block after it stored its
   partial tile; true in the last of `splits` blocks of the tile to arrive, which then reads all partials. The
   fences order each block's partial stores before its arrival, and the last block's reads after it. That block
   resets the counter, so it is zero again for the next run. */
__device__ inline bool mlcc_split_last(unsigned *counter, unsigned splits) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1u) == splits - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

/* An integer environment flag: `fallback` when unset, else whether it is not "0". */
static inline int mlcc_env_flag(const char *name, int fallback) {
  const char *s = getenv(name);
  return s && *s ? !(s[0] == '0' && s[1] == '\0') : fallback;
}

#endif
