/* test_graph_cols.c - the op graph's column selection (cols: an embedding field's chunk per
 * task, a side's inputs in the twin tower) against its definition: out[b][j] = in[b][idx[j]],
 * and in the backward d_in[b][idx[j]] += d_out[b][j] in the order of j, bit for bit, for an
 * idx with runs of consecutive columns, single columns and a repeated column, on one thread
 * and on the team (rows above the parallel threshold); column 0 thrice, so the order shows. */
#include <omp.h>
#include <stdint.h>

#include "test_util.h"

#include "core/rng.h"
#include "nn/graph.h"

static void test_cols_matches_definition(void **state)
{
    (void)state;
    const int W = 10, idx[] = {3, 4, 5, 0, 0, 9, 8, 1, 2, 0, 3}, N = (int)(sizeof idx / sizeof *idx);
    const int Bs[2] = {5, 8000};
    rf_rng r;
    rf_rng_seed(&r, 3);
    for (int bi = 0; bi < 2; bi++)
        for (int nt = 1; nt <= 2; nt++) {
            int B = Bs[bi];
            rf_graph *g = rf_graph_new(W);
            assert_non_null(g);
            int t = rf_graph_tensor(g, N);
            assert_int_equal(rf_g_cols(g, rf_graph_whole(g, 0), idx, rf_graph_whole(g, t)), 0);
            assert_int_equal(rf_graph_finalize(g, t), 0);
            rf_graph_ws *w = rf_graph_ws_create(g, B);
            assert_non_null(w);
            float *x = malloc((size_t)B * W * 4), *dx = malloc((size_t)B * W * 4), *ref = calloc((size_t)B * W, 4);
            assert_non_null(x && dx && ref);
            for (size_t i = 0; i < (size_t)B * W; i++) x[i] = (float)(rf_rng_uniform(&r) * 2 - 1), dx[i] = 7.0f;
            rf_graph_ws_input(w, x, dx);
            omp_set_num_threads(nt);
            rf_graph_forward(g, w, NULL, NULL, B, 1);
            const float *y = rf_graph_val(w, t);
            for (int b = 0; b < B; b++)
                for (int j = 0; j < N; j++) assert_true(y[(size_t)b * N + j] == x[(size_t)b * W + idx[j]]);
            float *gy = rf_graph_grad(w, t);
            for (size_t i = 0; i < (size_t)B * N; i++) gy[i] = (float)(rf_rng_uniform(&r) * 2 - 1);
            for (int b = 0; b < B; b++)
                for (int j = 0; j < N; j++) ref[(size_t)b * W + idx[j]] += gy[(size_t)b * N + j];
            rf_graph_backward(g, w, NULL, NULL, B);
            assert_memory_equal(dx, ref, (size_t)B * W * 4); /* zeroed first, then summed in j order */
            free(x), free(dx), free(ref);
            rf_graph_ws_free(w);
            rf_graph_free(g);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cols_matches_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
