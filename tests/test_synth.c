/* test_synth.c - the e-commerce search-log simulator (src/data/synth.c). */
#include "test_util.h"

#include "resflow/data.h"

/* ---- helpers ------------------------------------------------------------------------- */
static rf_dataset *gen(const rf_synth_opts *o)
{
    rf_dataset *ds = NULL;
    rf_error err;
    rf_error_clear(&err);
    rf_status st = rf_synth_generate(o, &ds, &err);
    if (st != RF_OK) fprintf(stderr, "  synth failed: %s\n", err.msg);
    assert_int_equal(st, RF_OK);
    assert_non_null(ds);
    return ds;
}

typedef struct {
    float s, y;
} score_label;

static int cmp_score(const void *a, const void *b)
{
    float x = ((const score_label *)a)->s, y = ((const score_label *)b)->s;
    return (x > y) - (x < y);
}

/* Tie-aware ROC AUC (Mann-Whitney with mid-ranks) of score[i*ss] against label[i*ls]. */
static double auc(const float *score, size_t ss, const float *label, size_t ls, size_t n)
{
    score_label *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) {
        a[i].s = score[i * ss];
        a[i].y = label[i * ls];
    }
    qsort(a, n, sizeof *a, cmp_score);
    double rank_sum = 0, npos = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && a[j].s == a[i].s) j++;
        double r = (double)(i + j + 1) / 2.0; /* mid-rank, 1-based */
        for (size_t k = i; k < j; k++)
            if (a[k].y > 0.5f) {
                rank_sum += r;
                npos++;
            }
        i = j;
    }
    free(a);
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

static double col_mean(const float *x, size_t n, int stride, int k)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i * (size_t)stride + (size_t)k];
    return s / (double)n;
}

/* A smaller world for the tests that do not check calibrated rates. */
static rf_synth_opts small_opts(void)
{
    rf_synth_opts o = rf_synth_default();
    o.rows = 20000;
    o.n_users = 2000;
    o.n_items = 5000;
    o.n_queries = 1000;
    return o;
}

/* ---- tests ----------------------------------------------------------------------------- */
static void test_defaults(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    assert_int_equal(o.rows, 1000000);
    assert_int_equal(o.seed, 1);
    assert_int_equal(o.tasks, 2);
    assert_int_equal(o.n_users, 50000);
    assert_int_equal(o.n_items, 100000);
    assert_int_equal(o.n_queries, 20000);
    assert_float_equal(o.ctr, 0.05f, 1e-7);
    assert_float_equal(o.cvr, 0.03f, 1e-7);
    assert_float_equal(o.cart_rate, 0.15f, 1e-7);
    assert_int_equal(o.list_len, 20);
}

static void expect_usage(const rf_synth_opts *o, const char *what)
{
    rf_dataset *ds = (rf_dataset *)(uintptr_t)1; /* must be reset to NULL */
    rf_error err;
    rf_error_clear(&err);
    rf_status st = rf_synth_generate(o, &ds, &err);
    if (st != RF_EUSAGE) fprintf(stderr, "  expected RF_EUSAGE for %s, got %d\n", what, (int)st);
    assert_int_equal(st, RF_EUSAGE);
    assert_int_equal(err.code, RF_EUSAGE);
    assert_true(strlen(err.msg) > 0);
    assert_null(ds);
}

static void test_invalid_options(void **state)
{
    (void)state;
    rf_synth_opts o;
#define BAD(stmt)                 \
    do {                          \
        o = small_opts();         \
        stmt;                     \
        expect_usage(&o, #stmt);  \
    } while (0)
    BAD(o.rows = 0);
    BAD(o.tasks = 1);
    BAD(o.tasks = 4);
    BAD(o.tasks = 0);
    BAD(o.n_users = 0);
    BAD(o.n_items = 0);
    BAD(o.n_queries = 0);
    BAD(o.list_len = 0);
    BAD(o.list_len = -3);
    BAD(o.ctr = 0);
    BAD(o.ctr = 1);
    BAD(o.ctr = -0.1f);
    BAD(o.ctr = NAN);
    BAD(o.cvr = 0);
    BAD(o.cvr = 1.5f);
    BAD(o.tasks = 3; o.cart_rate = 0);
    BAD(o.tasks = 3; o.cart_rate = 1);
    BAD(o.tasks = 3; o.cart_rate = 0.02f; o.cvr = 0.03f); /* order implies cart */
#undef BAD
    /* NULL arguments */
    o = small_opts();
    rf_error err;
    rf_error_clear(&err);
    assert_int_equal(rf_synth_generate(&o, NULL, &err), RF_EUSAGE);
    rf_dataset *ds = NULL;
    assert_int_equal(rf_synth_generate(NULL, &ds, &err), RF_EUSAGE);
    assert_null(ds);
    /* err may be NULL */
    o.rows = 0;
    assert_int_equal(rf_synth_generate(&o, &ds, NULL), RF_EUSAGE);
    /* cart_rate is not checked with 2 tasks */
    o = small_opts();
    o.rows = 100;
    o.cart_rate = 0;
    ds = gen(&o);
    rf_dataset_free(ds);
}

static int same_dataset(const rf_dataset *a, const rf_dataset *b)
{
    if (a->n != b->n || a->F != b->F || a->D != b->D || a->K != b->K) return 0;
    size_t n = a->n;
    return memcmp(a->cat, b->cat, n * (size_t)a->F * sizeof *a->cat) == 0 &&
           (a->D == 0 || memcmp(a->dense, b->dense, n * (size_t)a->D * sizeof *a->dense) == 0) &&
           memcmp(a->labels, b->labels, n * (size_t)a->K * sizeof *a->labels) == 0 &&
           memcmp(a->truth, b->truth, n * (size_t)a->K * sizeof *a->truth) == 0 &&
           memcmp(a->group, b->group, n * sizeof *a->group) == 0;
}

static void test_determinism(void **state)
{
    (void)state;
    for (int tasks = 2; tasks <= 3; tasks++) {
        rf_synth_opts o = small_opts();
        o.tasks = tasks;
        o.seed = 42;
        rf_dataset *a = gen(&o), *b = gen(&o);
        assert_true(same_dataset(a, b));
        o.seed = 43;
        rf_dataset *c = gen(&o);
        assert_false(same_dataset(a, c));
        /* the features (not only the labels) change with the seed */
        assert_true(memcmp(a->cat, c->cat, a->n * (size_t)a->F * sizeof *a->cat) != 0);
        rf_dataset_free(a);
        rf_dataset_free(b);
        rf_dataset_free(c);
    }
}

static void test_schema_and_ids(void **state)
{
    (void)state;
    rf_synth_opts o = small_opts();
    o.rows = 20010; /* not a multiple of list_len: the last list is partial */
    o.list_len = 20;
    rf_dataset *ds = gen(&o);
    assert_int_equal(ds->n, o.rows);
    assert_true(ds->F >= 12 && ds->F <= 16);
    assert_true(ds->D >= 0 && ds->D <= 4);
    assert_int_equal(ds->K, 2);
    assert_string_equal(ds->label_names[0], "click");
    assert_string_equal(ds->label_names[1], "order");
    assert_int_equal(rf_dataset_label_index(ds, "order"), 1);
    assert_non_null(ds->group);
    assert_non_null(ds->truth);
    assert_null(ds->weight);
    const int F = ds->F;
    for (int f = 0; f < F; f++) {
        assert_true(strlen(ds->fields[f].name) > 0);
        assert_int_equal(ds->fields[f].multi, 0);
        assert_true(ds->fields[f].vocab >= 2);
        assert_null(ds->mv_off[f]);
        for (int g = 0; g < f; g++) assert_string_not_equal(ds->fields[f].name, ds->fields[g].name);
    }
    for (int d = 0; d < ds->D; d++) assert_true(strlen(ds->dense_names[d]) > 0);
    int fu = -1, fi = -1, fq = -1, fp = -1;
    for (int f = 0; f < F; f++) {
        if (!strcmp(ds->fields[f].name, "user_id")) fu = f;
        if (!strcmp(ds->fields[f].name, "item_id")) fi = f;
        if (!strcmp(ds->fields[f].name, "query_id")) fq = f;
        if (!strcmp(ds->fields[f].name, "position")) fp = f;
    }
    assert_true(fu >= 0 && fi >= 0 && fq >= 0 && fp >= 0);
    assert_int_equal(ds->fields[fu].vocab, o.n_users + 1);
    assert_int_equal(ds->fields[fi].vocab, o.n_items + 1);
    assert_int_equal(ds->fields[fq].vocab, o.n_queries + 1);
    assert_int_equal(ds->fields[fp].vocab, (uint32_t)o.list_len + 1);
    /* every id in [1, vocab): 0 (OOV) is never produced */
    for (size_t i = 0; i < ds->n; i++)
        for (int f = 0; f < F; f++) {
            uint32_t v = ds->cat[i * (size_t)F + (size_t)f];
            if (!(v >= 1 && v < ds->fields[f].vocab)) {
                fprintf(stderr, "  row %zu field %s id %u vocab %u\n", i, ds->fields[f].name, v,
                        ds->fields[f].vocab);
                fail();
            }
        }
    for (size_t i = 0; i < ds->n * (size_t)ds->D; i++) assert_true(isfinite(ds->dense[i]));
    /* lists: consecutive rows, list_len rows each (last one partial), shared request */
    size_t L = (size_t)o.list_len;
    for (size_t i = 0; i < ds->n; i++) {
        assert_int_equal(ds->group[i], i / L);
        assert_int_equal(ds->cat[i * F + fp], i % L + 1);
        size_t first = i - i % L;
        assert_int_equal(ds->cat[i * F + fu], ds->cat[first * F + fu]);
        assert_int_equal(ds->cat[i * F + fq], ds->cat[first * F + fq]);
    }
    /* no item twice in one list (the world has plenty of items) */
    size_t dups = 0;
    for (size_t i = 0; i < ds->n; i++)
        for (size_t j = i - i % L; j < i; j++) dups += ds->cat[i * F + fi] == ds->cat[j * F + fi];
    assert_int_equal(dups, 0);
    rf_dataset_free(ds);
}

/* labels in {0,1}, implications, truth a valid chain of probabilities; the last column is the
 * order count: a positive integer exactly on ordered rows, its expectation >= P(order) */
static void check_chain(const rf_dataset *ds)
{
    const int K = ds->K, counts = !strcmp(ds->label_names[K - 1], "order_count"), T = K - counts;
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * (size_t)K, *t = ds->truth + i * (size_t)K;
        if (counts) {
            assert_true(y[T] == floorf(y[T]) && y[T] >= 0.0f);
            assert_true((y[T] > 0.0f) == (y[T - 1] > 0.5f));
            assert_true(t[T] >= t[T - 1] && t[T] <= 4.0f * t[T - 1]);
        }
        for (int k = 0; k < T; k++) {
            assert_true(y[k] == 0.0f || y[k] == 1.0f);
            assert_true(t[k] > 0.0f && t[k] < 1.0f);
            if (k > 0) {
                assert_true(y[k] <= y[k - 1]); /* order => cart => click */
                assert_true(t[k] <= t[k - 1]);
            }
        }
    }
}

/* |label mean - truth mean| within 5 binomial standard deviations (+ a little slack for the
 * within-list correlation) */
static void check_truth_vs_labels(const rf_dataset *ds, int k)
{
    double ml = col_mean(ds->labels, ds->n, ds->K, k), mt = col_mean(ds->truth, ds->n, ds->K, k);
    double sd = sqrt(mt * (1 - mt) / (double)ds->n);
    if (!(fabs(ml - mt) <= 5 * sd + 1e-5))
        fprintf(stderr, "  %s: label mean %g truth mean %g (sd %g)\n", ds->label_names[k], ml,
                mt, sd);
    assert_true(fabs(ml - mt) <= 5 * sd + 1e-5);
}

/* P(label k | label 0) over the clicked rows */
static double rate_given_click(const rf_dataset *ds, int k)
{
    double c = 0, p = 0;
    for (size_t i = 0; i < ds->n; i++) {
        c += ds->labels[i * ds->K];
        p += ds->labels[i * ds->K + k];
    }
    return c > 0 ? p / c : 0;
}

static void test_rates_two_tasks(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.rows = 200000;
    rf_dataset *ds = gen(&o);
    check_chain(ds);
    double ctr = col_mean(ds->labels, ds->n, ds->K, 0), ctcvr = col_mean(ds->labels, ds->n, ds->K, 1);
    double tctr = col_mean(ds->truth, ds->n, ds->K, 0), tctcvr = col_mean(ds->truth, ds->n, ds->K, 1);
    double cvr = rate_given_click(ds, 1);
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  ctr %.5f (truth %.5f) ctcvr %.5f (truth %.5f) cvr %.4f\n", ctr, tctr,
                ctcvr, tctcvr, cvr);
    /* calibration of the true probabilities (the calibration sample covers these rows) */
    assert_true(fabs(tctr - 0.05) < 0.0005);
    assert_true(fabs(tctcvr / tctr - 0.03) < 0.0006);
    /* the drawn labels */
    assert_true(fabs(ctr - 0.05) < 0.003);
    assert_true(fabs(cvr - 0.03) < 0.0075);
    assert_true(fabs(ctcvr - 0.0015) < 0.0004);
    check_truth_vs_labels(ds, 0);
    check_truth_vs_labels(ds, 1);
    rf_dataset_free(ds);

    /* other targets are met as well */
    o.rows = 100000;
    o.ctr = 0.2f;
    o.cvr = 0.1f;
    o.seed = 5;
    ds = gen(&o);
    assert_true(fabs(col_mean(ds->truth, ds->n, ds->K, 0) - 0.2) < 0.002);
    assert_true(fabs(col_mean(ds->labels, ds->n, ds->K, 0) - 0.2) < 0.01);
    assert_true(fabs(rate_given_click(ds, 1) - 0.1) < 0.01);
    rf_dataset_free(ds);
}

static void test_rates_three_tasks(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.rows = 200000;
    o.tasks = 3;
    rf_dataset *ds = gen(&o);
    assert_int_equal(ds->K, 3);
    assert_string_equal(ds->label_names[0], "click");
    assert_string_equal(ds->label_names[1], "cart");
    assert_string_equal(ds->label_names[2], "order");
    check_chain(ds);
    double ctr = col_mean(ds->labels, ds->n, ds->K, 0);
    double cart = rate_given_click(ds, 1), cvr = rate_given_click(ds, 2);
    double t0 = col_mean(ds->truth, ds->n, ds->K, 0), t1 = col_mean(ds->truth, ds->n, ds->K, 1),
           t2 = col_mean(ds->truth, ds->n, ds->K, 2);
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  ctr %.5f cart|click %.4f order|click %.4f (truth %.5f %.4f %.4f)\n",
                ctr, cart, cvr, t0, t1 / t0, t2 / t0);
    assert_true(fabs(t0 - 0.05) < 0.0005);
    assert_true(fabs(t1 / t0 - 0.15) < 0.002);
    assert_true(fabs(t2 / t0 - 0.03) < 0.0006);
    assert_true(fabs(ctr - 0.05) < 0.003);
    assert_true(fabs(cart - 0.15) < 0.015);
    assert_true(fabs(cvr - 0.03) < 0.0075);
    for (int k = 0; k < 3; k++) check_truth_vs_labels(ds, k);
    rf_dataset_free(ds);
}

static void test_position_bias(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.rows = 200000;
    rf_dataset *ds = gen(&o);
    int fp = -1;
    for (int f = 0; f < ds->F; f++)
        if (!strcmp(ds->fields[f].name, "position")) fp = f;
    assert_true(fp >= 0);
    double n1 = 0, c1 = 0, t1 = 0, nl = 0, cl = 0, tl = 0;
    for (size_t i = 0; i < ds->n; i++) {
        uint32_t p = ds->cat[i * ds->F + fp];
        if (p == 1) {
            n1++;
            c1 += ds->labels[i * ds->K];
            t1 += ds->truth[i * ds->K];
        } else if (p == (uint32_t)o.list_len) {
            nl++;
            cl += ds->labels[i * ds->K];
            tl += ds->truth[i * ds->K];
        }
    }
    assert_true(n1 > 0 && nl > 0);
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  ctr at position 1: %.4f, at position %d: %.4f\n", c1 / n1, o.list_len,
                cl / nl);
    assert_true(c1 / n1 > 2 * (cl / nl));
    assert_true(t1 / n1 > 2 * (tl / nl));
    rf_dataset_free(ds);
}

static void test_oracle_auc(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.rows = 200000;
    rf_dataset *ds = gen(&o);
    const size_t K = (size_t)ds->K;
    double a_ctr = auc(ds->truth, K, ds->labels, K, ds->n);
    double a_ctcvr = auc(ds->truth + 1, K, ds->labels + 1, K, ds->n);
    /* CVR on the clicked rows: P(order | click) = truth1 / truth0 */
    size_t nc = 0;
    float *s = malloc(ds->n * sizeof *s), *y = malloc(ds->n * sizeof *y);
    assert_non_null(s);
    assert_non_null(y);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i * ds->K] > 0.5f) {
            s[nc] = ds->truth[i * ds->K + 1] / ds->truth[i * ds->K];
            y[nc] = ds->labels[i * ds->K + 1];
            nc++;
        }
    double a_cvr = auc(s, 1, y, 1, nc);
    /* a signal-free score gives 0.5 */
    double a_pos = auc(ds->truth, K, ds->labels + 1, K, ds->n); /* click prob vs order */
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr,
                "  oracle AUC ctr %.4f ctcvr %.4f cvr(clicked) %.4f; p_click vs order %.4f\n",
                a_ctr, a_ctcvr, a_cvr, a_pos);
    assert_true(a_ctr > 0.72 && a_ctr < 0.90);
    assert_true(a_ctcvr > 0.82 && a_ctcvr < 0.97);
    assert_true(a_cvr > 0.62);
    /* the order task shares the click relevance (p_click alone ranks orders well) but has a
     * part of its own (the true ctcvr ranks them better still) */
    assert_true(a_pos > 0.7);
    assert_true(a_ctcvr > a_pos + 0.01);
    free(s);
    free(y);
    rf_dataset_free(ds);
}

static void test_tiny_worlds(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.n_users = 1;
    o.n_items = 1;
    o.n_queries = 1;
    o.list_len = 1;
    o.rows = 7;
    rf_dataset *ds = gen(&o);
    assert_int_equal(ds->n, 7);
    for (size_t i = 0; i < ds->n; i++) {
        assert_int_equal(ds->group[i], i);
        for (int f = 0; f < ds->F; f++) {
            uint32_t v = ds->cat[i * ds->F + f];
            assert_true(v >= 1 && v < ds->fields[f].vocab);
        }
    }
    check_chain(ds);
    rf_dataset_free(ds);

    /* fewer items than list slots: duplicates are unavoidable but ids stay valid */
    o.n_items = 3;
    o.n_users = 2;
    o.n_queries = 2;
    o.list_len = 5;
    o.rows = 1;
    o.tasks = 3;
    ds = gen(&o);
    assert_int_equal(ds->n, 1);
    assert_int_equal(ds->group[0], 0);
    check_chain(ds);
    rf_dataset_free(ds);

    o.rows = 333;
    o.list_len = 50;
    ds = gen(&o);
    for (size_t i = 0; i < ds->n; i++) {
        assert_int_equal(ds->group[i], i / 50);
        for (int f = 0; f < ds->F; f++) {
            uint32_t v = ds->cat[i * ds->F + f];
            assert_true(v >= 1 && v < ds->fields[f].vocab);
        }
    }
    check_chain(ds);
    rf_dataset_free(ds);
}

/* Order counts: positive exactly on ordered rows, mean units per order near the expectation
 * carried by truth, and the count stream does not disturb the other labels (the same world
 * and labels as before order counts existed: the click/order columns only depend on their
 * own streams, so two seeds' counts differ while the chains of one seed are identical). */
static void test_order_counts(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.rows = 200000;
    rf_dataset *plain = gen(&o);
    o.order_counts = 1;
    rf_dataset *ds = gen(&o);
    check_chain(ds);
    const int K = ds->K, T = K - 1;
    assert_int_equal(K, 3);
    assert_string_equal(ds->label_names[T], "order_count");
    /* the counts have their own random stream: every other column is unchanged */
    for (size_t i = 0; i < ds->n; i++)
        for (int k = 0; k < T; k++) {
            assert_true(ds->labels[i * (size_t)K + (size_t)k] == plain->labels[i * 2 + (size_t)k]);
            assert_true(ds->truth[i * (size_t)K + (size_t)k] == plain->truth[i * 2 + (size_t)k]);
        }
    assert_memory_equal(ds->cat, plain->cat, ds->n * (size_t)ds->F * sizeof *ds->cat);
    rf_dataset_free(plain);
    double orders = 0, units = 0, exp_units = 0, exp_orders = 0;
    size_t multi = 0;
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * (size_t)K, *t = ds->truth + i * (size_t)K;
        orders += y[T - 1];
        units += y[T];
        multi += y[T] > 1.5f;
        exp_orders += t[T - 1];
        exp_units += t[T];
    }
    assert_true(orders > 100);
    assert_true(multi > 0);              /* some orders are for several units */
    double upo = units / orders, eupo = exp_units / exp_orders;
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  %g orders, %.3f units/order (truth %.3f), %zu multi-unit\n", orders, upo, eupo, multi);
    assert_true(upo > 1.05 && upo < 3.0);
    assert_true(fabs(upo - eupo) < 0.25);
    /* per-query weights for Weighted Recall@K: rows of a group share the list id */
    size_t groups_with_orders = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i * (size_t)K + T] > 0 && (i == 0 || ds->group[i] != ds->group[i - 1] ||
                                                   ds->labels[(i - 1) * (size_t)K + T] == 0))
            groups_with_orders++;
    assert_true(groups_with_orders > 50);
    rf_dataset_free(ds);
}

static int label_of(const rf_dataset *ds, const char *name)
{
    int k = rf_dataset_label_index(ds, name);
    assert_true(k >= 0);
    return k;
}

static void test_preset_kuairand(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.preset = RF_SYNTH_KUAIRAND;
    o.rows = 150000;
    o.n_users = 27285;
    o.n_items = 7583;
    o.ctr = 0.3f;
    rf_dataset *ds = gen(&o);
    assert_int_equal(ds->K, 7);
    int kc = label_of(ds, "is_click"), kl = label_of(ds, "long_view"), kk = label_of(ds, "is_like");
    int kf = label_of(ds, "is_follow"), km = label_of(ds, "is_comment"), kw = label_of(ds, "is_forward");
    int kp = label_of(ds, "play_time_ms");
    int fv = -1;
    for (int f = 0; f < ds->F; f++)
        if (!strcmp(ds->fields[f].name, "video_id")) fv = f;
    assert_true(fv >= 0);
    assert_int_equal(ds->fields[fv].vocab, o.n_items + 1);
    const size_t K = (size_t)ds->K;
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * K, *t = ds->truth + i * K;
        /* entire space: follow/comment/forward => like => long_view => click */
        assert_true(y[kl] <= y[kc] && y[kk] <= y[kl]);
        assert_true(y[kf] <= y[kk] && y[km] <= y[kk] && y[kw] <= y[kk]);
        assert_true(t[kl] <= t[kc] && t[kk] <= t[kl] && t[kf] <= t[kk] && t[km] <= t[kk] && t[kw] <= t[kk]);
        /* play time: 0 without a click, never negative */
        assert_true(y[kp] >= 0 && (y[kc] > 0.5f || y[kp] == 0));
        for (int f = 0; f < ds->F; f++) assert_true(ds->cat[i * ds->F + f] >= 1 && ds->cat[i * ds->F + f] < ds->fields[f].vocab);
    }
    /* calibrated rates (truth) and drawn labels agree */
    double pc = col_mean(ds->truth, ds->n, ds->K, kc), pl = col_mean(ds->truth, ds->n, ds->K, kl),
           pk = col_mean(ds->truth, ds->n, ds->K, kk), pf = col_mean(ds->truth, ds->n, ds->K, kf);
    if (getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  click %.4f long %.4f like %.5f follow %.6f play %.0f ms\n", pc, pl, pk, pf,
                col_mean(ds->labels, ds->n, ds->K, kp));
    assert_true(fabs(pc - 0.3) < 0.003);
    assert_true(fabs(pl / pc - 0.45) < 0.01);
    assert_true(fabs(pk / pl - 0.06) < 0.003);
    assert_true(fabs(pf / pk - 0.08) < 0.006);
    for (int k = 0; k < 6; k++) check_truth_vs_labels(ds, k);
    double mp = col_mean(ds->labels, ds->n, ds->K, kp), tp = col_mean(ds->truth, ds->n, ds->K, kp);
    assert_true(fabs(mp - tp) < 0.03 * tp); /* E[play time] of the truth column */
    /* the oracle beats a coin on the sparse tasks */
    double af = auc(ds->truth + kf, K, ds->labels + kf, K, ds->n), al = auc(ds->truth + kk, K, ds->labels + kk, K, ds->n);
    if (getenv("RESFLOW_TEST_VERBOSE")) fprintf(stderr, "  oracle AUC like %.4f follow %.4f\n", al, af);
    assert_true(al > 0.7 && af > 0.7);
    rf_dataset_free(ds);
}

static void test_preset_rating(void **state)
{
    (void)state;
    rf_synth_opts o = rf_synth_default();
    o.preset = RF_SYNTH_RATING;
    o.rows = 120000;
    o.n_users = 6040;
    o.n_items = 3706;
    rf_dataset *ds = gen(&o);
    assert_int_equal(ds->K, 5);
    int kr = label_of(ds, "rating");
    const size_t K = (size_t)ds->K;
    int fg = -1;
    for (int f = 0; f < ds->F; f++)
        if (ds->fields[f].multi) fg = f;
    assert_true(fg >= 0);
    assert_string_equal(ds->fields[fg].name, "genres");
    double hist[6] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * K, *t = ds->truth + i * K;
        int r = (int)y[kr];
        assert_true(y[kr] == (float)r && r >= 1 && r <= 5);
        hist[r]++;
        for (int k = 2; k <= 5; k++) assert_true(y[k - 1] == (float)(r >= k));
        for (int k = 2; k < 5; k++) assert_true(t[k] <= t[k - 1]); /* P(r>=k) non-increasing */
        assert_true(t[kr] >= 1.0f && t[kr] <= 5.0f);
        uint64_t a = ds->mv_off[fg][i], b = ds->mv_off[fg][i + 1];
        assert_true(b > a && b - a <= 3);
        for (uint64_t j = a; j < b; j++) assert_true(ds->mv_ids[fg][j] >= 1 && ds->mv_ids[fg][j] < ds->fields[fg].vocab);
    }
    /* the MovieLens-100K rating distribution, within a percentage point */
    static const double want[6] = {0, 0.061, 0.114, 0.271, 0.342, 0.212};
    for (int r = 1; r <= 5; r++) assert_true(fabs(hist[r] / (double)ds->n - want[r]) < 0.01);
    double mean = col_mean(ds->labels, ds->n, ds->K, kr), tmean = col_mean(ds->truth, ds->n, ds->K, kr);
    assert_true(fabs(mean - tmean) < 0.02 && fabs(mean - 3.53) < 0.05);
    /* thresholds are learnable: the oracle ranks rating >= 4 well */
    assert_true(auc(ds->truth + 3, K, ds->labels + 3, K, ds->n) > 0.7);
    rf_dataset *again = gen(&o);
    assert_true(same_dataset(ds, again));
    assert_memory_equal(ds->mv_ids[fg], again->mv_ids[fg], ds->mv_off[fg][ds->n] * sizeof(uint32_t));
    rf_dataset_free(again);
    rf_dataset_free(ds);
}

/* ---- preset ecom (docs/simulator.md, "The ecom preset: the story") ------------------------ */
static rf_synth_opts ecom_opts(int tasks)
{
    rf_synth_opts o = rf_synth_default();
    o.preset = RF_SYNTH_ECOM;
    o.tasks = tasks;
    o.rows = 400000;
    o.ctr = 0.03f;
    o.cvr = 0.03f;
    o.cart_rate = 0.12f;
    return o;
}

static void test_preset_ecom(void **state)
{
    (void)state;
    for (int tasks = 2; tasks <= 3; tasks++) {
        rf_synth_opts o = ecom_opts(tasks);
        o.order_counts = tasks == 3;
        rf_dataset *ds = gen(&o);
        const int T = tasks, OC = o.order_counts, K = ds->K, CF = T + OC;
        assert_int_equal(K, T + OC + T - 1);
        assert_int_equal(ds->F, 20);
        assert_int_equal(ds->D, 6);
        assert_string_equal(ds->label_names[0], "click");
        assert_string_equal(ds->label_names[T - 1], "order");
        assert_string_equal(ds->label_names[CF + T - 2], "cf_order");
        if (T == 3) assert_string_equal(ds->label_names[CF], "cf_cart");
        /* the counterfactual label of a child's label: found, absent for a root, none for a product */
        assert_int_equal(rf_dataset_cf_label_index(ds, "order"), CF + T - 2);
        assert_int_equal(rf_dataset_cf_label_index(ds, "cart"), T == 3 ? CF : -1);
        assert_int_equal(rf_dataset_cf_label_index(ds, "click"), -1);
        assert_int_equal(rf_dataset_cf_label_index(ds, "click*order"), -1);
        /* ids inside their vocabularies, never the OOV id 0; group = list id */
        for (size_t i = 0; i < ds->n; i++) {
            for (int f = 0; f < ds->F; f++) {
                uint32_t v = ds->cat[i * (size_t)ds->F + (size_t)f];
                assert_true(v >= 1 && v < ds->fields[f].vocab);
            }
            assert_true(ds->group[i] == i / (size_t)o.list_len);
        }
        /* entire-space chain; counterfactual columns: labels are the potential outcomes (the
         * observed child = parent AND its potential outcome), truth the conditional probability */
        double cf_clicked = 0, cf_unclicked = 0, n_clicked = 0;
        for (size_t i = 0; i < ds->n; i++) {
            const float *y = ds->labels + i * (size_t)K, *t = ds->truth + i * (size_t)K;
            for (int k = 1; k < T; k++) {
                float pot = y[CF + k - 1];
                assert_true(pot == 0.0f || pot == 1.0f);
                assert_true(y[k] == (y[k - 1] > 0.5f && pot > 0.5f ? 1.0f : 0.0f));
                assert_true(t[k] <= t[k - 1] && t[k] > 0.0f && t[k] < 1.0f);
                assert_true(fabsf(t[CF + k - 1] - t[k] / t[k - 1]) <= 1e-5f * (1 + t[CF + k - 1]));
            }
            if (y[0] > 0.5f) cf_clicked += y[CF + T - 2], n_clicked++;
            else cf_unclicked += y[CF + T - 2];
        }
        (void)cf_unclicked;
        /* calibrated rates: CTR and P(order | click) near their targets */
        double ctr = col_mean(ds->labels, ds->n, K, 0);
        assert_true(fabs(ctr - 0.03) < 0.003);
        double cvr = rate_given_click(ds, T - 1);
        assert_true(fabs(cvr - 0.03) < 0.006);
        for (int k = 0; k < T; k++) check_truth_vs_labels(ds, k);
        /* truth vs labels for the counterfactual columns too */
        for (int k = CF; k < K; k++) check_truth_vs_labels(ds, k);
        /* the oracle beats chance clearly; the click is a strong but imperfect CTCVR score */
        double oc = auc(ds->truth, K, ds->labels, K, ds->n);
        double oo = auc(ds->truth + T - 1, K, ds->labels + T - 1, K, ds->n);
        double cl = auc(ds->truth, K, ds->labels + T - 1, K, ds->n);
        double es = auc(ds->truth + K - 1, K, ds->labels + K - 1, K, ds->n);
        assert_true(oc > 0.7 && oo > 0.8 && es > 0.7);
        assert_true(cl < oo);
        /* position bias: CTR falls from the top slot to the bottom one */
        double top = 0, bot = 0, nt = 0, nb = 0;
        for (size_t i = 0; i < ds->n; i++) {
            uint32_t pos = ds->cat[i * (size_t)ds->F + 15];
            if (pos == 1) top += ds->labels[i * (size_t)K], nt++;
            if (pos == (uint32_t)o.list_len) bot += ds->labels[i * (size_t)K], nb++;
        }
        assert_true(top / nt > 3 * (bot / nb));
        assert_string_equal(ds->fields[15].name, "position");
        rf_dataset_free(ds);
    }
}

/* bit-identical for any thread count; another seed gives another log */
static void test_ecom_threads(void **state)
{
    (void)state;
    rf_synth_opts o = ecom_opts(2);
    o.rows = 60000;
    o.threads = 1;
    rf_dataset *a = gen(&o);
    o.threads = 2;
    rf_dataset *b = gen(&o);
    o.threads = 3;
    rf_dataset *c = gen(&o);
    assert_true(same_dataset(a, b));
    assert_true(same_dataset(a, c));
    o.seed = 2;
    rf_dataset *d = gen(&o);
    assert_false(same_dataset(a, d));
    rf_dataset_free(a);
    rf_dataset_free(b);
    rf_dataset_free(c);
    rf_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_schema_and_ids),
        cmocka_unit_test(test_rates_two_tasks),
        cmocka_unit_test(test_rates_three_tasks),
        cmocka_unit_test(test_position_bias),
        cmocka_unit_test(test_oracle_auc),
        cmocka_unit_test(test_tiny_worlds),
        cmocka_unit_test(test_order_counts),
        cmocka_unit_test(test_preset_kuairand),
        cmocka_unit_test(test_preset_rating),
        cmocka_unit_test(test_preset_ecom),
        cmocka_unit_test(test_ecom_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
