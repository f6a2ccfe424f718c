/* test_probe.c - probing the learned residuals (paper Fig. 4): group assignment, deterministic
 * sampling, the dumped quantities against the forward pass (block + parent == output bit for
 * bit, residual logit == s_k - s_parent), per-group summaries, the SVG heatmap writer, and the
 * error paths. */
#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/lab/heatmap.h"
#include "resflow/lab/probe.h"
#include "resflow/train.h"

/* Simulator rows whose labels are rewritten: row i is in group A (click, order) when i % 3 == 0,
 * B (click, no order) when i % 3 == 1, C (nothing) when i % 3 == 2; row 5 gets an order without
 * a click (in no group). */
static rf_dataset *hand_data(void)
{
    rf_synth_opts o = rf_synth_default();
    o.rows = 3000;
    o.n_users = 300;
    o.n_items = 500;
    o.n_queries = 100;
    rf_dataset *ds = NULL;
    rf_error e;
    assert_int_equal(rf_synth_generate(&o, &ds, &e), RF_OK);
    int cc = rf_dataset_label_index(ds, "click"), oc = rf_dataset_label_index(ds, "order");
    assert_true(cc >= 0 && oc >= 0);
    for (size_t i = 0; i < ds->n; i++) {
        ds->labels[i * ds->K + cc] = i % 3 != 2;
        ds->labels[i * ds->K + oc] = i % 3 == 0;
    }
    ds->labels[5 * ds->K + cc] = 0;
    ds->labels[5 * ds->K + oc] = 1;
    return ds;
}

static rf_model *make(const rf_dataset *ds, const char *type, const char *const *sets)
{
    rf_config c;
    rf_config_default(&c);
    rf_error e;
    char t[64];
    snprintf(t, sizeof t, "model.type=%s", type);
    assert_int_equal(rf_config_set(&c, t, &e), RF_OK);
    assert_int_equal(rf_config_set(&c, "model.hidden=[12,6]", &e), RF_OK);
    assert_int_equal(rf_config_set(&c, "model.emb_dim=4", &e), RF_OK);
    assert_int_equal(rf_config_set(&c, "model.expert_hidden=[8]", &e), RF_OK);
    for (int i = 0; sets && sets[i]; i++) assert_int_equal(rf_config_set(&c, sets[i], &e), RF_OK);
    assert_int_equal(rf_config_validate(&c, &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&c, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    /* larger weights than the initialisation, so that the features are far from 0 */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 1.7f;
    for (size_t i = 0; i < m->emb_off[m->F] * (size_t)m->E; i++) m->emb[i] *= 20;
    return m;
}

static void test_group_of(void **state)
{
    (void)state;
    float y2[][2] = {{1, 1}, {1, 0}, {0, 0}, {0, 1}, {0.9f, 0.2f}, {NAN, 0}};
    int want2[] = {0, 1, 2, -1, 1, 2};
    for (int i = 0; i < 6; i++) assert_int_equal(rf_probe_group(y2[i], 2), want2[i]);
    float y3[][3] = {{1, 1, 1}, {1, 1, 0}, {1, 0, 0}, {0, 0, 0}, {1, 0, 1}, {0, 1, 1}};
    int want3[] = {0, 1, 2, 3, -1, -1};
    for (int i = 0; i < 6; i++) assert_int_equal(rf_probe_group(y3[i], 3), want3[i]);
    float y1[][1] = {{1}, {0}};
    assert_int_equal(rf_probe_group(y1[0], 1), 0);
    assert_int_equal(rf_probe_group(y1[1], 1), 1);
}

/* groups of hand-labelled rows; the same seed draws the same rows, another seed others */
static void test_groups_and_sampling(void **state)
{
    (void)state;
    rf_dataset *ds = hand_data();
    rf_model *m = make(ds, "resflow", NULL);
    rf_probe_opts o = rf_probe_default();
    o.rows = 40;
    rf_probe *a = NULL, *b = NULL, *c = NULL;
    rf_error e;
    assert_int_equal(rf_probe_run(m, ds, &o, &a, &e), RF_OK);
    assert_int_equal(a->n_groups, 3);
    assert_int_equal(a->depth, 2);
    assert_int_equal(a->leaf, 1);
    assert_string_equal(a->group_desc[0], "ctr=1 ctcvr=1");
    assert_string_equal(a->group_desc[1], "ctr=1 ctcvr=0");
    assert_string_equal(a->group_desc[2], "ctr=0 ctcvr=0");
    assert_int_equal(a->inconsistent, 1);
    assert_int_equal(a->available[0], 1000);
    assert_int_equal(a->available[1], 1000);
    assert_int_equal(a->available[2], 999); /* row 5 left out */
    assert_int_equal(a->n, 120);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->group[i], (int)(i / 40));
        assert_int_equal((int)(a->row[i] % 3), a->group[i]);
        assert_true(a->row[i] != 5);
        if (i % 40) assert_true(a->row[i] > a->row[i - 1]); /* distinct, ascending within a group */
        assert_true(a->label[i * 2] == (a->group[i] < 2));
        assert_true(a->label[i * 2 + 1] == (a->group[i] == 0));
    }
    assert_int_equal(rf_probe_run(m, ds, &o, &b, &e), RF_OK);
    assert_memory_equal(a->row, b->row, a->n * sizeof *a->row);
    assert_memory_equal(a->logit, b->logit, a->n * 2 * sizeof(float));
    o.seed = 2;
    assert_int_equal(rf_probe_run(m, ds, &o, &c, &e), RF_OK);
    assert_true(memcmp(a->row, c->row, a->n * sizeof *a->row) != 0);
    rf_probe_free(a);
    rf_probe_free(b);
    rf_probe_free(c);

    /* per key: one row of each group per key, the same key across the groups */
    o.per_key = 1;
    o.rows = 12;
    assert_int_equal(rf_probe_run(m, ds, &o, &a, &e), RF_OK);
    assert_true(a->eligible_keys >= 12);
    for (int i = 0; i < 12; i++) {
        for (int g = 0; g < 3; g++) {
            assert_true(a->key[g * 12 + i] == a->key[i]);
            assert_true(ds->group[a->row[g * 12 + i]] == a->key[i]);
            assert_int_equal((int)(a->row[g * 12 + i] % 3), g);
        }
        if (i) assert_true(a->key[i] != a->key[i - 1]);
    }
    rf_probe_free(a);
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* What is dumped is what the forward pass computed: o_k = f_k + o_parent bit for bit where the
 * link is on, o_k = f_k elsewhere; r_k = s_k - s_parent (logit link) or s_k (none); the
 * probabilities are rf_predict's; the summaries are the means of the dumped values. */
static void check_invariants(const char *type, const char *const *sets, int expect_links)
{
    rf_dataset *ds = hand_data();
    rf_model *m = make(ds, type, sets);
    rf_probe_opts o = rf_probe_default();
    o.rows = 30;
    rf_probe *p = NULL;
    rf_error e;
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_OK);
    int K = p->K;
    size_t linked_cells = 0;
    double max_abs = 0;
    for (int l = 0; l < p->L; l++) {
        assert_int_equal(p->link[l], expect_links);
        int H = p->H[l];
        for (size_t i = 0; i < p->n; i++)
            for (int k = 0; k < K; k++) {
                const float *f = p->block[l] + i * K * H + (size_t)k * H, *out = p->out[l] + i * K * H + (size_t)k * H;
                int par = m->parent[k];
                for (int j = 0; j < H; j++) {
                    if (p->link[l] && par >= 0) {
                        float want = f[j] + p->out[l][i * K * H + (size_t)par * H + j];
                        assert_true(out[j] == want);
                        linked_cells++;
                    } else {
                        assert_true(out[j] == f[j]);
                    }
                    if (fabs(out[j]) > max_abs) max_abs = fabs(out[j]);
                }
            }
    }
    assert_true(max_abs > 0.05); /* the features are not all ~0 */
    if (expect_links) assert_true(linked_cells > 0);
    float *P = malloc(ds->n * K * sizeof *P);
    assert_int_equal(rf_predict(m, ds, 0, P, NULL, &e), RF_OK);
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < K; k++) {
            int par = m->parent[k];
            float s = p->logit[i * K + k], r = p->residual[i * K + k];
            if (p->link[p->L] && par >= 0) {
                float sp = p->logit[i * K + par];
                assert_true(fabsf(r - (s - sp)) <= 1e-5f * (1 + fabsf(s)));
                if (m->spec.model.monotonic == RF_MONO_M3) assert_true(r <= 0);
            } else { /* no logit link: the tower's whole logit (ESMM: its conditional logit) */
                assert_true(r == s);
            }
            assert_true(fabsf(p->prob[i * K + k] - P[p->row[i] * K + k]) <= 1e-6f + 1e-5f * P[p->row[i] * K + k]);
        }
    free(P);
    /* summaries */
    for (int g = 0; g < p->n_groups; g++) {
        double s = 0, gsum = 0;
        for (int i = 0; i < p->per_group; i++) {
            size_t at = (size_t)g * p->per_group + i;
            s += p->residual[at * K + p->leaf];
            gsum += p->logit[at * K + 1] - p->logit[at * K];
        }
        assert_true(fabs(p->res[g].mean - s / p->per_group) < 1e-9 * (1 + fabs(s)));
        assert_true(fabs(p->gap[g].mean - gsum / p->per_group) < 1e-9 * (1 + fabs(gsum)));
        assert_true(p->res[g].std >= 0);
        assert_int_equal(p->res[g].n, p->per_group);
    }
    for (int l = 0; l < p->L; l++)
        for (int d = 0; d < p->depth; d++) {
            int k = p->path[d], H = p->H[l];
            double s = 0;
            for (int i = 0; i < p->per_group; i++)
                for (int j = 0; j < H; j++) s += fabs(p->out[l][(size_t)i * K * H + (size_t)k * H + j]);
            rf_probe_stat st = p->mag[((size_t)(l * p->depth + d) * 2) * p->n_groups + 0];
            assert_true(fabs(st.mean - s / H / p->per_group) < 1e-6);
            double ch = p->sep[(size_t)(l * p->depth + d) * 2];
            assert_true(isnan(ch) || ch >= 0);
        }
    rf_probe_free(p);
    rf_model_free(m);
    rf_dataset_free(ds);
}

static void test_invariants_resflow(void **state)
{
    (void)state;
    check_invariants("resflow", NULL, 1);
    const char *bn[] = {"model.bn=batch", NULL};
    check_invariants("resflow", bn, 1); /* BN sits inside f: o = BN(act(.)) + o_parent */
    const char *m3[] = {"model.monotonic=m3", NULL};
    check_invariants("resflow", m3, 1);
}

static void test_invariants_nse_esmm(void **state)
{
    (void)state;
    check_invariants("nse", NULL, 0);
    check_invariants("esmm", NULL, 0);
    const char *fr[] = {"model.esmm_links=true", NULL};
    check_invariants("esmm", fr, 1);
}

static void test_errors(void **state)
{
    (void)state;
    rf_dataset *ds = hand_data();
    rf_model *m = make(ds, "resflow", NULL);
    rf_probe_opts o = rf_probe_default();
    rf_probe *p = NULL;
    rf_error e;
    o.leaf = 7;
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EUSAGE);
    assert_null(p);
    o.leaf = -1;
    o.rows = 1001; /* group A has 1000 rows */
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "group A (ctr=1 ctcvr=1) has 1000 rows"));
    o.rows = 0;
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EUSAGE);
    o.rows = 5;
    o.per_key = 1;
    uint64_t *grp = ds->group;
    ds->group = NULL;
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "group key"));
    ds->group = grp;
    o.rows = 100000;
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "keys"));
    rf_model_free(m);
    /* the model zoo has no towers with residuals */
    m = make(ds, "mmoe", NULL);
    o = rf_probe_default();
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "tower model"));
    assert_null(p);
    rf_model_free(m);
    /* the task's label is not in the data */
    rf_config c;
    rf_config_default(&c);
    assert_int_equal(rf_config_set(&c, "tasks=[{name: ctr, label: click}, {name: x, label: nosuch, parent: ctr}]", &e),
                     RF_OK);
    assert_int_equal(rf_config_create_model(&c, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "nosuch"));
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* ---- SVG ------------------------------------------------------------------------------------ */

/* Sum of the run widths ("h<w>") in the d attributes of paths of the given class. */
static long run_width(const char *svg, const char *cls)
{
    char pat[64];
    snprintf(pat, sizeof pat, "<path class=\"%s\"", cls);
    long w = 0;
    for (const char *s = strstr(svg, pat); s; s = strstr(s + 1, pat)) {
        const char *d = strstr(s, " d=\""), *end = d ? strchr(d + 4, '"') : NULL;
        assert_non_null(end);
        for (const char *q = d + 4; q < end; q++)
            if (*q == 'h') w += strtol(q + 1, NULL, 10);
    }
    return w;
}

static size_t count(const char *s, const char *pat)
{
    size_t n = 0;
    for (s = strstr(s, pat); s; s = strstr(s + 1, pat)) n++;
    return n;
}

/* xmllint when installed (libxml2-utils), else a structural check of the tags */
static void well_formed(const char *svg)
{
    assert_true(strncmp(svg, "<?xml version=\"1.0\"", 19) == 0);
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    size_t n = strlen(svg);
    assert_true(n > 7 && strcmp(svg + n - 7, "</svg>\n") == 0);
    assert_int_equal(count(svg, "<text"), count(svg, "</text>"));
    assert_int_equal(count(svg, "<tspan"), count(svg, "</tspan>"));
    assert_int_equal(count(svg, "<g"), count(svg, "</g>"));
    if (system("command -v xmllint >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  [note] xmllint not installed; structural check only\n");
        return;
    }
    char path[] = "/tmp/resflow-probe-svg.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(svg, fp);
    fclose(fp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "xmllint --noout %s", path);
    assert_int_equal(system(cmd), 0);
    remove(path);
}

static void test_heatmap_svg(void **state)
{
    (void)state;
    /* 5 rows x 4 columns and 5 x 2, two bands, one NaN, one +Inf, a title needing escapes */
    float a[5 * 4] = {-1, -0.5f, 0, 0.5f, 1, 2, -3, NAN, 0.1f, 0.1f, 0.1f, 0.1f, 0, 0, 0, 0, 0.25f, -0.25f, 0.75f, -0.75f};
    float b[5 * 3] = {1, 2, 99, 3, INFINITY, 99, 5, 6, 99, 7, 8, 99, 9, 10, 99}; /* stride 3, 2 columns */
    const char *caps[] = {"x<1", "y"};
    rf_heat_panel pan[2] = {{"first\npanel", a, 4, 4, NULL, 0, 0}, {"second & last", b, 2, 3, caps, 20, 1}};
    int bands[] = {0, 2};
    const char *blab[] = {"A\nclick=1", "B"};
    const char *rlab[] = {"r0", "r1", "r2", "r3", "r4"};
    rf_heatmap h = {"a<b & \"c\"", 5, 2, bands, blab, rlab, 2, pan, 0, "value", "note", 5, 9};
    char *svg = NULL;
    rf_heatmap_info info;
    rf_error e;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_OK);
    well_formed(svg);
    assert_int_equal(info.cells, 5 * 4 + 5 * 2);
    assert_int_equal(info.nan_cells, 2);
    assert_true(info.limit == 10.0f); /* largest finite |value| of the shown columns (99 is not shown) */
    assert_int_equal(run_width(svg, "cells") + run_width(svg, "nan"), 5 * 4 * 5 + 5 * 2 * 20);
    assert_int_equal(run_width(svg, "nan"), 5 + 20);
    assert_non_null(strstr(svg, "a&lt;b &amp; &quot;c&quot;"));
    assert_non_null(strstr(svg, ">x&lt;1<"));
    assert_non_null(strstr(svg, ">10.00<"));  /* annotated values */
    assert_non_null(strstr(svg, ">Inf<"));
    assert_non_null(strstr(svg, "not finite"));
    assert_int_equal(count(svg, "stroke=\"#888888\""), 2); /* one frame per panel */
    for (int r = 0; r < 5; r++) assert_non_null(strstr(svg, rlab[r])); /* 9 px rows: every row labelled */
    free(svg);
    /* 6 px rows (issue #18: labels were 5 px): 8 px labels on every 2nd row of a band, band starts kept */
    h.cell_h = 6;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_OK);
    well_formed(svg);
    assert_non_null(strstr(svg, ">r0<"));
    assert_null(strstr(svg, ">r1<"));
    assert_non_null(strstr(svg, ">r2<")); /* the second band starts at row 2 */
    assert_null(strstr(svg, ">r3<"));
    assert_non_null(strstr(svg, ">r4<"));
    assert_int_equal(count(svg, "font-size=\"8\" text-anchor=\"end\""), 3);
    assert_null(strstr(svg, "font-size=\"5\""));
    free(svg);
    h.cell_h = 9;
    /* fixed limit: values beyond it take the end colours */
    h.limit = 0.5f;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_OK);
    assert_true(info.limit == 0.5f);
    assert_non_null(strstr(svg, "stroke=\"#053061\""));
    assert_non_null(strstr(svg, "stroke=\"#67001f\""));
    free(svg);
    /* colours */
    char c[8];
    rf_heat_colour(0, 1, c);
    assert_string_equal(c, "#f7f7f7");
    rf_heat_colour(-1, 1, c);
    assert_string_equal(c, "#053061");
    rf_heat_colour(5, 1, c);
    assert_string_equal(c, "#67001f");
    rf_heat_colour(NAN, 1, c);
    assert_string_equal(c, "#999999");
    /* errors */
    h.rows = 0;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_EUSAGE);
    assert_null(svg);
    h.rows = 5;
    int bad_bands[] = {0, 0};
    h.band_start = bad_bands;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_EUSAGE);
    h.band_start = bands;
    pan[1].ld = 1;
    assert_int_equal(rf_heatmap_svg(&h, &svg, &info, &e), RF_EUSAGE);
}

/* Fig. 4-style figures of a probe: well-formed; ResFlow has root output, child residual and
 * child output per layer, NSE one panel per tower */
static void test_probe_svgs(void **state)
{
    (void)state;
    rf_dataset *ds = hand_data();
    const char *types[] = {"resflow", "nse"};
    int panels[] = {3, 2};
    for (int t = 0; t < 2; t++) {
        rf_model *m = make(ds, types[t], NULL);
        rf_probe_opts o = rf_probe_default();
        o.rows = 20;
        rf_probe *p = NULL;
        rf_error e;
        assert_int_equal(rf_probe_run(m, ds, &o, &p, &e), RF_OK);
        for (int l = 0; l < p->L; l++) {
            char *svg = NULL;
            assert_int_equal(rf_probe_svg_layer(p, m, l, 7, 5, 0, types[t], &svg, &e), RF_OK);
            well_formed(svg);
            assert_int_equal(count(svg, "stroke=\"#888888\""), panels[t]);
            assert_int_equal(run_width(svg, "cells") + run_width(svg, "nan"), 3 * 7 * 5 * 4 * panels[t]);
            free(svg);
        }
        char *svg = NULL;
        assert_int_equal(rf_probe_svg_layer(p, m, 2, 7, 5, 0, "x", &svg, &e), RF_EUSAGE);
        assert_int_equal(rf_probe_svg_logits(p, m, 0, 0, types[t], &svg, &e), RF_OK);
        well_formed(svg);
        assert_non_null(strstr(svg, ">r_ctcvr<"));
        assert_int_equal(count(svg, "<tspan") >= (size_t)3 * 20 * 3, 1); /* 60 rows x 3 annotated values */
        free(svg);
        rf_probe_free(p);
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_of),
        cmocka_unit_test(test_groups_and_sampling),
        cmocka_unit_test(test_invariants_resflow),
        cmocka_unit_test(test_invariants_nse_esmm),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_heatmap_svg),
        cmocka_unit_test(test_probe_svgs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
