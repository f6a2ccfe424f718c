/* rng.h - explicit-state random numbers (splitmix64 seeding + xoshiro256**), the one generator
 * of resflow. No globals. rf_rng_seed gives one generator per seed; rf_rng_seed_stream gives
 * independent streams of one seed (the simulator: a stream for its world, two per chunk of
 * rows, so its output does not depend on the thread count). */
#ifndef RESFLOW_RNG_H
#define RESFLOW_RNG_H
#include <math.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } rf_rng;

static inline uint64_t rf_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline void rf_rng_seed(rf_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = rf_splitmix64(&seed);
}
static inline uint64_t rf_rng_next(rf_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}
/* Uniform in [0, 1). */
static inline double rf_rng_uniform(rf_rng *r) { return (rf_rng_next(r) >> 11) * 0x1.0p-53; }
/* Uniform integer in [0, n). */
static inline uint64_t rf_rng_below(rf_rng *r, uint64_t n) { return (uint64_t)(rf_rng_uniform(r) * (double)n) % n; }

/* Stream `stream` of seed: independent generators for (seed, 0), (seed, 1), ... */
static inline void rf_rng_seed_stream(rf_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    x = rf_splitmix64(&x) ^ stream;
    for (int i = 0; i < 4; i++) r->s[i] = rf_splitmix64(&x);
}
/* Uniform float in [0, 1) with 24 bits. */
static inline float rf_rng_uniformf(rf_rng *r) { return (float)(rf_rng_next(r) >> 40) * 0x1p-24f; }
/* Uniform integer in [0, n) (multiply-shift, bias < 2^-32). */
static inline uint32_t rf_rng_below32(rf_rng *r, uint32_t n)
{
    return (uint32_t)(((rf_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal floats (Marsaglia polar method): every accepted pair gives two draws, the
 * second kept in *sp for the next call (zero-initialise sp with the generator). */
typedef struct {
    int has;
    float v;
} rf_rng_spare;
static inline float rf_rng_normalf(rf_rng *r, rf_rng_spare *sp)
{
    if (sp->has) {
        sp->has = 0;
        return sp->v;
    }
    float u, v, s;
    do {
        uint64_t x = rf_rng_next(r);
        u = (float)(x >> 40) * 0x1p-23f - 1.0f;
        v = (float)((x >> 16) & 0xFFFFFF) * 0x1p-23f - 1.0f;
        s = u * u + v * v;
    } while (s >= 1.0f || s == 0.0f);
    float m = sqrtf(-2.0f * logf(s) / s);
    sp->v = v * m;
    sp->has = 1;
    return u * m;
}
/* Poisson(lam) by inversion (Knuth; for small lam, at most 63). */
static inline uint32_t rf_rng_poissonf(rf_rng *r, float lam)
{
    double L = exp(-(double)lam), p = 1.0;
    uint32_t k = 0;
    do {
        k++;
        p *= (double)rf_rng_uniformf(r) + 0x1p-25;
    } while (p > L && k < 64);
    return k - 1;
}
#endif
