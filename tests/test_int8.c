/* test_int8.c - int8 scoring (src/nn/gemm_int8.c, `--precision int8`, docs/performance.md).
 *
 * The int8 GEMM against a scalar reference of the same quantization (weights per column,
 * activations per row, round to nearest even, the +128 shift taken back) computed in double, for
 * odd shapes (K not a multiple of 4, N not of 16, M not of 6) of every hidden layer: equal to
 * fp32 rounding, so the packing, the quads along K and the integer correction are exact; and
 * within the quantization's bound of the fp32 product. Scoring: within 0.002 of fp32's test AUC
 * per task on a trained simulator model and on the AliExpress-format config (../shared/data,
 * skipped when absent); a row's score does not depend on its batch or the thread count. The fused
 * write-back of the scoring GEMMs (epi.h) against the unfused passes, in int8 and in bf16. The
 * refusals: no AVX512-VNNI, a zoo model, a training pass. On a CPU without AVX512-VNNI only the
 * refusals (and the bf16 half of the fused test, with AVX512-BF16) are tested. */
#include <math.h>
#include <omp.h>

#include "test_util.h"

#include "nn/gemm_int8.h"
#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"

#define NEED_INT8()                                                                                         \
    do {                                                                                                    \
        if (!rf_int8_supported()) {                                                                         \
            fprintf(stderr, "  [skip] no AVX512-VNNI on this CPU\n");                                       \
            skip();                                                                                         \
        }                                                                                                   \
    } while (0)

static void sim_cfg(rf_config *c, size_t rows, const char *hidden, const char *emb)
{
    rf_config_default(c);
    rf_error e;
    char set[64], hs[64], es[64];
    snprintf(set, sizeof set, "synth.rows=%zu", rows);
    snprintf(hs, sizeof hs, "model.hidden=%s", hidden);
    snprintf(es, sizeof es, "model.emb_dim=%s", emb);
    const char *sets[] = {set, hs, es, "synth.ctr=0.1", "synth.cvr=0.2", "train.batch_size=512",
                          "train.epochs=2", "train.log_every=1000000", "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) assert_int_equal(rf_config_set(c, sets[i], &e), RF_OK);
    rf_schema_from_tasks(c);
}

/* C = A W of layer l (task k) with the int8 scheme, in double: returns max |C - ref| / scale
 * where scale bounds each entry (sa sw sum |Aq| |Wq|), and checks the fp32 product is within
 * the quantization bound. */
static void check_layer(rf_i8_ctx *c, const rf_model *m, int l, int k, int M, uint64_t seed)
{
    int kin, N;
    const float *W = rf_tower_w(m, l, k, &kin, &N);
    int ldw = N, lda = kin + 3; /* a strided A */
    float *A = malloc((size_t)M * lda * sizeof *A), *C = malloc((size_t)M * (N + 5) * sizeof *C);
    assert_non_null(A);
    assert_non_null(C);
    for (size_t i = 0; i < (size_t)M * lda; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        A[i] = (float)((double)(seed >> 33) / 2147483648.0 - 0.5) * (i % 7 == 0 ? 3.0f : 1.0f);
    }
    rf_gemm_i8(c, l, k, M, A, lda, C, N + 5);
    int kq; /* columns 0..kq in int8 (A / c_k, c_k W), the rest in fp32 */
    const float *sm = rf_i8_smooth(c, l, k, &kq);
    assert_true(kq <= kin && (l == 0 || kq == kin));
    if (l == 0) assert_int_equal(kq, m->F * m->E);
    double worst = 0, worst_q = 0;
    for (int j = 0; j < N; j++) {
        double mw = 0;
        for (int kk = 0; kk < kq; kk++) mw = fmax(mw, fabs(W[(size_t)kk * ldw + j] * (sm ? sm[kk] : 1.0f)));
        float swf = mw > 0 ? (float)mw / 127.0f : 1.0f;
        for (int i = 0; i < M; i++) {
            const float *a = A + (size_t)i * lda;
            double ma = 0;
            for (int kk = 0; kk < kq; kk++) ma = fmax(ma, fabs(a[kk] * (sm ? 1.0f / sm[kk] : 1.0f)));
            float saf = ma > 0 ? (float)ma / 127.0f : 1.0f;
            double sum = 0, mag = 0, exact = 0, bound = 0, tail = 0;
            for (int kk = 0; kk < kq; kk++) {
                float as = a[kk] * (sm ? 1.0f / sm[kk] : 1.0f), ws = W[(size_t)kk * ldw + j] * (sm ? sm[kk] : 1.0f);
                /* as the kernel rounds: a times (1 / sa) (1 / c_k), one product */
                double aq = nearbyint(a[kk] * ((1.0f / saf) * (sm ? 1.0f / sm[kk] : 1.0f)));
                double wq = nearbyint(ws * (1.0f / swf));
                aq = fmin(fmax(aq, -127), 127), wq = fmin(fmax(wq, -127), 127);
                sum += aq * wq;
                mag += fabs(aq * wq);
                bound += 0.5 * saf * fabs(ws) + 0.5 * swf * fabs(as) + 0.25 * saf * swf;
            }
            for (int kk = 0; kk < kin; kk++) exact += (double)a[kk] * W[(size_t)kk * ldw + j];
            for (int kk = kq; kk < kin; kk++) tail += (double)a[kk] * W[(size_t)kk * ldw + j];
            double ref = sum * saf * swf + tail, got = C[(size_t)i * (N + 5) + j];
            double d = fabs(got - ref) / (mag * saf * swf + 1e-30);
            if (d > worst) worst = d;
            double dq = fabs(got - exact) / (bound + 1e-30);
            if (dq > worst_q) worst_q = dq;
        }
    }
    if (worst > 1e-6 || worst_q > 1.0001)
        fprintf(stderr, "  layer %d task %d (%d x %d x %d): relative to the reference %.2e, to the bound %.3f\n", l, k,
                M, kin, N, worst, worst_q);
    assert_true(worst <= 1e-6);    /* the same quantization, exact sums */
    assert_true(worst_q <= 1.0001); /* within the rounding bound of the fp32 product */
    free(A);
    free(C);
}

static void test_gemm_reference(void **state)
{
    (void)state;
    NEED_INT8();
    static const char *const shapes[][3] = {{"[37,19]", "5", ""}, {"[16,16]", "4", "project"},
                                            {"[70,33,9]", "3", "concat"}, {"[128,64]", "16", ""}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        rf_config c;
        sim_cfg(&c, 2000, shapes[s][0], shapes[s][1]);
        rf_error e;
        if (shapes[s][2][0]) { /* with dense columns: the fp32 tail of layer 0 */
            char dm[64];
            snprintf(dm, sizeof dm, "model.dense_mode=%s", shapes[s][2]);
            assert_int_equal(rf_config_set(&c, dm, &e), RF_OK);
            assert_int_equal(rf_config_set(&c, "data.dense=[log_price,item_hist_ctr,item_reviews]", &e), RF_OK);
        }
        rf_splits sp;
        assert_int_equal(rf_data_load(&c, &sp, NULL, NULL, &e), RF_OK);
        rf_model *m = NULL;
        assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
        if (shapes[s][2][0]) assert_true(m->In > m->F * m->E);
        for (int M = 1; M <= 61; M += 12) {
            rf_i8_ctx *q = rf_i8_ctx_create(m, M > 20 ? 17 : M); /* 17: more rows than the scratch */
            assert_non_null(q);
            for (int l = 0; l < m->L; l++)
                for (int k = 0; k < (l == 0 ? 1 : m->K); k++) check_layer(q, m, l, k, M, 7 + (uint64_t)M * 31 + l);
            rf_i8_ctx_free(q);
        }
        rf_model_free(m);
        rf_splits_free(&sp);
    }
}

/* A row with a NaN (or Inf) scores NaN in every column, as it could not be finite in fp32; the
 * other rows of its batch are as scored alone. */
static void test_nonfinite_row(void **state)
{
    (void)state;
    NEED_INT8();
    rf_config c;
    sim_cfg(&c, 2000, "[40,20]", "4");
    rf_error e;
    rf_splits sp;
    assert_int_equal(rf_data_load(&c, &sp, NULL, NULL, &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    rf_i8_ctx *q = rf_i8_ctx_create(m, 8);
    int kin = m->H[0], N = m->H[1];
    float A[3 * 40], C[3 * 20], one[20];
    for (int i = 0; i < 3 * kin; i++) A[i] = (float)((i * 37) % 11) * 0.1f - 0.5f;
    for (int bad = 0; bad < 2; bad++) {
        A[kin + 5] = bad ? INFINITY : NAN;
        rf_gemm_i8(q, 1, 0, 3, A, kin, C, N);
        for (int j = 0; j < N; j++) assert_true(isnan(C[N + j]));
        for (int r = 0; r < 3; r += 2) {
            rf_gemm_i8(q, 1, 0, 1, A + r * kin, kin, one, N);
            assert_memory_equal(one, C + r * N, N * sizeof(float));
            for (int j = 0; j < N; j++) assert_true(isfinite(one[j]));
        }
    }
    rf_i8_ctx_free(q);
    rf_model_free(m);
    rf_splits_free(&sp);
}

/* The fused write-back (bias, activation, links in the scoring GEMM) gives the bits of the
 * unfused passes (a workspace that keeps block outputs is not fused), for PReLU and ReLU, links in
 * every layer or none, 2 and 3 tasks, towers of layer 0 in whole 16-column vectors or not (then
 * layer 0 is not fused, the others are), dense columns (int8: layer 0 not fused). In int8, and in
 * bf16, where the fused passes also use the weights packed once (rf_ws_score_only) and the
 * comparison workspace packs them per GEMM as training does. */
static void fused_equals_unfused(rf_precision prec)
{
    static const char *const cases[][4] = {
        {"resflow", "[64,32]", "prelu", "2"}, {"resflow", "[40,24]", "relu", "3"}, {"nse", "[32,16]", "prelu", "2"},
        {"esmm", "[48,16]", "relu", "3"},     {"resflow", "[32,16]", "dense", "2"}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        rf_config c;
        sim_cfg(&c, 3000, cases[t][1], "8");
        rf_error e;
        char set[64];
        snprintf(set, sizeof set, "model.type=%s", cases[t][0]);
        assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
        snprintf(set, sizeof set, "synth.tasks=%s", cases[t][3]);
        assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
        assert_int_equal(rf_config_set(&c, "synth.cvr=0.05", &e), RF_OK); /* below synth.cart_rate */
        if (cases[t][3][0] == '3')
            assert_int_equal(rf_config_set(&c, "tasks=[{name: ctr, label: click}, {name: cart, parent: ctr}, "
                                               "{name: ctcvr, label: order, parent: cart}]", &e), RF_OK);
        if (!strcmp(cases[t][2], "dense")) assert_int_equal(rf_config_set(&c, "data.dense=[log_price]", &e), RF_OK);
        else {
            snprintf(set, sizeof set, "model.act=%s", cases[t][2]);
            assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
        }
        rf_schema_from_tasks(&c);
        rf_splits sp;
        if (rf_data_load(&c, &sp, NULL, NULL, &e)) fail_msg("%s", e.msg);
        rf_model *m = NULL;
        if (rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e)) fail_msg("%s", e.msg);
        assert_int_equal(m->K, atoi(cases[t][3]));
        const rf_dataset *ds = sp.test;
        size_t n = ds->n;
        float *P = malloc(n * m->K * sizeof *P);
        rf_predict_opts o = {1, prec};
        assert_int_equal(rf_predict_ex(m, ds, &o, P, NULL, &e), RF_OK);
        rf_workspace *ws = rf_workspace_create(m, 512);
        assert_int_equal(rf_ws_set_precision(ws, m, prec, &e), RF_OK);
        assert_int_equal(rf_ws_keep_blocks(ws, m, &e), RF_OK); /* not fused */
        size_t *rows = malloc(512 * sizeof *rows);
        for (size_t o0 = 0; o0 < n; o0 += 512) {
            int nb = (int)(n - o0 < 512 ? n - o0 : 512);
            for (int i = 0; i < nb; i++) rows[i] = o0 + (size_t)i;
            rf_batch b = {ds, rows, nb, NULL};
            assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
            if (memcmp(rf_ws_probs(ws), P + o0 * m->K, (size_t)nb * m->K * sizeof(float)))
                fail_msg("%s: %s %s %s %s tasks: the fused scores differ from the unfused ones",
                         prec == RF_PREC_INT8 ? "int8" : "bf16", cases[t][0], cases[t][1], cases[t][2], cases[t][3]);
        }
        free(rows);
        rf_workspace_free(ws);
        free(P);
        rf_model_free(m);
        rf_splits_free(&sp);
    }
}

static void test_fused_equals_unfused(void **state)
{
    (void)state;
    int any = 0;
    if (rf_int8_supported()) fused_equals_unfused(RF_PREC_INT8), any = 1;
    if (rf_bf16_supported()) fused_equals_unfused(RF_PREC_BF16), any = 1;
    if (!any) {
        fprintf(stderr, "  [skip] neither AVX512-VNNI nor AVX512-BF16 on this CPU\n");
        skip();
    }
}

/* A trained model scored in int8: within 0.002 of fp32's test AUC per task; the probabilities
 * close (not equal: int8 did run); the same bytes with 1 and 2 threads and for a row scored
 * alone. */
static void score_pair(rf_config *c, const char *what)
{
    rf_splits sp;
    rf_error e;
    rf_status st = rf_data_load(c, &sp, NULL, NULL, &e);
    if (st) fprintf(stderr, "  %s: %s\n", what, e.msg);
    assert_int_equal(st, RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    rf_train_summary s;
    st = rf_train(m, &c->train, NULL, sp.train, sp.valid, &s, &e);
    if (st) fprintf(stderr, "  %s: %s\n", what, e.msg);
    assert_int_equal(st, RF_OK);
    const rf_dataset *test = sp.test;
    size_t n = test->n * (size_t)m->K;
    float *p32 = malloc(n * sizeof *p32), *p8 = malloc(n * sizeof *p8), *p8b = malloc(n * sizeof *p8b);
    rf_predict_opts o32 = {1, RF_PREC_FP32}, o8 = {2, RF_PREC_INT8}, o8b = {1, RF_PREC_INT8};
    assert_int_equal(rf_predict_ex(m, test, &o32, p32, NULL, &e), RF_OK);
    assert_int_equal(rf_predict_ex(m, test, &o8, p8, NULL, &e), RF_OK);
    assert_int_equal(rf_predict_ex(m, test, &o8b, p8b, NULL, &e), RF_OK);
    assert_memory_equal(p8, p8b, n * sizeof *p8); /* thread count */
    double maxd = 0, sumd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)p8[i] - p32[i]);
        sumd += d;
        if (d > maxd) maxd = d;
    }
    rf_eval_result r32, r8;
    assert_int_equal(rf_evaluate_ex(m, test, &o32, &r32, &e), RF_OK);
    assert_int_equal(rf_evaluate_ex(m, test, &o8, &r8, &e), RF_OK);
    for (int k = 0; k < m->K; k++) {
        fprintf(stderr, "  %s: task %s test AUC scored in fp32 %.4f, in int8 %.4f\n", what, m->spec.tasks[k].name,
                r32.task[k].auc, r8.task[k].auc);
        assert_true(fabs(r8.task[k].auc - r32.task[k].auc) <= 0.002);
    }
    fprintf(stderr, "  %s: |p_int8 - p_fp32| max %.2e mean %.2e\n", what, maxd, sumd / (double)n);
    assert_true(maxd > 0);     /* int8 did run */
    assert_true(maxd < 0.02);  /* and stayed close */
    assert_true(sumd / (double)n < 2e-3);
    /* a row alone (a batch of 1, as a serving request) scores as in its batch of 512 */
    rf_workspace *ws = rf_workspace_create(m, 1);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_INT8, &e), RF_OK);
    for (size_t r = 0; r < test->n; r += test->n / 7 + 1) {
        rf_batch b = {test, &r, 1, NULL};
        assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
        assert_memory_equal(rf_ws_probs(ws), p8 + r * m->K, m->K * sizeof(float));
    }
    /* the int8 workspace does not train */
    size_t r0 = 0;
    rf_batch b = {test, &r0, 1, NULL};
    assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "int8"));
    rf_workspace_free(ws);
    free(p32);
    free(p8);
    free(p8b);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_score_simulator(void **state)
{
    (void)state;
    NEED_INT8();
    rf_config c;
    sim_cfg(&c, 60000, "[64,32]", "16"); /* 30000 test rows */
    score_pair(&c, "simulator");
}

static void test_score_aliexpress(void **state)
{
    (void)state;
    NEED_INT8();
    rf_config c;
    if (test_shipped_config(&c, "aliexpress")) skip();
    c.train.batch_size = 16;
    score_pair(&c, "aliexpress sample");
}

static void test_refusals(void **state)
{
    (void)state;
    rf_config c;
    sim_cfg(&c, 3000, "[16]", "4");
    rf_error e;
    rf_splits sp;
    assert_int_equal(rf_data_load(&c, &sp, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_config_set(&c, "model.type=mmoe", &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    rf_workspace *ws = rf_workspace_create(m, 64);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_INT8, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "tower models"));
    rf_workspace_free(ws);
    rf_model_free(m);
    assert_int_equal(rf_config_set(&c, "model.type=resflow", &e), RF_OK);
    assert_int_equal(rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    int had = rf_int8_supported();
    test_env_saved env = test_env_off("RESFLOW_INT8");
    assert_int_equal(rf_int8_supported(), 0);
    ws = rf_workspace_create(m, 64);
    assert_int_equal(rf_ws_set_precision(ws, m, RF_PREC_INT8, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "AVX512-VNNI"));
    rf_predict_opts o = {1, RF_PREC_INT8};
    assert_int_equal(rf_predict_ex(m, sp.test, &o, NULL, NULL, &e), RF_EUSAGE); /* no silent fp32 */
    rf_workspace_free(ws);
    test_env_restore(&env);
    assert_int_equal(rf_int8_supported(), had);
    /* not a training precision: the key refuses it */
    assert_int_not_equal(rf_config_set(&c, "train.precision=int8", &e), RF_OK);
    rf_model_free(m);
    rf_splits_free(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_reference),  cmocka_unit_test(test_nonfinite_row),
        cmocka_unit_test(test_fused_equals_unfused), cmocka_unit_test(test_score_simulator),
        cmocka_unit_test(test_score_aliexpress), cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
