/* rng.h - explicit-state random numbers (splitmix64 seeding + xoshiro256**). No globals. */
#ifndef RESFLOW_RNG_H
#define RESFLOW_RNG_H
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
#endif
