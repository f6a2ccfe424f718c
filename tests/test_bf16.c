/* test_bf16.c - train.precision: bf16 (src/nn/gemm_bf16.c, docs/performance.md).
 *
 * The bf16 GEMM against double-precision products, for every transpose, odd and strided shapes,
 * alpha/beta, one and two threads and inside a parallel region: to fp32 accuracy against the
 * products of the bf16-rounded inputs (so the packing and the pairs along K are exact), and
 * within bf16's rounding against the unrounded inputs. A finite-difference check means nothing
 * at 8 bits of mantissa, so the gradients of a bf16 backward pass are compared with fp32's
 * instead, group by group; the activations' layouts written by their passes give the GEMMs'
 * own packing's bits exactly, and are used. Training: bf16 reaches fp32's test AUC within 0.002 on the simulator
 * and on the AliExpress-format config (../shared/data, skipped when absent); so does the fp32
 * model scored in bf16 (rf_predict_ex), its probabilities within bf16's rounding; the zoo models
 * (op graphs) the same: gradients for every type, AUCs for three. The refusals (no
 * AVX512-BF16; int8 for a zoo model) and the configuration key. On a CPU without AVX512-BF16 only the
 * refusal and the key are tested. */
#include <omp.h>

#include "test_util.h"

#include "nn/gemm_bf16.h"
#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"

#define NEED_BF16()                                                                                         \
    do {                                                                                                    \
        if (!rf_bf16_supported()) {                                                                         \
            fprintf(stderr, "  [skip] no AVX512-BF16 on this CPU\n");                                       \
            skip();                                                                                         \
        }                                                                                                   \
    } while (0)

/* Checks C against alpha * op(A) op(B) + beta * C0 in double: with rounded = 1 the products are
 * of bf16-rounded A and B (tolerance: fp32 accumulation), else of A and B as given (tolerance:
 * bf16 rounding of both operands, 2 * 2^-9 of sum |a b|, doubled). */
static void check_gemm(int ta, int tb, int M, int N, int K, float alpha, float beta, const float *A, int lda,
                       const float *B, int ldb, const float *C0, const float *C, int ldc, int rounded)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double r = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                if (rounded) a = test_bf16r(a), b = test_bf16r(b);
                r += (double)a * b;
                mag += fabs((double)a * b);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double want = alpha * r + beta * c0;
            double tol = rounded ? 1e-6 * (fabs(alpha) * mag + fabs(beta * c0)) + 1e-6
                                 : 8e-3 * fabs(alpha) * mag + 1e-6 * fabs(beta * c0) + 1e-6;
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                fail_msg("gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.9g, want %.9g (tol %.3g, %s)",
                         ta, tb, M, N, K, alpha, beta, i, j, got, want, tol, rounded ? "rounded inputs" : "fp32 inputs");
        }
    /* the padding columns of C (ldc > N) are never written */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) fail_msg("gemm wrote C[%d][%d] beyond N = %d", i, j, N);
}

static void run_gemm(rf_bf16_scratch *s, int ta, int tb, int M, int N, int K, float alpha, float beta, uint64_t seed)
{
    /* leading dimensions a little wider than the operands, as the towers' strided views */
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    float *A = test_randm((size_t)(ta ? K : M) * lda, seed), *B = test_randm((size_t)(tb ? N : K) * ldb, seed + 1);
    float *C0 = test_randm((size_t)M * ldc, seed + 2), *C = malloc((size_t)M * ldc * sizeof *C);
    assert_non_null(C);
    memcpy(C, C0, (size_t)M * ldc * sizeof *C);
    assert_int_equal(rf_gemm_bf16(s, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 0);
    check_gemm(ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C0, C, ldc, 1);
    check_gemm(ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C0, C, ldc, 0);
    free(A);
    free(B);
    free(C0);
    free(C);
}

static const int SHAPES[][3] = {
    /* M, N, K: odd sizes around the micro-kernel (6 x 64) and the packing (16 columns, pairs) */
    {1, 1, 1},      {7, 17, 3},     {13, 65, 33},   {31, 100, 129},  {6, 64, 2},     {64, 16, 255},
    {97, 130, 64},  {300, 70, 257}, {2, 300, 1},    {257, 33, 300},  {48, 200, 20},  {190, 48, 130},
};

static void test_gemm_shapes(void **state)
{
    (void)state;
    NEED_BF16();
    size_t an = 0, bn = 0;
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++)
        for (int t = 0; t < 4; t++)
            rf_bf16_scratch_need(t & 1, t >> 1, SHAPES[i][0], SHAPES[i][1], SHAPES[i][2], &an, &bn);
    rf_bf16_scratch *s = rf_bf16_scratch_create(an, bn);
    assert_non_null(s);
    static const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -0.25f}};
    int was = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        uint64_t seed = 100;
        for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++)
            for (int t = 0; t < 4; t++)
                for (size_t c = 0; c < sizeof ab / sizeof *ab; c++)
                    run_gemm(s, t & 1, t >> 1, SHAPES[i][0], SHAPES[i][1], SHAPES[i][2], ab[c][0], ab[c][1], seed += 3);
    }
    omp_set_num_threads(was);
    rf_bf16_scratch_free(s);
}

/* The tower shapes, large enough to split over two threads, and the same inside a parallel
 * region (the overlapped layer-0 weight gradient runs in an omp section: one thread). */
static void test_gemm_tower_shapes(void **state)
{
    (void)state;
    NEED_BF16();
    static const int sh[][5] = {{0, 0, 512, 96, 80}, {0, 1, 512, 80, 96}, {1, 0, 80, 96, 512}, {1, 1, 75, 33, 301}};
    size_t an = 0, bn = 0;
    for (int i = 0; i < 4; i++) rf_bf16_scratch_need(sh[i][0], sh[i][1], sh[i][2], sh[i][3], sh[i][4], &an, &bn);
    rf_bf16_scratch *s = rf_bf16_scratch_create(an, bn);
    assert_non_null(s);
    int was = omp_get_max_threads();
    omp_set_num_threads(2);
    for (int i = 0; i < 4; i++) run_gemm(s, sh[i][0], sh[i][1], sh[i][2], sh[i][3], sh[i][4], 1.0f, (float)(i & 1), 7 + i);
#pragma omp parallel sections num_threads(2)
    {
#pragma omp section
        run_gemm(s, 1, 0, 80, 96, 512, 1.0f, 1.0f, 31);
#pragma omp section
        { /* the other section computes something else meanwhile */
            volatile double x = 0;
            for (int i = 0; i < 100000; i++) x += i;
        }
    }
    omp_set_num_threads(was);
    rf_bf16_scratch_free(s);
}

static void test_gemm_scratch_too_small(void **state)
{
    (void)state;
    NEED_BF16();
    rf_bf16_scratch *s = rf_bf16_scratch_create(64, 64);
    assert_non_null(s);
    float A[40 * 40] = {0}, B[40 * 40] = {0}, C[40 * 40];
    for (int i = 0; i < 40 * 40; i++) C[i] = (float)i;
    assert_int_equal(rf_gemm_bf16(s, 0, 0, 40, 40, 40, 1.0f, A, 40, B, 40, 0.0f, C, 40), -1);
    for (int i = 0; i < 40 * 40; i++) assert_true(C[i] == (float)i); /* untouched */
    /* the tower hook then computes in fp32: exact zeros here */
    rf_gemm_prec(s, 0, 0, 40, 40, 40, 1.0f, A, 40, B, 40, 0.0f, C, 40);
    for (int i = 0; i < 40 * 40; i++) assert_true(C[i] == 0.0f);
    rf_bf16_scratch_free(s);
}

/* ---- the model ---------------------------------------------------------------------------- */

/* The simulator through the configuration, as `resflow train` loads it. */
static void sim_cfg(rf_config *c, size_t rows)
{
    rf_config_default(c);
    rf_error e;
    char set[64];
    snprintf(set, sizeof set, "synth.rows=%zu", rows);
    const char *sets[] = {set, "synth.ctr=0.1", "synth.cvr=0.2", "model.hidden=[64,32]", "train.batch_size=512",
                          "train.epochs=2", "train.log_every=1000000", "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) assert_int_equal(rf_config_set(c, sets[i], &e), RF_OK);
    rf_schema_from_tasks(c);
}

static double grad_rel_err(const float *a, const float *b, size_t n, double *norm)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    *norm = sqrt(s);
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* One batch's gradients in bf16 against fp32's, per parameter group: relative L2 error under
 * tol (bf16 keeps 8 bits: 0.4% per rounding), and not zero (the bf16 path ran). */
/* A model of the type (and the extra setting, or NULL) on a simulator of `n` rows (its splits
 * in *sp, its label columns in lc), and a batch of B of its training rows, every step-th. */
static rf_model *sim_model(const char *type, const char *extra, size_t n, rf_splits *sp, int *lc, int B, size_t step,
                           size_t **rows)
{
    rf_config c;
    sim_cfg(&c, n);
    rf_error e;
    char set[64];
    snprintf(set, sizeof set, "model.type=%s", type);
    assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
    if (extra) assert_int_equal(rf_config_set(&c, extra, &e), RF_OK);
    assert_int_equal(rf_data_load(&c, sp, NULL, NULL, &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&c, sp->train->F, sp->train->fields, sp->train->D, &m, &e), RF_OK);
    assert_int_equal(rf_resolve_labels(m, sp->train, lc, &e), RF_OK);
    *rows = malloc(B * sizeof **rows);
    for (int i = 0; i < B; i++) (*rows)[i] = (size_t)i * step % sp->train->n;
    return m;
}

static void grads_close(const char *type, const char *extra, double tol)
{
    rf_splits sp;
    rf_error e;
    int B = 512, lc[RF_MAX_TASKS];
    size_t *rows;
    rf_model *m = sim_model(type, extra, 6000, &sp, lc, B, 7, &rows);
    rf_batch bt = {sp.train, rows, B, lc};
    rf_grads *g[2];
    double loss[2];
    for (int p = 0; p < 2; p++) {
        rf_workspace *ws = rf_workspace_create(m, B);
        assert_non_null(ws);
        assert_int_equal(rf_ws_set_precision(ws, m, p ? RF_PREC_BF16 : RF_PREC_FP32, &e), RF_OK);
        g[p] = rf_grads_create(m);
        assert_int_equal(rf_model_forward(m, ws, &bt, 1, &e), RF_OK);
        loss[p] = rf_model_loss(m, ws, &bt, NULL, NULL);
        rf_grads_zero(g[p]);
        assert_int_equal(rf_model_backward(m, ws, &bt, g[p], &e), RF_OK);
        rf_workspace_free(ws);
    }
    assert_true(fabs(loss[1] - loss[0]) <= 1e-2 * fabs(loss[0]));
    rf_param_group gr[64];
    int ng = rf_model_param_groups(m, gr, 64);
    assert_true(ng > 0 && ng <= 64);
    double worst = 0, any = 0;
    for (int i = 0; i < ng; i++) {
        if (gr[i].emb) continue;
        float *a = malloc(gr[i].rows * gr[i].cols * sizeof *a), *b = malloc(gr[i].rows * gr[i].cols * sizeof *b);
        for (size_t r = 0; r < gr[i].rows; r++)
            for (size_t q = 0; q < gr[i].cols; q++) {
                a[r * gr[i].cols + q] = g[1]->dense[gr[i].off + r * gr[i].ld + q];
                b[r * gr[i].cols + q] = g[0]->dense[gr[i].off + r * gr[i].ld + q];
            }
        double norm, rel = grad_rel_err(a, b, gr[i].rows * gr[i].cols, &norm);
        if (norm > 1e-6 && rel > worst) worst = rel;
        if (rel > tol && norm > 1e-6) fail_msg("%s: gradient of %s off by %.3g (relative L2)", type, gr[i].name, rel);
        any += rel;
        free(a);
        free(b);
    }
    /* the embedding rows: the same rows in the same order, values within 2% */
    assert_int_equal(g[0]->n_rows, g[1]->n_rows);
    assert_int_equal(memcmp(g[0]->rows, g[1]->rows, g[0]->n_rows * sizeof *g[0]->rows), 0);
    double norm, rel = grad_rel_err(g[1]->g, g[0]->g, g[0]->n_rows * (size_t)m->E, &norm);
    if (rel > tol) fail_msg("%s: embedding gradients off by %.3g (relative L2)", type, rel);
    if (rel > worst) worst = rel;
    fprintf(stderr, "  %s%s%s: loss fp32 %.6f bf16 %.6f, worst relative gradient error %.4f\n", type, extra ? " " : "",
            extra ? extra : "", loss[0], loss[1], worst);
    assert_true(any > 0); /* bf16 really ran */
    rf_grads_free(g[0]);
    rf_grads_free(g[1]);
    free(rows);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_grads_close(void **state)
{
    (void)state;
    NEED_BF16();
    grads_close("resflow", NULL, 0.02);
    grads_close("nse", NULL, 0.02);
    grads_close("esmm", NULL, 0.02);
    grads_close("resflow", "model.dense_mode=project", 0.02);
    /* BatchNorm: a hidden layer's bias gradient is a sum of terms that nearly cancel (the batch
     * mean takes the bias out but for the PReLU's kink), so its relative error is larger */
    grads_close("resflow", "model.bn=batch", 0.08);
}

/* The activations' bf16 layouts written by the passes that compute them (rf_bf16_acts,
 * gemm_bf16.h) give the same bits as the GEMMs' own packing - loss, dense and embedding
 * gradients - for an even and an odd batch (whose last pair has one row, and whose pairs of rows
 * can straddle two threads' shares of the backward pass), on one to three threads; and they are
 * used, except where the pass does not write the final activation (a projected dense field: x;
 * BatchNorm: O). */
static void prepacked_same(const char *type, const char *extra, int B, int threads, int want_x, int want_o)
{
    rf_splits sp;
    rf_error e;
    int lc[RF_MAX_TASKS], nt0 = omp_get_max_threads();
    size_t *rows;
    rf_model *m = sim_model(type, extra, 4000, &sp, lc, B, 5, &rows);
    rf_batch bt = {sp.train, rows, B, lc};
    rf_grads *g[2];
    double loss[2];
    omp_set_num_threads(threads);
    for (int p = 0; p < 2; p++) {
        rf_workspace *ws = rf_workspace_create(m, B);
        assert_non_null(ws);
        assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_BF16, &e), RF_OK);
        assert_non_null(ws->pk);
        if (p == 0) { /* the GEMMs pack every operand themselves */
            rf_bf16_acts_free(ws->pk);
            ws->pk = NULL;
        }
        g[p] = rf_grads_create(m);
        assert_int_equal(rf_model_forward(m, ws, &bt, 1, &e), RF_OK);
        loss[p] = rf_model_loss(m, ws, &bt, NULL, NULL);
        rf_grads_zero(g[p]);
        assert_int_equal(rf_model_backward(m, ws, &bt, g[p], &e), RF_OK);
        if (p == 1) {
            assert_int_equal(ws->pk->x.valid, want_x);
            for (int k = 0; k < m->K; k++) assert_int_equal(ws->pk->o[0][k].valid, want_o);
            assert_int_equal(ws->pk->dz[0][0].valid, 1);
            for (int k = 0; k < m->K; k++) assert_int_equal(ws->pk->dz[1][k].valid, 1);
        }
        rf_workspace_free(ws);
    }
    omp_set_num_threads(nt0);
    assert_true(loss[0] == loss[1]);
    assert_int_equal(memcmp(g[0]->dense, g[1]->dense, g[0]->n_dense * sizeof *g[0]->dense), 0);
    assert_int_equal(g[0]->n_rows, g[1]->n_rows);
    assert_int_equal(memcmp(g[0]->rows, g[1]->rows, g[0]->n_rows * sizeof *g[0]->rows), 0);
    assert_int_equal(memcmp(g[0]->g, g[1]->g, g[0]->n_rows * (size_t)m->E * sizeof *g[0]->g), 0);
    rf_grads_free(g[0]);
    rf_grads_free(g[1]);
    free(rows);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_prepacked_same_bits(void **state)
{
    (void)state;
    NEED_BF16();
    /* 1023 rows of layer 0's 128 columns are split over threads (rf_act_bias_bwd: rows 511 and
     * 341 start the second thread's share, so pair 255, or 170, straddles) */
    for (int t = 1; t <= 3; t++)
        for (int B = 1022; B <= 1023; B++) {
            prepacked_same("resflow", NULL, B, t, 1, 1);
            prepacked_same("nse", NULL, B, t, 1, 1);
        }
    prepacked_same("esmm", NULL, 1023, 2, 1, 1);
    prepacked_same("resflow", "model.dense_mode=project", 1023, 2, 0, 1);
    prepacked_same("resflow", "model.bn=batch", 1023, 2, 1, 0);
}

/* The zoo and the twin towers (op graphs, graph.c): every model type's gradients in bf16 against
 * fp32's - linear, grouped linear (the experts) and attention GEMMs in bf16, the gates (N = 4
 * experts) and logit layers in fp32 (RF_BF16_MIN_NK). */
static void test_grads_close_zoo(void **state)
{
    (void)state;
    NEED_BF16();
    static const char *const zoo[] = {"single", "shared_bottom", "moe", "mmoe", "ple", "aitm",
                                      "escm2_ipw", "escm2_dr", "dcmt", "stem"};
    /* 0.03: PLE's two levels of experts compound the roundings (worst group 0.023 measured) */
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++) grads_close(zoo[i], NULL, 0.03);
    /* twin: its score is the dot product of two towers, each rounded (0.028 measured) */
    grads_close("twin", "model.item_fields=[item_id,item_cat,brand,shop,price_bucket]", 0.04);
}

/* Test AUCs of a fp32 and a bf16 run of one configuration: within 0.002 per task. */
/* Scoring in bf16 (rf_predict_ex): within 0.002 of fp32's test AUC per task, the probabilities
 * within bf16's rounding of fp32's, but not the same numbers (the bf16 GEMMs did run). */
static void infer_pair(const rf_model *m, const rf_dataset *test, const rf_task_metrics *fp32, const char *what)
{
    size_t n = test->n * (size_t)m->K;
    float *p32 = malloc(n * sizeof *p32), *p16 = malloc(n * sizeof *p16);
    rf_error e;
    rf_predict_opts o32 = {1, RF_PREC_FP32}, o16 = {2, RF_PREC_BF16};
    assert_int_equal(rf_predict_ex(m, test, &o32, p32, NULL, &e), RF_OK);
    assert_int_equal(rf_predict_ex(m, test, &o16, p16, NULL, &e), RF_OK);
    double maxd = 0, sumd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)p16[i] - p32[i]);
        sumd += d;
        if (d > maxd) maxd = d;
    }
    rf_eval_result r;
    assert_int_equal(rf_evaluate_ex(m, test, &o16, &r, &e), RF_OK);
    for (int k = 0; k < m->K; k++) {
        fprintf(stderr, "  %s: task %s test AUC scored in fp32 %.4f, in bf16 %.4f\n", what, m->spec.tasks[k].name,
                fp32[k].auc, r.task[k].auc);
        assert_true(fabs(r.task[k].auc - fp32[k].auc) <= 0.002);
    }
    fprintf(stderr, "  %s: |p_bf16 - p_fp32| max %.2e mean %.2e\n", what, maxd, sumd / (double)n);
    assert_true(maxd > 0);     /* bf16 did run */
    assert_true(maxd < 0.02);  /* and stayed close */
    assert_true(sumd / (double)n < 2e-3);
    free(p32);
    free(p16);
}

static void auc_pair(rf_config *c, const char *what)
{
    rf_splits sp;
    rf_error e;
    rf_status st = rf_data_load(c, &sp, NULL, NULL, &e);
    if (st) fprintf(stderr, "  %s: %s\n", what, e.msg);
    assert_int_equal(st, RF_OK);
    double auc[2][RF_MAX_TASKS];
    float *par[2];
    for (int p = 0; p < 2; p++) {
        c->train.precision = p;
        rf_model *m = NULL;
        assert_int_equal(rf_config_create_model(c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
        rf_train_summary s;
        st = rf_train(m, &c->train, NULL, sp.train, sp.valid, &s, &e);
        if (st) fprintf(stderr, "  %s: %s\n", what, e.msg);
        assert_int_equal(st, RF_OK);
        rf_eval_result r;
        assert_int_equal(rf_evaluate(m, sp.test, c->train.threads, &r, &e), RF_OK);
        for (int k = 0; k < m->K; k++) auc[p][k] = r.task[k].auc;
        if (!p) infer_pair(m, sp.test, r.task, what); /* the fp32 model scored in bf16 */
        par[p] = malloc(m->n_params * sizeof(float));
        memcpy(par[p], m->params, m->n_params * sizeof(float));
        if (p) { /* a bf16 run trains other parameters than fp32 */
            int same = !memcmp(par[0], par[1], m->n_params * sizeof(float));
            assert_false(same);
        }
        rf_model_free(m);
    }
    for (int k = 0; k < c->K; k++) {
        fprintf(stderr, "  %s: task %s test AUC fp32 %.4f bf16 %.4f\n", what, c->tasks[k].name, auc[0][k], auc[1][k]);
        assert_true(fabs(auc[1][k] - auc[0][k]) <= 0.002);
    }
    free(par[0]);
    free(par[1]);
    rf_splits_free(&sp);
}

static void test_train_simulator(void **state)
{
    (void)state;
    NEED_BF16();
    rf_config c;
    sim_cfg(&c, 60000); /* 30000 test rows, ~600 of them ctcvr positives */
    auc_pair(&c, "simulator");
}

/* Three zoo models on the simulator: MMoE (experts as one grouped GEMM, softmax gates), PLE
 * (levels of specific and shared experts), STEM (K + 1 embedding tables). */
static void test_train_zoo(void **state)
{
    (void)state;
    NEED_BF16();
    static const char *const zoo[] = {"mmoe", "ple", "stem"};
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++) {
        rf_config c;
        sim_cfg(&c, 60000);
        rf_error e;
        char set[64];
        snprintf(set, sizeof set, "model.type=%s", zoo[i]);
        assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
        auc_pair(&c, zoo[i]);
    }
}

static void test_train_aliexpress(void **state)
{
    (void)state;
    NEED_BF16();
    rf_config c;
    if (test_shipped_config(&c, "aliexpress")) skip();
    c.train.batch_size = 16; /* the sample has 60 training rows: enough steps to move */
    auc_pair(&c, "aliexpress sample");
}

/* ---- refusals and the key ----------------------------------------------------------------- */

static void test_refusals(void **state)
{
    (void)state;
    rf_config c;
    sim_cfg(&c, 3000);
    rf_error e;
    rf_splits sp;
    assert_int_equal(rf_data_load(&c, &sp, NULL, NULL, &e), RF_OK);
    /* a zoo model: bf16 (where the CPU has it), not int8 (the tower models only) */
    assert_int_equal(rf_config_set(&c, "model.type=mmoe", &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    rf_workspace *ws = rf_workspace_create(m, 64);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_BF16, &e), rf_bf16_supported() ? RF_OK : RF_EUSAGE);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_INT8, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "tower models"));
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_FP32, &e), RF_OK);
    rf_workspace_free(ws);
    rf_model_free(m);
    /* a CPU without AVX512-BF16 (or RESFLOW_BF16=off): refused, and so is the training run */
    assert_int_equal(rf_config_set(&c, "model.type=resflow", &e), RF_OK);
    assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    int had = rf_bf16_supported();
    test_env_saved env = test_bf16_off();
    assert_int_equal(rf_bf16_supported(), 0);
    ws = rf_workspace_create(m, 64);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_BF16, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "AVX512-BF16"));
    rf_workspace_free(ws);
    c.train.precision = RF_PREC_BF16;
    c.train.max_steps = 2;
    rf_train_summary s;
    assert_int_equal(rf_train(m, &c.train, NULL, sp.train, NULL, &s, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "train.precision"));
    test_bf16_restore(&env); /* as the test was started */
    assert_int_equal(rf_bf16_supported(), had);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_config_key(void **state)
{
    (void)state;
    rf_config c, d;
    rf_config_default(&c);
    assert_int_equal(c.train.precision, RF_PREC_FP32);
    char *dump = rf_config_dump(&c);
    assert_null(strstr(dump, "precision")); /* fp32 is not written: model files stay as before */
    free(dump);
    rf_error e;
    assert_int_not_equal(rf_config_set(&c, "train.precision=fp16", &e), RF_OK);
    assert_non_null(strstr(e.msg, "bf16"));
    assert_int_equal(rf_config_set(&c, "train.precision=bf16", &e), RF_OK);
    assert_int_equal(c.train.precision, RF_PREC_BF16);
    dump = rf_config_dump(&c);
    assert_non_null(strstr(dump, "precision: bf16")); /* into model files and checkpoints */
    rf_config_default(&d);
    assert_int_equal(rf_config_load_string(&d, dump, strlen(dump), "dump", &e), RF_OK);
    assert_int_equal(d.train.precision, RF_PREC_BF16);
    free(dump);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_shapes),     cmocka_unit_test(test_gemm_tower_shapes),
        cmocka_unit_test(test_gemm_scratch_too_small), cmocka_unit_test(test_grads_close),
        cmocka_unit_test(test_grads_close_zoo), cmocka_unit_test(test_prepacked_same_bits),
        cmocka_unit_test(test_train_simulator),
        cmocka_unit_test(test_train_zoo), cmocka_unit_test(test_train_aliexpress),
        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_config_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
