/* mlcc runtime: counter-based random numbers for RandomUniform/RandomNormal(/Like) and what ONNX builds from
 * them (Bernoulli). Element i of a node's output in run r is a function of (the node's key, r, i) only: no
 * generator state, so any element can be computed independently, a seed gives the same sequence of runs in
 * every model instance, and each run draws fresh numbers. The mixing is SplitMix64's finaliser (Steele,
 * Lea, Flood 2014), which passes BigCrush as a counter-based generator. Portable C11. */
#ifndef MLCC_RANDOM_H
#define MLCC_RANDOM_H

#include <math.h>
#include <stdint.h>

static inline uint64_t mlcc_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* 64 random bits: position i of the SplitMix64 stream seeded by (key, run). */
static inline uint64_t mlcc_random_bits(uint64_t key, uint64_t run, uint64_t i) {
  return mlcc_mix64(mlcc_mix64(key ^ mlcc_mix64(run)) + (i + 1) * UINT64_C(0x9e3779b97f4a7c15));
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double mlcc_random_uniform(uint64_t key, uint64_t run, uint64_t i) {
  return (double)(mlcc_random_bits(key, run, i) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller on the uniforms 2i and 2i + 1; the first in (0, 1] so that its log is finite). */
static inline double mlcc_random_normal(uint64_t key, uint64_t run, uint64_t i) {
  const double u1 = 1.0 - mlcc_random_uniform(key, run, 2 * i);
  const double u2 = mlcc_random_uniform(key, run, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif /* MLCC_RANDOM_H */
