/* test_ops.c - the fused and vectorised kernels of src/nn/ops.c against their plain definitions, bit for bit
 * (a fusion must not change a single rounding: scripts/model_hashes.sh relies on it). */
#include <omp.h>
#include <stdint.h>

#include "test_util.h"

#include "core/rng.h"
#include "nn/ops.h"

static void fill(float *x, size_t n, rf_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(rf_rng_uniform(r) * 2 - 1);
}

/* rf_bias_act_link_fwd == rf_bias_act_fwd, then each child's block += its parent's, parents
 * first; for ReLU and PReLU, a chain and a tree whose order is not the identity, on one
 * thread and on row-split threads (B * K * H above the parallel threshold) */
static void test_bias_act_link_matches_unfused(void **state)
{
    (void)state;
    const int K = 3;
    const int parents[2][3] = {{-1, 0, 1}, {1, -1, 1}}, orders[2][3] = {{0, 1, 2}, {1, 0, 2}};
    const int Bs[2] = {7, 300}, H = 80;
    rf_rng r;
    rf_rng_seed(&r, 7);
    for (int tree = 0; tree < 2; tree++)
        for (int bi = 0; bi < 2; bi++)
            for (int prelu = 0; prelu < 2; prelu++) {
                int B = Bs[bi], N = K * H;
                size_t n = (size_t)B * N;
                float *Z0 = malloc(n * 4), *Z1 = malloc(n * 4), *Z2 = malloc(n * 4), *A1 = malloc(n * 4),
                      *A2 = malloc(n * 4), *bias = malloc(N * 4), *alpha = malloc(N * 4);
                assert_non_null(Z0 && Z1 && Z2 && A1 && A2 && bias && alpha);
                fill(Z0, n, &r);
                fill(bias, N, &r);
                fill(alpha, N, &r);
                memcpy(Z1, Z0, n * 4);
                memcpy(Z2, Z0, n * 4);
                const float *al = prelu ? alpha : NULL;
                rf_bias_act_fwd(Z1, A1, B, N, N, bias, al, NULL, 0);
                for (int i = 0; i < K; i++) {
                    int k = orders[tree][i], p = parents[tree][k];
                    if (p < 0) continue;
                    for (int b = 0; b < B; b++)
                        for (int j = 0; j < H; j++) A1[(size_t)b * N + k * H + j] += A1[(size_t)b * N + p * H + j];
                }
                omp_set_num_threads(2);
                rf_bias_act_link_fwd(Z2, A2, B, K, H, bias, al, orders[tree], parents[tree], NULL, 0);
                assert_memory_equal(Z1, Z2, n * 4);
                assert_memory_equal(A1, A2, n * 4);
                /* the links did something: a child's block differs from its activation alone */
                int k = orders[tree][2];
                float v = Z2[k * H] > 0 ? Z2[k * H] : (prelu ? alpha[k * H] * Z2[k * H] : 0.0f);
                assert_true(A2[k * H] != v || A2[parents[tree][k] * H] == 0.0f);
                free(Z0), free(Z1), free(Z2), free(A1), free(A2), free(bias), free(alpha);
            }
}

/* rf_logits == each row's dot product one at a time, j in order, product then add (C11
 * keeps them apart), bit for bit: widths that take the 16-row AVX-512 blocks (16, 64) and ones
 * that do not (20, 40), batches with and without a remainder, one thread and row-split threads
 * (B * K * HL above the parallel threshold) */
static void test_logits_match_rowwise(void **state)
{
    (void)state;
    const int HLs[4] = {16, 64, 20, 40}, Bs[5] = {1, 15, 16, 37, 700}, Ks[2] = {1, 3};
    rf_rng r;
    rf_rng_seed(&r, 11);
    for (int hi = 0; hi < 4; hi++)
        for (int bi = 0; bi < 5; bi++)
            for (int ki = 0; ki < 2; ki++)
                for (int nt = 1; nt <= 2; nt++) {
                    int HL = HLs[hi], B = Bs[bi], K = Ks[ki];
                    size_t n = (size_t)B * K * HL;
                    float *O = malloc(n * 4), *W = malloc((size_t)K * HL * 4), *bo = malloc(K * 4),
                          *S1 = malloc((size_t)B * K * 4), *S2 = malloc((size_t)B * K * 4);
                    assert_non_null(O && W && bo && S1 && S2);
                    fill(O, n, &r);
                    fill(W, (size_t)K * HL, &r);
                    fill(bo, K, &r);
                    for (int b = 0; b < B; b++)
                        for (int k = 0; k < K; k++) {
                            float s = bo[k];
                            for (int j = 0; j < HL; j++) {
                                volatile float p = O[(size_t)b * K * HL + k * HL + j] * W[k * HL + j];
                                s += p;
                            }
                            S1[(size_t)b * K + k] = s;
                        }
                    omp_set_num_threads(nt);
                    rf_logits(O, B, K, HL, W, bo, S2);
                    assert_memory_equal(S1, S2, (size_t)B * K * 4);
                    free(O), free(W), free(bo), free(S1), free(S2);
                }
}

/* rf_act_bwd (ReLU, PReLU): dZ bit for bit the definition, also when written over dA, padding
 * untouched; the slopes' gradient on one thread bit for bit dalpha + each column's terms summed in
 * row order, on row-split threads (B * N above the parallel threshold) within rounding of it, every
 * thread's rows counted. Zero, negative zero and NaN inputs on the slope's side. */
static void test_act_bwd_matches_definition(void **state)
{
    (void)state;
    const int SH[3][2] = {{37, 20}, {700, 130}, {2048, 40}};
    rf_rng r;
    rf_rng_seed(&r, 12);
    for (int h = 0; h < 3; h++)
        for (int v = 0; v < 4; v++) /* ReLU / PReLU, dZ apart / over dA */
            for (int nt = 1; nt <= 2; nt++) {
                int B = SH[h][0], N = SH[h][1], ld = N + 3, prelu = v & 1, alias = v >> 1;
                size_t n = (size_t)B * ld;
                float *Z = malloc(n * 4), *dA = malloc(n * 4), *dZ = malloc(n * 4), *want = malloc(n * 4),
                      *al = malloc(N * 4), *dal = malloc(N * 4), *s = calloc(N, 4), *dal0 = malloc(N * 4);
                assert_non_null(Z && dA && dZ && want && al && dal && s && dal0);
                fill(Z, n, &r), fill(dA, n, &r), fill(al, N, &r), fill(dal0, N, &r);
                Z[0] = 0.0f, Z[ld + 1] = -0.0f, Z[2 * ld + 2] = NAN;
                for (size_t i = 0; i < n; i++) {
                    float z = Z[i];
                    want[i] = i % ld >= (size_t)N ? 7.0f : z > 0 ? dA[i] : prelu ? al[i % ld] * dA[i] : 0.0f;
                    dZ[i] = 7.0f;
                }
                for (int b = 0; b < B; b++)
                    for (int j = 0; j < N; j++) {
                        float z = Z[(size_t)b * ld + j];
                        s[j] += z > 0 ? 0.0f : dA[(size_t)b * ld + j] * z;
                    }
                if (alias)
                    for (int b = 0; b < B; b++)
                        for (int j = N; j < ld; j++) dA[(size_t)b * ld + j] = 7.0f;
                memcpy(dal, dal0, N * 4);
                omp_set_num_threads(nt);
                rf_act_bwd(Z, dA, alias ? dA : dZ, B, N, ld, prelu ? al : NULL, prelu ? dal : NULL);
                assert_memory_equal(alias ? dA : dZ, want, n * 4);
                for (int j = 0; j < N; j++) {
                    float one = dal0[j] + s[j];
                    if (!prelu) one = dal0[j];
                    if (nt == 1 || !prelu) {
                        if (memcmp(&dal[j], &one, 4))
                            fail_msg("B=%d N=%d prelu=%d, %d thread: dalpha[%d] = %.9g, want %.9g", B, N, prelu, nt, j,
                                     dal[j], one);
                    } else if (!(isnan(one) && isnan(dal[j])) && !(fabsf(dal[j] - one) <= 1e-5f * (1.0f + fabsf(s[j]))))
                        fail_msg("B=%d N=%d, %d threads: dalpha[%d] = %.9g, want %.9g", B, N, nt, j, dal[j], one);
                }
                free(Z), free(dA), free(dZ), free(want), free(al), free(dal), free(s), free(dal0);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias_act_link_matches_unfused),
        cmocka_unit_test(test_logits_match_rowwise),
        cmocka_unit_test(test_act_bwd_matches_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
