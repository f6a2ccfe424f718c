/* transpose16.h - a 16 x 16 block of floats transposed in AVX-512 registers (internal to nn/: the
 * logits' row sums, ops.c; the fp32 GEMM's narrow products, gemm_f32.c). */
#ifndef RESFLOW_TRANSPOSE16_H
#define RESFLOW_TRANSPOSE16_H

#include <immintrin.h>

/* Rows r[0..16) of a 16 x 16 block into its columns: r[j] = (row 0's j, ..., row 15's j). */
__attribute__((target("avx512f"))) static inline void rf_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { /* pairs of rows, interleaved per 128-bit lane */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* 4 x 4 blocks transposed within each 128-bit lane */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int h = 0; h < 16; h += 8) /* then the 4 x 4 grid of lanes, in two steps */
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

#endif
