/* test_serve.c - the transport-free scoring core (serve.h). A model trained on a CSV written
 * here, with a stored fusion formula, scores the rows of a test file as requests (one per
 * query: the user's columns as the context, the items' columns as the candidates), and gives
 * bit for bit what the batch path gives: rf_predict's probabilities and conditionals on the
 * loaded file (rf_data_load_for_model) and `resflow predict`'s fused score (cmd_predict's
 * columns through rf_fusion_apply); the order is the stable descending order of that score.
 * Also: the last task's probability when the model has no formula, E(v) for a regression
 * model, four threads scoring with one scorer at once (run under ThreadSanitizer by make tsan),
 * no heap growth over many requests, and bad requests (unknown column, a value that is not a
 * number, too many candidates, a column in both the context and a candidate) failing with the
 * right status and a message naming the candidate and the column, the ctx usable after. */
#include "test_util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <omp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "resflow/config.h"
#include "resflow/modelfile.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"
#include "resflow/serve.h"
#include "resflow/serve_http.h"
#include "resflow/train.h"

TEST_TMPDIR("serve")

#define ROWS_PER_Q 8
#define MAXQ 200

/* q, user, age (the user's), item, price, tags, score (the item's), rating, click, order.
 * Every query has one user, so the user's columns are the request's context. */
static void write_file(const char *path, int n, int seed, int test)
{
    static const char *const tags[] = {"a", "b|c", "", "c|c|d", "x|a", "b"};
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "q,user,age,item,price,tags,score,rating,click,order\n");
    unsigned s = (unsigned)seed;
    int user = 0;
    char age[32] = "";
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        unsigned r = s >> 8;
        if (i % ROWS_PER_Q == 0) {
            user = (int)(r % (test ? 60 : 40)); /* test: users 40..59 unseen in training */
            if (user % 7 == 3) snprintf(age, sizeof age, "NA");
            else snprintf(age, sizeof age, "%d", 18 + user % 50);
        }
        char score[32], price[32];
        if (r % 13 == 0) snprintf(score, sizeof score, "NA");
        else snprintf(score, sizeof score, "%.3f", (double)(r % 1000) / 7.0 - 40.0);
        if (r % 17 == 0) price[0] = '\0';
        else snprintf(price, sizeof price, "%.2f", (double)(r % 5000) / 100.0);
        static char item[600];
        /* now and then the previous candidate again: tied scores */
        if (i % ROWS_PER_Q == 0 || r % 5 != 0)
            snprintf(item, sizeof item, "item%d,%s,%s,%s", (int)(r >> 5) % 300, price, tags[(r >> 3) % 6], score);
        fprintf(fp, "q%d,u%d,%s,%s,%d,%d,%d\n", i / ROWS_PER_Q, user, age, item, 1 + (int)((r >> 11) % 5),
                (int)(r >> 7) % 5 == 0, (int)(r >> 9) % 17 == 0);
    }
    fclose(fp);
}

/* The test file as requests: one per query, context {user, age}, candidates {item, price,
 * tags, score}; the rows in file order. */
typedef struct {
    char *buf;
    int nq, nrows;
    int q0[MAXQ + 1];                 /* first row of query q */
    const char *ctx_val[MAXQ][2];
    const char *cand_val[MAXQ * ROWS_PER_Q][4];
    rf_features cand[MAXQ * ROWS_PER_Q];
} reqs;

static const char *const CTX_NAMES[2] = {"user", "age"};
static const char *const CAND_NAMES[4] = {"item", "price", "tags", "score"};

static reqs *read_requests(const char *path)
{
    reqs *R = calloc(1, sizeof *R);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    R->buf = malloc(1 << 20);
    size_t len = fread(R->buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    R->buf[len] = '\0';
    char *p = strchr(R->buf, '\n') + 1, *prevq = NULL;
    while (*p) {
        char *f[10];
        for (int j = 0; j < 10; j++) {
            f[j] = p;
            p += strcspn(p, ",\n");
            *p++ = '\0';
        }
        int r = R->nrows++;
        if (!prevq || strcmp(prevq, f[0])) {
            assert_true(R->nq < MAXQ);
            R->q0[R->nq] = r;
            R->ctx_val[R->nq][0] = f[1];
            R->ctx_val[R->nq][1] = f[2];
            R->nq++;
        }
        prevq = f[0];
        for (int j = 0; j < 4; j++) R->cand_val[r][j] = f[3 + j];
        R->cand[r] = (rf_features){4, CAND_NAMES, R->cand_val[r]};
    }
    R->q0[R->nq] = R->nrows;
    return R;
}

static void free_requests(reqs *R)
{
    free(R->buf);
    free(R);
}

static rf_score_request request(const reqs *R, int q)
{
    return (rf_score_request){{2, CTX_NAMES, R->ctx_val[q]}, R->q0[q + 1] - R->q0[q], R->cand + R->q0[q]};
}

/* The batch path: rf_predict on the loaded file, and `resflow predict`'s fused score. */
typedef struct {
    size_t n;
    int K;
    float *P, *C, *S, *EV;
} batch_scores;

static void batch_path_prec(const char *model, const char *csv, int precision, batch_scores *b);
static void batch_path(const char *model, const char *csv, batch_scores *b)
{
    batch_path_prec(model, csv, RF_PREC_FP32, b);
}

/* As batch_path, the probabilities from rf_predict_ex in this precision. */
static void batch_path_prec(const char *model, const char *csv, int precision, batch_scores *b)
{
    rf_loaded_model lm;
    rf_error e;
    if (rf_model_load(model, &lm, &e)) fail_msg("%s", e.msg);
    rf_dataset *ds = NULL;
    if (rf_data_load_for_model(&lm, csv, 0, 0, &ds, NULL, &e)) fail_msg("%s", e.msg);
    rf_model *m = lm.model;
    int K = rf_model_info_of(m)->K;
    size_t n = ds->n;
    b->n = n;
    b->K = K;
    b->P = malloc(n * K * sizeof *b->P);
    b->C = malloc(n * K * sizeof *b->C);
    b->S = malloc(n * sizeof *b->S);
    b->EV = malloc(n * sizeof *b->EV);
    assert_int_equal(rf_predict_ex(m, ds, &(rf_predict_opts){1, precision}, b->P, b->C, &e), RF_OK);
    if (rf_model_spec_of(m)->regression.target[0]) assert_int_equal(rf_regression_predict(rf_model_spec_of(m), b->P, n, b->EV, &e), RF_OK);
    if (lm.fusion.kind != RF_FUSION_NONE) {
        /* as cmd_predict (tools/cmd_eval.c) */
        rf_score_col cols[2 * RF_MAX_TASKS];
        char names[2 * RF_MAX_TASKS][RF_NAME_MAX];
        int nc = 0;
        for (int k = 0; k < K; k++) cols[nc++] = (rf_score_col){rf_model_spec_of(m)->tasks[k].name, b->P + k, (size_t)K};
        for (int k = 0; k < K; k++) {
            if (rf_model_info_of(m)->parent[k] < 0) continue;
            char nm[2 * RF_NAME_MAX + 2];
            snprintf(nm, sizeof nm, "%s|%s", rf_model_spec_of(m)->tasks[k].name,
                     rf_model_spec_of(m)->tasks[rf_model_info_of(m)->parent[k]].name);
            if (strlen(nm) >= RF_NAME_MAX) continue;
            snprintf(names[nc], RF_NAME_MAX, "%.63s", nm);
            cols[nc] = (rf_score_col){names[nc], b->C + k, (size_t)K};
            nc++;
        }
        assert_int_equal(rf_fusion_apply(&lm.fusion, cols, nc, n, b->S, &e), RF_OK);
    } else {
        for (size_t i = 0; i < n; i++) b->S[i] = b->P[i * K + K - 1];
    }
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
}

static void free_batch(batch_scores *b)
{
    free(b->P);
    free(b->C);
    free(b->S);
    free(b->EV);
}

/* res (request q) is the batch path's rows q0.. bit for bit, and its order is right. */
static void check_result(const rf_score_result *res, const batch_scores *b, const reqs *R, int q, int regression)
{
    int r0 = R->q0[q], n = R->q0[q + 1] - r0, K = b->K;
    assert_int_equal(res->n, n);
    assert_int_equal(res->K, K);
    if (memcmp(res->probs, b->P + (size_t)r0 * K, (size_t)n * K * sizeof(float)))
        fail_msg("query %d: probabilities differ from rf_predict", q);
    if (memcmp(res->cond, b->C + (size_t)r0 * K, (size_t)n * K * sizeof(float)))
        fail_msg("query %d: conditionals differ from rf_predict", q);
    if (memcmp(res->score, b->S + r0, (size_t)n * sizeof(float))) fail_msg("query %d: fused score differs", q);
    if (regression) {
        assert_non_null(res->expected);
        if (memcmp(res->expected, b->EV + r0, (size_t)n * sizeof(float))) fail_msg("query %d: E(v) differs", q);
    } else {
        assert_null(res->expected);
    }
    /* the order: a permutation, by score descending, ties in request order */
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    for (int j = 0; j < n; j++) {
        int a = res->order[j];
        assert_true(a >= 0 && a < n);
        assert_int_equal(seen[a]++, 0);
        if (j) {
            int p = res->order[j - 1];
            float sp = res->score[p], sa = res->score[a];
            if (!(sp > sa || (sp == sa && p < a))) fail_msg("query %d: order wrong at %d", q, j);
        }
    }
    free(seen);
}

/* Every request of R through a new context of s: the batch path's rows, bit for bit; a
 * regression model's E(v) within the ratings' range 1..5. */
static void check_all(const rf_scorer *s, const reqs *R, const batch_scores *b, int regression)
{
    rf_error e;
    rf_score_ctx *c = rf_score_ctx_create(s);
    assert_non_null(c);
    for (int q = 0; q < R->nq; q++) {
        rf_score_request rq = request(R, q);
        rf_score_result res;
        if (rf_score(c, &rq, &res, &e)) fail_msg("query %d: %s", q, e.msg);
        check_result(&res, b, R, q, regression);
        for (int i = 0; regression && i < res.n; i++) assert_true(res.expected[i] >= 1 && res.expected[i] <= 5.0001f);
    }
    rf_score_ctx_free(c);
}

typedef struct {
    rf_config cfg;
    rf_splits sp;
    rf_model *m;
} trained;

static void train_on(trained *t, const char *yaml, int do_train)
{
    rf_error e;
    rf_config_default(&t->cfg);
    if (rf_config_load_string(&t->cfg, yaml, strlen(yaml), "test.yaml", &e)) fail_msg("%s", e.msg);
    if (rf_config_validate(&t->cfg, &e)) fail_msg("%s", e.msg);
    rf_schema_from_tasks(&t->cfg);
    if (rf_data_load(&t->cfg, &t->sp, NULL, NULL, &e)) fail_msg("%s", e.msg);
    if (rf_regression_resolve(&t->cfg, t->sp.train, &e)) fail_msg("%s", e.msg);
    t->m = NULL;
    if (rf_config_create_model(&t->cfg, t->sp.train->F, t->sp.train->fields, t->sp.train->D, &t->m, &e))
        fail_msg("%s", e.msg);
    if (do_train) assert_int_equal(rf_train(t->m, &t->cfg.train, NULL, t->sp.train, t->sp.valid, NULL, &e), RF_OK);
}

static void trained_free(trained *t)
{
    rf_model_free(t->m);
    rf_splits_free(&t->sp);
}

/* A model of the configuration yaml (trained or not) saved as name in the test directory. */
static const char *model_from(const char *yaml, int do_train, const char *name)
{
    trained t;
    rf_error e;
    train_on(&t, yaml, do_train);
    const char *mp = tmp_path(name);
    assert_int_equal(rf_model_save(t.m, &t.cfg, t.sp.enc, t.sp.train->dense_names, t.sp.train->label_names, mp, &e),
                     RF_OK);
    trained_free(&t);
    return mp;
}

static const char *g_train, *g_test;
static char g_model[512], g_plain[512];

#define TWO_TASKS "tasks: [{name: ctr, label: click}, {name: ctcvr, label: \"click*order\", parent: ctr}]\n"

/* The tests' config over g_train/g_test: the shared data block (group: q when grouped, more
 * categorical columns in extra_cat), then rest (tasks or regression, and the model), then the
 * one-epoch training. */
static void serve_yaml(char *y, size_t n, int grouped, const char *extra_cat, const char *rest)
{
    snprintf(y, n,
             "data:\n  source: %s\n  test: %s\n  valid_frac: 0.1\n%s"
             "  categorical: [user, \"item:hash:50\", \"price:bucket:4\", \"tags:|:mean\"%s]\n"
             "  dense: [age, \"score:minmax\"]\n  normalize: standardize\n  fill_na: mean\n"
             "  na_values: [\"\", NA, \"?\"]\n  oov: own\n  min_count: 2\n"
             "%strain: {epochs: 1, batch_size: 128, threads: 1}\n",
             g_train, g_test, grouped ? "  group: q\n" : "", extra_cat, rest);
}

/* Train once: the model without a formula (g_plain) and with one (g_model). */
static void ensure_models(void)
{
    if (g_model[0]) return;
    static char trp[512], tep[512];
    snprintf(trp, sizeof trp, "%s", tmp_path("train.csv"));
    snprintf(tep, sizeof tep, "%s", tmp_path("test.csv"));
    write_file(trp, 3000, 1, 0);
    write_file(tep, 800, 2, 1);
    g_train = trp;
    g_test = tep;
    char yaml[2048];
    serve_yaml(yaml, sizeof yaml, 1, "", TWO_TASKS "model: {type: resflow, emb_dim: 4, hidden: [8]}\n");
    trained t;
    train_on(&t, yaml, 1);
    rf_error e;
    snprintf(g_plain, sizeof g_plain, "%s", tmp_path("plain.model"));
    snprintf(g_model, sizeof g_model, "%s", tmp_path("fused.model"));
    assert_int_equal(rf_model_save(t.m, &t.cfg, t.sp.enc, t.sp.train->dense_names, t.sp.train->label_names, g_plain, &e),
                     RF_OK);
    rf_fusion f;
    assert_int_equal(rf_fusion_parse("mul:ctr=0.9,ctcvr|ctr=1.1", &f, &e), RF_OK);
    assert_int_equal(rf_model_set_fusion(g_plain, g_model, &f, &e), RF_OK);
    trained_free(&t);
}

static void test_scores_as_predict(void **state)
{
    (void)state;
    ensure_models();
    reqs *R = read_requests(g_test);
    assert_int_equal(R->nrows, 800);
    rf_error e;
    for (int fused = 0; fused < 2; fused++) {
        const char *path = fused ? g_model : g_plain;
        batch_scores b;
        batch_path(path, g_test, &b);
        assert_int_equal(b.n, 800);
        rf_scorer *s;
        if (rf_scorer_open(path, NULL, &s, &e)) fail_msg("%s", e.msg);
        /* the accessors */
        const char *const *tn;
        assert_int_equal(rf_scorer_tasks(s, &tn), 2);
        assert_string_equal(tn[0], "ctr");
        assert_string_equal(tn[1], "ctcvr");
        const char *const *cols;
        assert_int_equal(rf_scorer_columns(s, &cols), 6);
        assert_string_equal(cols[0], "user");
        assert_string_equal(cols[5], "score");
        assert_int_equal(rf_scorer_has_fusion(s), fused);
        assert_string_equal(rf_scorer_fusion_spec(s), fused ? "mul:ctr=0.9,ctcvr|ctr=1.1" : "");
        assert_string_equal(rf_scorer_score_name(s), fused ? "mul:ctr=0.9,ctcvr|ctr=1.1" : "ctcvr");
        assert_int_equal(rf_scorer_is_regression(s), 0);
        assert_int_equal(rf_scorer_max_candidates(s), 1000);
        rf_score_ctx *c = rf_score_ctx_create(s);
        assert_non_null(c);
        int ties = 0;
        for (int q = 0; q < R->nq; q++) {
            rf_score_request rq = request(R, q);
            rf_score_result res;
            if (rf_score(c, &rq, &res, &e)) fail_msg("query %d: %s", q, e.msg);
            check_result(&res, &b, R, q, 0);
            assert_int_equal(res.fused, fused);
            assert_string_equal(res.score_name, rf_scorer_score_name(s));
            for (int j = 1; j < res.n; j++) ties += res.score[res.order[j]] == res.score[res.order[j - 1]];
        }
        assert_true(ties > 0); /* the file has repeated candidates: ties keep the request's order */
        /* an empty request */
        rf_score_request empty = {{0, NULL, NULL}, 0, NULL};
        rf_score_result res;
        assert_int_equal(rf_score(c, &empty, &res, &e), RF_OK);
        assert_int_equal(res.n, 0);
        /* the whole file as one request with no context: the user's columns per candidate */
        rf_features *all = malloc(800 * sizeof *all);
        const char *(*vals)[6] = malloc(800 * sizeof *vals);
        static const char *const six[6] = {"item", "price", "tags", "score", "user", "age"};
        for (int q = 0; q < R->nq; q++)
            for (int r = R->q0[q]; r < R->q0[q + 1]; r++) {
                for (int j = 0; j < 4; j++) vals[r][j] = R->cand_val[r][j];
                vals[r][4] = R->ctx_val[q][0];
                vals[r][5] = R->ctx_val[q][1];
                all[r] = (rf_features){6, six, vals[r]};
            }
        rf_score_request big = {{0, NULL, NULL}, 800, all};
        assert_int_equal(rf_score(c, &big, &res, &e), RF_OK);
        reqs whole = {0};
        whole.nq = 1;
        whole.q0[1] = 800;
        check_result(&res, &b, &whole, 0, 0);
#ifndef __SANITIZE_THREAD__ /* (libgomp's own threads are not instrumented) */
        /* two OpenMP threads per request: the same scores */
        rf_scorer *s2;
        rf_scorer_opts o2 = {.threads = 2};
        if (rf_scorer_open(path, &o2, &s2, &e)) fail_msg("%s", e.msg);
        rf_score_ctx *c2 = rf_score_ctx_create(s2);
        assert_non_null(c2);
        omp_set_num_threads(3);
        assert_int_equal(rf_score(c2, &big, &res, &e), RF_OK);
        assert_int_equal(omp_get_max_threads(), 3); /* the caller's setting is back */
        check_result(&res, &b, &whole, 0, 0);
        rf_score_ctx_free(c2);
        rf_scorer_close(s2);
#endif
        free(all);
        free(vals);
        rf_score_ctx_free(c);
        rf_scorer_close(s);
        free_batch(&b);
    }
    free_requests(R);
}

/* rf_scorer_opts.precision bf16 / int8: every request's scores (a few rows each) are `resflow
 * predict --precision bf16|int8`'s (512-row batches) bit for bit (not fp32's), a row's score not
 * depending on its batch; refused at open on a CPU without the instructions (env: the switch
 * that says so, isa: the error's words). */
/* Every request's scores of the model at path, served in prec, are `resflow predict
 * --precision`'s bit for bit, and not fp32's. */
static void scores_as_predict_prec(const char *path, rf_precision prec)
{
    rf_error e;
    rf_scorer *s = NULL;
    rf_scorer_opts o = {.precision = prec};
    reqs *R = read_requests(g_test);
    batch_scores b, f;
    batch_path_prec(path, g_test, prec, &b);
    batch_path(path, g_test, &f);
    assert_true(memcmp(b.P, f.P, b.n * (size_t)b.K * sizeof(float)) != 0); /* it did run */
    if (rf_scorer_open(path, &o, &s, &e)) fail_msg("%s", e.msg);
    check_all(s, R, &b, 0);
    rf_scorer_close(s);
    free_batch(&b);
    free_batch(&f);
    free_requests(R);
}

static void low_precision_scores(rf_precision prec, const char *env_var, const char *isa, int (*supported)(void))
{
    ensure_models();
    rf_error e;
    rf_scorer *s = NULL;
    rf_scorer_opts o = {.precision = prec};
    test_env_saved env = test_env_off(env_var);
    assert_int_equal(rf_scorer_open(g_model, &o, &s, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, isa));
    assert_null(s);
    test_env_restore(&env);
    if (!supported()) {
        fprintf(stderr, "  [skip] no %s on this CPU\n", isa);
        skip();
    }
    scores_as_predict_prec(g_model, prec);
}

static void test_bf16_scores(void **state)
{
    (void)state;
    low_precision_scores(RF_PREC_BF16, "RESFLOW_BF16", "AVX512-BF16", rf_bf16_supported);
}

static void test_int8_scores(void **state)
{
    (void)state;
    low_precision_scores(RF_PREC_INT8, "RESFLOW_INT8", "AVX512-VNNI", rf_int8_supported);
}

/* A zoo model (MMoE, an op graph) served in bf16: every request's scores are `resflow predict
 * --precision bf16`'s bit for bit; int8 is refused at open. */
static void test_bf16_scores_zoo(void **state)
{
    (void)state;
    ensure_models();
    char yaml[2048], path[512];
    serve_yaml(yaml, sizeof yaml, 0, "", TWO_TASKS "model: {type: mmoe, emb_dim: 8, hidden: [32, 16]}\n");
    trained t;
    train_on(&t, yaml, 1);
    rf_error e;
    snprintf(path, sizeof path, "%s", tmp_path("mmoe.model"));
    assert_int_equal(rf_model_save(t.m, &t.cfg, t.sp.enc, t.sp.train->dense_names, t.sp.train->label_names, path, &e),
                     RF_OK);
    trained_free(&t);
    rf_scorer *s = NULL;
    rf_scorer_opts o8 = {.precision = RF_PREC_INT8};
    assert_int_equal(rf_scorer_open(path, &o8, &s, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "tower models"));
    if (!rf_bf16_supported()) {
        fprintf(stderr, "  [skip] no AVX512-BF16 on this CPU\n");
        skip();
    }
    scores_as_predict_prec(path, RF_PREC_BF16);
}

/* ---- many threads, one scorer ------------------------------------------------------------ */

typedef struct {
    const rf_scorer *s;
    const reqs *R;
    const batch_scores *b;
    int rounds, bad;
} thread_arg;

static void *score_all(void *p)
{
    thread_arg *a = p;
    rf_score_ctx *c = rf_score_ctx_create(a->s);
    if (!c) {
        a->bad = -1;
        return NULL;
    }
    rf_error e;
    for (int round = 0; round < a->rounds; round++)
        for (int q = 0; q < a->R->nq; q++) {
            rf_score_request rq = request(a->R, q);
            rf_score_result res;
            if (rf_score(c, &rq, &res, &e)) {
                a->bad++;
                continue;
            }
            int r0 = a->R->q0[q], K = a->b->K;
            a->bad += memcmp(res.probs, a->b->P + (size_t)r0 * K, (size_t)res.n * K * sizeof(float)) != 0;
            a->bad += memcmp(res.score, a->b->S + r0, (size_t)res.n * sizeof(float)) != 0;
        }
    rf_score_ctx_free(c);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    ensure_models();
    reqs *R = read_requests(g_test);
    batch_scores b;
    batch_path(g_model, g_test, &b);
    rf_error e;
    rf_scorer *s;
    rf_scorer_opts o = {.max_candidates = 64, .threads = 1}; /* one OpenMP thread per request (make tsan) */
    if (rf_scorer_open(g_model, &o, &s, &e)) fail_msg("%s", e.msg);
    enum { T = 4 };
    pthread_t th[T];
    thread_arg a[T];
    for (int t = 0; t < T; t++) {
        a[t] = (thread_arg){s, R, &b, 2, 0};
        assert_int_equal(pthread_create(&th[t], NULL, score_all, &a[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(a[t].bad, 0);
    }
    rf_scorer_close(s);
    free_batch(&b);
    free_requests(R);
}

/* ---- no heap growth on the hot path ------------------------------------------------------ */

static void test_no_growth(void **state)
{
    (void)state;
    ensure_models();
    reqs *R = read_requests(g_test);
    rf_error e;
    rf_scorer *s;
    if (rf_scorer_open(g_model, NULL, &s, &e)) fail_msg("%s", e.msg);
    rf_score_ctx *c = rf_score_ctx_create(s);
    assert_non_null(c);
    rf_score_result res;
    for (int q = 0; q < R->nq; q++) { /* warm up (OpenMP, OpenBLAS buffers) */
        rf_score_request rq = request(R, q);
        assert_int_equal(rf_score(c, &rq, &res, &e), RF_OK);
    }
    struct mallinfo2 before = mallinfo2();
    for (int round = 0; round < 5; round++)
        for (int q = 0; q < R->nq; q++) {
            rf_score_request rq = request(R, q);
            assert_int_equal(rf_score(c, &rq, &res, &e), RF_OK);
        }
    struct mallinfo2 after = mallinfo2();
    if (after.uordblks != before.uordblks)
        fail_msg("heap in use grew from %zu to %zu bytes over 500 requests", before.uordblks, after.uordblks);
    rf_score_ctx_free(c);
    rf_scorer_close(s);
    free_requests(R);
}

/* ---- bad requests ------------------------------------------------------------------------ */

static void expect_error(rf_score_ctx *c, const rf_score_request *rq, rf_status want, const char *a, const char *b2,
                         const char *c3)
{
    rf_error e;
    rf_score_result res;
    rf_status st = rf_score(c, rq, &res, &e);
    if (st != want) fail_msg("status %d, wanted %d (%s)", st, want, st ? e.msg : "ok");
    const char *need[3] = {a, b2, c3};
    for (int i = 0; i < 3; i++)
        if (need[i] && !strstr(e.msg, need[i])) fail_msg("'%s' not in: %s", need[i], e.msg);
}

static void test_bad_requests(void **state)
{
    (void)state;
    ensure_models();
    reqs *R = read_requests(g_test);
    batch_scores b;
    batch_path(g_model, g_test, &b);
    rf_error e;
    rf_scorer *s;
    rf_scorer_opts o = {.max_candidates = 8};
    if (rf_scorer_open(g_model, &o, &s, &e)) fail_msg("%s", e.msg);
    rf_score_ctx *c = rf_score_ctx_create(s);
    assert_non_null(c);
    rf_score_request good = request(R, 3);
    rf_score_result res;

    rf_features cand[9];
    const char *cv[9][4];
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) cv[i][j] = R->cand_val[R->q0[3] + i][j];
        cand[i] = (rf_features){4, CAND_NAMES, cv[i]};
    }
    cand[8] = cand[0];
    rf_score_request rq = good;
    rq.candidates = cand;

    /* an unknown column in candidate 2 */
    const char *nm_colour[4] = {"item", "price", "colour", "score"};
    cand[2].names = nm_colour;
    expect_error(c, &rq, RF_EUSAGE, "candidate 2", "colour", NULL);
    cand[2].names = CAND_NAMES;
    /* a value that is not a number in candidate 5 */
    cv[5][3] = "cheap";
    expect_error(c, &rq, RF_EDATA, "candidate 5", "score", "cheap");
    cv[5][3] = R->cand_val[R->q0[3] + 5][3];
    /* too many candidates */
    rq.n_candidates = 9;
    expect_error(c, &rq, RF_EUSAGE, "9 candidates", "at most 8", NULL);
    rq.n_candidates = 8;
    /* a column in both the context and a candidate */
    const char *nm_user[4] = {"item", "price", "user", "score"};
    cand[4].names = nm_user;
    expect_error(c, &rq, RF_EUSAGE, "candidate 4", "'user'", "both");
    cand[4].names = CAND_NAMES;
    /* a column twice in a candidate */
    const char *nm_twice[4] = {"item", "price", "item", "score"};
    cand[1].names = nm_twice;
    expect_error(c, &rq, RF_EUSAGE, "candidate 1", "'item'", "twice");
    cand[1].names = CAND_NAMES;
    /* the context: an unknown column, a bad value */
    const char *ctx_bad_names[2] = {"user", "agee"};
    rq.context.names = ctx_bad_names;
    expect_error(c, &rq, RF_EUSAGE, "context", "agee", NULL);
    rq.context.names = CTX_NAMES;
    const char *ctx_bad_vals[2] = {"u3", "thirty"};
    rq.context.values = ctx_bad_vals;
    expect_error(c, &rq, RF_EDATA, "context column", "age", "thirty");
    rq.context.values = good.context.values;

    /* the ctx is still usable: the same request scores as before */
    assert_int_equal(rf_score(c, &rq, &res, &e), RF_OK);
    check_result(&res, &b, R, 3, 0);
    rf_score_ctx_free(c);
    rf_scorer_close(s);

    /* a formula the model cannot give fails at open */
    rf_fusion f;
    assert_int_equal(rf_fusion_parse("add:ctr=1,cvr=2", &f, &e), RF_OK);
    const char *badf = tmp_path("badf.model");
    assert_int_equal(rf_model_set_fusion(g_plain, badf, &f, &e), RF_OK);
    assert_int_equal(rf_scorer_open(badf, NULL, &s, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "cvr"));
    assert_int_equal(rf_scorer_open(tmp_path("missing.model"), NULL, &s, &e), RF_EIO);
    free_batch(&b);
    free_requests(R);
}

/* ---- a regression model: E(v) ------------------------------------------------------------ */

static void test_regression(void **state)
{
    (void)state;
    ensure_models();
    char yaml[2048];
    serve_yaml(yaml, sizeof yaml, 1, "", "regression: {target: rating, thresholds: [1, 2, 3, 4, 5]}\n"
               "model: {type: resflow, emb_dim: 4, hidden: [8]}\n");
    const char *mp = model_from(yaml, 0, "reg.model");
    rf_error e;
    reqs *R = read_requests(g_test);
    batch_scores b;
    batch_path(mp, g_test, &b);
    rf_scorer *s;
    if (rf_scorer_open(mp, NULL, &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rf_scorer_is_regression(s), 1);
    assert_int_equal(rf_scorer_has_fusion(s), 0);
    check_all(s, R, &b, 1);
    rf_scorer_close(s);
    free_batch(&b);
    free_requests(R);
}

/* ---- the HTTP server under concurrent requests and reloads (make tsan) ------------------------ */

/* One HTTP/1.1 request on a fresh loopback connection (Connection: close); the status, the
 * response body into out (NUL-terminated), or -1. Bounded by 20 s socket timeouts. */
static int http(int port, const char *method, const char *path, const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    size_t bl = body ? strlen(body) : 0, hl;
    char head[256];
    hl = (size_t)snprintf(head, sizeof head,
                          "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n", method,
                          path, bl);
    int ok = send(fd, head, hl, MSG_NOSIGNAL) == (ssize_t)hl && (!bl || send(fd, body, bl, MSG_NOSIGNAL) == (ssize_t)bl);
    size_t n = 0;
    ssize_t r;
    while (ok && n + 1 < cap && (r = recv(fd, out + n, cap - 1 - n, 0)) > 0) n += (size_t)r;
    close(fd);
    out[n] = '\0';
    int status;
    if (!ok || sscanf(out, "HTTP/1.%*d %d", &status) != 1) return -1;
    char *b = strstr(out, "\r\n\r\n");
    if (!b) return -1;
    memmove(out, b + 4, strlen(b + 4) + 1);
    return status;
}

/* Request q of R as a /v1/score body (values as strings, as the file has them). */
static char *score_body(const reqs *R, int q)
{
    size_t cap = 1 << 14, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{\"context\": {\"user\": \"%s\", \"age\": \"%s\"}, \"candidates\": [",
                          R->ctx_val[q][0], R->ctx_val[q][1]);
    for (int r = R->q0[q]; r < R->q0[q + 1]; r++) {
        n += (size_t)snprintf(b + n, cap - n, "%s{", r > R->q0[q] ? ", " : "");
        for (int j = 0; j < 4; j++)
            n += (size_t)snprintf(b + n, cap - n, "%s\"%s\": \"%s\"", j ? ", " : "", CAND_NAMES[j], R->cand_val[r][j]);
        n += (size_t)snprintf(b + n, cap - n, "}");
    }
    snprintf(b + n, cap - n, "]}");
    assert_true(n + 3 < cap);
    return b;
}

typedef struct {
    int port, rounds, nq;
    char **bodies;
    const rf_score_result *want; /* per query: rf_score's answer */
    int ok, bad;
} client_arg;

/* The answer is rf_score's: the same order, the scores to 9 digits. */
static int same_answer(const char *text, const rf_score_result *w)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je), *res = json_object_get(j, "results");
    int good = json_is_array(res) && (int)json_array_size(res) == w->n;
    for (int i = 0; good && i < w->n; i++) {
        json_t *o = json_array_get(res, (size_t)i);
        double sc = json_real_value(json_object_get(o, "score"));
        good = json_integer_value(json_object_get(o, "index")) == w->order[i] &&
               fabs(sc - w->score[w->order[i]]) <= 1e-8 + 1e-7 * fabs(sc);
    }
    json_decref(j);
    return good;
}

static void *client(void *p)
{
    client_arg *a = p;
    char *out = malloc(1 << 16);
    for (int i = 0; i < a->rounds; i++) {
        int q = i % a->nq;
        int st = http(a->port, "POST", "/v1/score", a->bodies[q], out, 1 << 16);
        if (st == 200 && same_answer(out, &a->want[q])) a->ok++;
        else a->bad++;
        /* a bad request on the way: 400 naming the column */
        st = http(a->port, "POST", "/v1/score", "{\"candidates\": [{\"colour\": \"red\"}]}", out, 1 << 16);
        if (st == 400 && strstr(out, "\"field\":\"candidates[0].colour\"")) a->ok++;
        else a->bad++;
        st = http(a->port, "POST", "/v1/topk", "{\"k\": 3}", out, 1 << 16); /* no index: 404 */
        if (st == 404 && strstr(out, "no_index")) a->ok++;
        else a->bad++;
    }
    free(out);
    return NULL;
}

typedef struct {
    rf_server *srv;
    int n, failed;
} reload_arg;

static void *reloader(void *p)
{
    reload_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        rf_error e;
        if (rf_server_reload(a->srv, &e)) a->failed++;
        usleep(20000);
    }
    return NULL;
}

/* rf_server_start on 127.0.0.1 port 0; four clients at once (score, a bad request, topk without
 * an index), the model reloaded under them; every answer right; /metrics counts them; stop. */
static void test_server_concurrent(void **state)
{
    (void)state;
    ensure_models();
    reqs *R = read_requests(g_test);
    enum { NQ = 6, T = 4, ROUNDS = 6 };
    rf_error e;
    rf_scorer *s;
    rf_scorer_opts so = {.max_candidates = 64, .threads = 1};
    if (rf_scorer_open(g_model, &so, &s, &e)) fail_msg("%s", e.msg);
    rf_score_ctx *c[NQ];
    rf_score_result want[NQ];
    char *bodies[NQ];
    for (int q = 0; q < NQ; q++) {
        c[q] = rf_score_ctx_create(s);
        rf_score_request rq = request(R, q);
        assert_int_equal(rf_score(c[q], &rq, &want[q], &e), RF_OK);
        bodies[q] = score_body(R, q);
    }
    rf_server *srv;
    rf_server_opts o = {.port = 0, .threads = 2, .max_candidates = 64};
    if (rf_server_start(g_model, &o, &srv, &e)) fail_msg("%s", e.msg);
    int port = rf_server_port(srv);
    assert_true(port > 0);
    pthread_t th[T], rt;
    client_arg a[T];
    reload_arg ra = {srv, 5, 0};
    for (int t = 0; t < T; t++) {
        a[t] = (client_arg){port, ROUNDS, NQ, bodies, want, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, client, &a[t]), 0);
    }
    assert_int_equal(pthread_create(&rt, NULL, reloader, &ra), 0);
    int ok = 0, bad = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        ok += a[t].ok;
        bad += a[t].bad;
    }
    pthread_join(rt, NULL);
    assert_int_equal(ra.failed, 0);
    assert_int_equal(bad, 0);
    assert_int_equal(ok, T * ROUNDS * 3);
    char *out = malloc(1 << 16);
    assert_int_equal(http(port, "GET", "/metrics", NULL, out, 1 << 16), 200);
    char line[128];
    snprintf(line, sizeof line, "resflow_http_requests_total{endpoint=\"/v1/score\",code=\"200\"} %d\n", T * ROUNDS);
    if (!strstr(out, line)) fail_msg("/metrics lacks '%s'", line);
    assert_non_null(strstr(out, "resflow_model_reloads_total{result=\"ok\"} 5\n"));
    assert_non_null(strstr(out, "generation=\"6\""));
    free(out);
    rf_server_stop(srv);
    for (int q = 0; q < NQ; q++) {
        rf_score_ctx_free(c[q]);
        free(bodies[q]);
    }
    rf_scorer_close(s);
    free_requests(R);
}

/* ---- a column read twice: a categorical field and a dense column ----------------------------- */

/* "score" is a bucketized field and a dense column at once: both get the request's value, as the
 * loader feeds both from the file's one column (bit for bit the batch path). */
static void test_dual_column(void **state)
{
    (void)state;
    ensure_models();
    char yaml[2048];
    serve_yaml(yaml, sizeof yaml, 1, ", \"score:bucket:5\"", TWO_TASKS
               "model: {type: resflow, emb_dim: 4, hidden: [8]}\n");
    const char *mp = model_from(yaml, 1, "dual.model");
    rf_error e;
    reqs *R = read_requests(g_test);
    batch_scores b;
    batch_path(mp, g_test, &b);
    rf_scorer *s;
    if (rf_scorer_open(mp, NULL, &s, &e)) fail_msg("%s", e.msg);
    const char *const *cols;
    int nc = rf_scorer_columns(s, &cols), twice = 0;
    for (int c = 0; c < nc; c++) twice += !strcmp(cols[c], "score");
    assert_int_equal(twice, 2);
    check_all(s, R, &b, 0);
    rf_score_ctx *c = rf_score_ctx_create(s);
    assert_non_null(c);
    /* "score" given twice in one candidate is still an error naming it */
    const char *nm2[2] = {"score", "score"}, *vl2[2] = {"1", "2"};
    rf_features f2 = {2, nm2, vl2};
    rf_score_request rq2 = {{0, NULL, NULL}, 1, &f2};
    rf_score_result res;
    assert_int_equal(rf_score(c, &rq2, &res, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "column 'score' given twice"));
    rf_score_ctx_free(c);
    rf_scorer_close(s);
    free_batch(&b);
    free_requests(R);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_as_predict), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_no_growth),         cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_regression),        cmocka_unit_test(test_dual_column),
        cmocka_unit_test(test_server_concurrent), cmocka_unit_test(test_bf16_scores), cmocka_unit_test(test_int8_scores),
        cmocka_unit_test(test_bf16_scores_zoo),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
