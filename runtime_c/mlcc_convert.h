/* mlcc runtime: conversions of the storage-only element types (float16, bfloat16, the float8 family).
 *
 * Tensors of these types are stored as their bit patterns in uint16_t (uint8_t for float8). Generated code does no arithmetic on
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

/* The bits of x rounded to an 8-bit float (ONNX's float8 types): sign bit 7, `man` mantissa bits,
 * exponent bias `bias`, largest finite magnitude `max_bits`. fnuz types have no negative zero and no
 * infinity, and NaN is 0x80; the others have NaN 0x7f and, with `has_inf` (E5M2), infinity 0x7c. Values
 * beyond the largest finite one, infinities included, become it with `saturate` (ONNX Cast's default);
 * without, infinity where the type has one, else NaN. Ties round to even, from the exact value. */
static MLCC_HD inline uint8_t mlcc_round_to_bits8(double x, int man, int bias, uint8_t max_bits, int fnuz, int has_inf,
                                                  int saturate) {
  const uint8_t nan = fnuz ? 0x80 : 0x7f;
  if (isnan(x)) return nan;
  const uint8_t sign = signbit(x) ? 0x80 : 0;
  const uint8_t over = saturate ? (uint8_t)(sign | max_bits) : has_inf ? (uint8_t)(sign | 0x7c) : nan;
  const double a = fabs(x);
  if (a == 0.0) return fnuz ? 0 : sign;
  if (isinf(a)) return over;
  int e;
  frexp(a, &e);
  e -= 1; /* a = 1.m * 2^e */
  if (e < 1 - bias) e = 1 - bias;
  double r = nearbyint(ldexp(a, man - e));
  if (r >= ldexp(1.0, man + 1)) {
    r = ldexp(r, -1);
    e += 1;
  }
  if (r < ldexp(1.0, man)) return (r == 0.0 && fnuz) ? 0 : (uint8_t)(sign | (uint8_t)r); /* subnormal or zero */
  if (e + bias > (1 << (7 - man)) - 1) return over;
  const uint8_t mag = (uint8_t)(((e + bias) << man) | ((uint32_t)r - (1u << man)));
  return mag > max_bits ? over : (uint8_t)(sign | mag);
}

static MLCC_HD inline float mlcc_bits8_to_f32(uint8_t b, int man, int bias, uint8_t max_bits, int fnuz, int has_inf) {
  const uint8_t mag = b & 0x7f;
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  if (fnuz && b == 0x80) return NAN;
  if (mag > max_bits) return (has_inf && mag == 0x7c) ? sign * INFINITY : NAN;
  const int ef = mag >> man, mf = mag & ((1 << man) - 1);
  if (ef == 0) return sign * ldexpf((float)mf, 1 - bias - man); /* zero or subnormal */
  return sign * ldexpf((float)((1 << man) | mf), ef - bias - man);
}

#define MLCC_FLOAT8(name, man, bias, max_bits, fnuz, has_inf)                                                 \
  static MLCC_HD inline uint8_t mlcc_to_##name(double x) {                                                    \
    return mlcc_round_to_bits8(x, man, bias, max_bits, fnuz, has_inf, 1);                                   \
  }                                                                                                          \
  static MLCC_HD inline uint8_t mlcc_to_##name##_nosat(double x) {                                            \
    return mlcc_round_to_bits8(x, man, bias, max_bits, fnuz, has_inf, 0);                                   \
  }                                                                                                          \
  static MLCC_HD inline float mlcc_##name##_to_f32(uint8_t b) { return mlcc_bits8_to_f32(b, man, bias, max_bits, fnuz, has_inf); }
MLCC_FLOAT8(f8e4m3fn, 3, 7, 0x7e, 0, 0)   /* largest 448 */
MLCC_FLOAT8(f8e4m3fnuz, 3, 8, 0x7f, 1, 0) /* largest 240 */
MLCC_FLOAT8(f8e5m2, 2, 15, 0x7b, 0, 1)    /* largest 57344 */
MLCC_FLOAT8(f8e5m2fnuz, 2, 16, 0x7f, 1, 0)
#undef MLCC_FLOAT8

/* float8e8m0 (a power of two 2^(e - 127); 0xff is NaN) from the bits of a float32, as ONNX's reference
 * does: its exponent, rounded up (mode 0: any fraction), down (1) or to nearest (2); with `saturate` the
 * largest power (0xfe) never rounds up into NaN. */
static MLCC_HD inline uint8_t mlcc_to_f8e8m0(float x, int saturate, int mode) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  const uint32_t e = (b >> 23) & 0xff;
  if (e == 0xff) return 0xff;
  uint32_t up = 0;
  if (mode == 0) up = (b & 0x7fffffu) != 0;
  if (mode == 2) up = (b & 0x400000u) && ((b & 0x200000u) || (b & 0x1fffffu) || e > 0);
  if (saturate && e == 0xfe) up = 0;
  return (uint8_t)(e + up);
}
static MLCC_HD inline uint8_t mlcc_to_f8e8m0_up(double x) { return mlcc_to_f8e8m0((float)x, 1, 0); }
static MLCC_HD inline float mlcc_f8e8m0_to_f32(uint8_t b) { return b == 0xff ? NAN : ldexpf(1.0f, (int)b - 127); }

/* float4e2m1 (bits in the low 4 of a byte: sign bit 3, 2 exponent bits of bias 1, 1 mantissa bit; largest
 * 6, no infinity or NaN): ties to even, everything beyond 6 (infinities included) saturates, NaN becomes
 * 0x8 (negative zero), as numpy's (ml_dtypes') conversion does. */
static MLCC_HD inline uint8_t mlcc_to_f4e2m1(double x) {
  if (isnan(x)) return 0x8;
  const uint8_t sign = signbit(x) ? 0x8 : 0;
  const double a = fabs(x);
  /* the codes 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6: count the midpoints passed, a tie going to the even code */
  const int code = (a > 0.25) + (a >= 0.75) + (a > 1.25) + (a >= 1.75) + (a > 2.5) + (a >= 3.5) + (a > 5.0);
  return (uint8_t)(sign | code);
}
static MLCC_HD inline float mlcc_f4e2m1_to_f32(uint8_t b) {
  const int mag = b & 7, e = mag >> 1, m = mag & 1;
  const float v = e == 0 ? 0.5f * (float)m : ldexpf(1.0f + 0.5f * (float)m, e - 1);
  return (b & 8) ? -v : v;
}

/* Sub-byte integers, one per byte, the value in the low bits. From a float: truncated toward zero, and 0
 * where that is out of range (NaN too); from an integer: its low bits (two's complement wrap-around). */
#define MLCC_SUBBYTE(name, bits, lo, hi, is_signed)                                                           \
  static MLCC_HD inline uint8_t mlcc_to_##name(double x) {                                                    \
    const double t = trunc(x);                                                                               \
    return (t >= (lo) && t <= (hi)) ? (uint8_t)((int)t & ((1 << (bits)) - 1)) : 0;                          \
  }                                                                                                          \
  static MLCC_HD inline uint8_t mlcc_wrap_##name(int64_t v) { return (uint8_t)((uint64_t)v & ((1u << (bits)) - 1u)); } \
  static MLCC_HD inline float mlcc_##name##_to_f32(uint8_t b) {                                               \
    const int v = b & ((1 << (bits)) - 1);                                                                   \
    return (float)((is_signed) ? (v ^ (1 << ((bits) - 1))) - (1 << ((bits) - 1)) : v);                      \
  }
MLCC_SUBBYTE(i4, 4, -8, 7, 1)
MLCC_SUBBYTE(u4, 4, 0, 15, 0)
MLCC_SUBBYTE(i2, 2, -2, 1, 1)
MLCC_SUBBYTE(u2, 2, 0, 3, 0)
#undef MLCC_SUBBYTE

#endif /* MLCC_CONVERT_H */
