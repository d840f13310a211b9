/* mlcc runtime: expf, tanhf, erff and 1 + exp(-x) for float32 arithmetic in generated code (compiler/ops/common.py
 * cmath, logistic_den).
 *
 * Written without branches or calls, so that the compiler vectorises the loops that use them (libm's
 * scalar calls stop that, and an activation such as SiLU or GELU fused into a GEMM then costs more than the
 * GEMM). Needs -fno-trapping-math for the selects to vectorise (the generated Makefile sets it). Accuracy,
 * measured against double-precision libm on a sweep of the floats (tests/unit/test_math.py):
 *   mlcc_expf   <= 1.5 ulp; inf past 88.72, 0 below -103.97, subnormal results in between
 *   mlcc_tanhf  <= 2 ulp
 *   mlcc_erff   <= 8 ulp (at most 4e-7 absolute, near |x| = 3.4)
 *   mlcc_logistic_denf <= 2 ulp (1 + exp(-x))
 * NaN in gives NaN out; the limits at +-inf are exact.
 * The coefficients are least-squares fits made for mlcc. CUDA device code uses the CUDA math library. */
#ifndef MLCC_MATH_H
#define MLCC_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
static __host__ __device__ inline float mlcc_expf(float x) { return expf(x); }
static __host__ __device__ inline float mlcc_tanhf(float x) { return tanhf(x); }
static __host__ __device__ inline float mlcc_erff(float x) { return erff(x); }
static __host__ __device__ inline float mlcc_logistic_denf(float x) { return 1.0f + expf(-x); }
#else

static inline float mlcc_float_of_bits(int32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

#define MLCC_EXP_LO -103.972076f /* below: exp rounds to 0 */
#define MLCC_EXP_HI 88.7228394f  /* above: exp rounds to inf */

/* exp of x clamped to [MLCC_EXP_LO, MLCC_EXP_HI]: 2^n * exp(r), n = round(x / ln 2), |r| <= ln 2 / 2
   (Cody-Waite: ln 2 split in two). At the upper end the result rounds to inf; a clamp keeps NaN. */
static inline float mlcc_exp_clamped(float x) {
  float xc = x < MLCC_EXP_LO ? MLCC_EXP_LO : x;
  xc = xc > MLCC_EXP_HI ? MLCC_EXP_HI : xc;
  const float shift = 12582912.0f; /* 1.5 * 2^23: the sum's low mantissa bits hold round(x / ln 2) */
  const float t = xc * 1.44269504f + shift;
  const float n = t - shift;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.98756915e-4f;
  p = p * r + 1.39819995e-3f;
  p = p * r + 8.33345191e-3f;
  p = p * r + 4.16657959e-2f;
  p = p * r + 1.66666655e-1f;
  p = p * r + 5.00000012e-1f;
  const float e = p * r * r + r + 1.0f;
  int32_t ti;
  memcpy(&ti, &t, sizeof ti);
  const int32_t ni = ti - 0x4B400000, n1 = ni >> 1; /* 2^n as 2^n1 * 2^(n - n1): both factors normal */
  return e * mlcc_float_of_bits((n1 + 127) << 23) * mlcc_float_of_bits((ni - n1 + 127) << 23);
}

static inline float mlcc_expf(float x) {
  const float y = mlcc_exp_clamped(x);
  float out = x > MLCC_EXP_HI ? INFINITY : y;
  out = x < MLCC_EXP_LO ? 0.0f : out;
  return x != x ? x : out;
}

/* 1 + exp(-x), the logistic function's denominator (Sigmoid is 1 / it, SiLU x / it), with mlcc_exp_clamped's
   reduction and coefficients, made cheaper where the sum allows (SiLU fused into a convolution spends most of
   its time here): -x is clamped to [-87, MLCC_EXP_HI] (below, 1 + exp rounds to 1 anyway), so that 2^n is one
   factor, 2^(n-1) after doubling e, normal for n in [-125, 128] and 0 at -126 (1 + 0 is still right), and
   overflows to inf at the top as exp does; the polynomial in Estrin's scheme (shorter dependency chains);
   the clamps as max and min, which the compiler does not split into paths with the clamped values'
   constants (it did: two divisions per vector in SiLU), and NaN put back at the end. */
static inline float mlcc_logistic_denf(float x) {
  float xc = -x > -87.0f ? -x : -87.0f;
  xc = xc < MLCC_EXP_HI ? xc : MLCC_EXP_HI;
  const float shift = 12582912.0f; /* 1.5 * 2^23 */
  const float t = xc * 1.44269504f + shift;
  const float n = t - shift;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r, r4 = r2 * r2;
  const float q01 = 1.66666655e-1f * r + 5.00000012e-1f;
  const float q23 = 8.33345191e-3f * r + 4.16657959e-2f;
  const float q45 = 1.98756915e-4f * r + 1.39819995e-3f;
  const float p = (q01 + r2 * q23) + r4 * q45;
  const float e = p * r2 + r + 1.0f;
  int32_t ti;
  memcpy(&ti, &t, sizeof ti);
  const float d = 1.0f + (e + e) * mlcc_float_of_bits((ti - 0x4B400000 + 126) << 23);
  return x != x ? x : d;
}

/* |x| < 0.625: x + x^3 R(x^2); above: 1 - 2 / (exp(2|x|) + 1), sign restored. */
static inline float mlcc_tanhf(float x) {
  const float a = fabsf(x), z = x * x;
  float p = -5.79810003e-3f;
  p = p * z + 2.07202807e-2f;
  p = p * z + -5.37637994e-2f;
  p = p * z + 1.33317187e-1f;
  p = p * z + -3.33332926e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (mlcc_expf(2.0f * (a < 10.0f ? a : 10.0f)) + 1.0f);
  const float out = copysignf(a < 0.625f ? fabsf(small) : big, x);
  return x != x ? x : out;
}

/* x P(x^2) / Q(x^2) on |x| <= 4 (erf(4) rounds to 1 in float), clamped to [-1, 1]. */
static inline float mlcc_erff(float x) {
  const float xc = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x), z = xc * xc;
  float p = -1.32024596e-8f;
  p = p * z + 4.68483950e-6f;
  p = p * z + 3.79610748e-4f;
  p = p * z + 3.84958647e-3f;
  p = p * z + 5.43168597e-2f;
  p = p * z + 1.85202390e-1f;
  p = p * z + 1.12837923f;
  float q = 6.31111907e-5f;
  q = q * z + 1.30756747e-3f;
  q = q * z + 1.54620444e-2f;
  q = q * z + 1.13958128e-1f;
  q = q * z + 4.97464746e-1f;
  q = q * z + 1.0f;
  float out = xc * p / q;
  out = out > 1.0f ? 1.0f : out;
  out = out < -1.0f ? -1.0f : out;
  return x != x ? x : out;
}
#endif

#endif
