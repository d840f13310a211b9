/* mlcc runtime: conversions of the storage-only element types (float16, bfloat16).
 *
 * Tensors of these types are stored as their bit patterns in uint16_t. Generated code does no arithmetic on
 * them: the compiler computes in float32 and converts at the edges with the functions below. Conversions to
 * the narrow type round to nearest, ties to even, from the exact double value (one rounding, as numpy and
 * ONNX do); NaN stays NaN and overflow gives infinity. Portable C11 (and CUDA host/device code). */
#ifndef MLCC_CONVERT_H
#define MLCC_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define MLCC_HD __host__ __device__
#else
#define MLCC_HD
#endif

/* The bits of x rounded to a 16-bit IEEE-style format: sign bit 15, `man` mantissa bits, exponent bias
 * `bias` (exponents 1 - bias .. bias are normal). `nan` is the quiet NaN pattern. */
static MLCC_HD inline uint16_t mlcc_round_to_bits16(double x, int man, int bias, uint16_t nan) {
  const uint16_t sign = signbit(x) ? 0x8000 : 0;
  const uint16_t inf = (uint16_t)(0x7fffu & ~((1u << man) - 1u));
  if (isnan(x)) return (uint16_t)(sign | nan);
  double a = fabs(x);
  if (a == 0.0) return sign;
  if (isinf(a)) return (uint16_t)(sign | inf);
  int e;
  frexp(a, &e);
  e -= 1; /* a = 1.m * 2^e */
  if (e < 1 - bias) e = 1 - bias; /* subnormal: the quantum of the smallest exponent */
  double r = nearbyint(ldexp(a, man - e)); /* exact scaling, round half to even */
  if (r >= ldexp(1.0, man + 1)) { /* rounded up into the next binade */
    r = ldexp(r, -1);
    e += 1;
  }
  if (e > bias) return (uint16_t)(sign | inf);
  if (r < ldexp(1.0, man)) return (uint16_t)(sign | (uint16_t)r); /* subnormal (or zero) */
  return (uint16_t)(sign | (uint16_t)((e + bias) << man) | (uint16_t)((uint32_t)r - (1u << man)));
}

static MLCC_HD inline uint16_t mlcc_to_f16(double x) { return mlcc_round_to_bits16(x, 10, 15, 0x7e00); }
static MLCC_HD inline uint16_t mlcc_to_bf16(double x) { return mlcc_round_to_bits16(x, 7, 127, 0x7fc0); }

static MLCC_HD inline float mlcc_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13); /* inf or NaN (payload kept) */
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else {
    float f = ldexpf((float)man, -24); /* zero or subnormal: exact */
    return sign ? -f : f;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static MLCC_HD inline float mlcc_bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

#endif /* MLCC_CONVERT_H */
