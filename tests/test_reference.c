/* test_reference.c - the C engine against a PyTorch reference (llm.c test_gpt2 style).
 *
 * tests/ref/torch_ref.py wrote tests/fixtures/<name>.bin: a configuration (YAML), a small
 * dataset, initial parameters/embeddings/BN buffers, and what torch computed from them: one
 * training-mode forward (logits, probabilities, conditionals, loss, per-task losses, updated
 * running statistics), the backward (dense slab gradient, dense (rows, E) embedding gradient and
 * the set of touched rows), a 10-step Adam/SparseAdam training curve, the final state and an
 * eval-mode forward with it. This program rebuilds the model from the stored YAML, loads the
 * stored state, replays all of it and compares with the per-tensor tolerances in TOL below.
 * No torch is needed here. Regenerate the fixtures with `make fixtures` (see tests/ref/README.md).
 *
 * RESFLOW_TEST_VERBOSE=1 prints every comparison (max abs diff, and "use" = the largest
 * |c-t| / (atol + rtol|t|), i.e. how much of its tolerance a tensor uses; a failure is use > 1).
 * RESFLOW_FIXTURES=DIR overrides the fixture directory (default tests/fixtures from the repo root).
 */
#include "test_util.h"

#include "nn/model_impl.h"

#include <stdint.h>

#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/optim.h"

/* ---- tolerances -----------------------------------------------------------------------------
 * An element passes when |c - t| <= atol + rtol*|t| (c: C engine, t: torch).
 * How they were chosen: the fixtures were replayed with RESFLOW_TEST_VERBOSE=1 and the largest
 * differences over all four fixtures measured, in four builds/runs (-O3 -march=native with the
 * default threads, with OMP_NUM_THREADS=1, with 2 OpenMP/OpenBLAS threads, and -O1 with
 * ASan/UBSan): all gave the same maxima, listed after each entry as max|c-t| and
 * max|c-t|/|t| over elements with |t| > 1e-3. atol and rtol are each ~10x those maxima (so
 * every tensor uses at most ~1/20 of its tolerance). Forward outputs stay well inside 1e-3
 * relative.
 * The C and torch code do the same float32 operations in a different order (BLAS blocking,
 * double accumulations in BN and the loss), so differences are a few float32 ulps in the
 * forward pass, grow through the backward pass (BN backward subtracts nearly equal sums) and
 * through 10 Adam steps (Adam divides by sqrt(v), so a tiny gradient's relative error becomes
 * the update's relative error). A genuine math error is far larger: e.g. a missing residual
 * link, a wrong BN variance or a wrong bias correction moves these values by 1e-2 to 1. */
typedef struct {
    const char *what;
    double atol, rtol;
} tol_t;

static const tol_t TOL[] = {
    /* name                 atol     rtol        measured max|diff|  max rel (|t| > 1e-3) */
    /* forward (one training-mode pass) */
    {"fwd.logits",          1.5e-5,  5e-5},   /* 1.4e-6   4.7e-6 */
    {"fwd.probs",           2e-6,    1.5e-5}, /* 2.1e-7   1.3e-6 */
    {"fwd.cond",            2e-6,    1.5e-5}, /* 2.1e-7   1.3e-6  sigmoid(s_k) */
    {"fwd.loss",            2.5e-6,  6e-7},   /* 2.3e-7   5.5e-8  double, total loss */
    {"fwd.per_task",        1e-6,    6e-7},   /* 1.0e-7   6.3e-8  double, per-task losses */
    {"fwd.buffers",         1.2e-6,  7e-6},   /* 1.2e-7   7.1e-7  BN running mean/var after it */
    /* backward */
    {"grad.params",         8.5e-6,  5.5e-4}, /* 8.3e-7   5.3e-5  each tensor of the dense slab */
    {"grad.emb",            3.6e-6,  1.8e-4}, /* 3.6e-7   1.8e-5  (rows, E), untouched rows 0 */
    /* 10 Adam steps from the initial state */
    {"train.loss",          3.2e-6,  9e-7},   /* 3.2e-7   8.6e-8  double, loss before each step */
    {"final.params",        1.8e-6,  9e-5},   /* 1.8e-7   8.7e-6 */
    {"final.emb",           1.2e-6,  1e-4},   /* 1.2e-7   9.5e-6 */
    {"final.buffers",       2.4e-6,  2.7e-5}, /* 2.4e-7   2.7e-6 */
    {"final.eval_logits",   6.6e-6,  3.2e-4}, /* 6.6e-7   3.2e-5  eval-mode forward, final state */
    {"final.eval_probs",    1.5e-6,  5.6e-6}, /* 1.5e-7   5.6e-7 */
};

/* The op-graph models (model zoo: mmoe_2task, ple_3task, aitm_3task), measured the same way
 * over their fixtures in the same four builds/runs (identical maxima in all four). Their softmax gates
 * and experts add a few more float32 roundings on the way to the logits, so some relative
 * differences are larger than the tower models'; each entry is again ~10x its maxima, which
 * keeps the tower models' table tight. */
static const tol_t TOL_ZOO[] = {
    /* name                 atol     rtol        measured max|diff|  max rel (|t| > 1e-3) */
    {"fwd.logits",          1.2e-5,  3.3e-4}, /* 1.2e-6   3.3e-5 */
    {"fwd.probs",           1.8e-6,  4.6e-6}, /* 1.8e-7   4.6e-7 */
    {"fwd.cond",            1.8e-6,  4.6e-6}, /* 1.8e-7   4.6e-7 */
    {"fwd.loss",            1.4e-6,  2e-7},   /* 1.4e-7   2.0e-8 */
    {"fwd.per_task",        1.2e-6,  1.1e-6}, /* 1.2e-7   1.1e-7 */
    {"fwd.buffers",         1.2e-6,  3.5e-5}, /* 1.2e-7   3.5e-6 */
    {"grad.params",         9.4e-6,  6.1e-4}, /* 9.4e-7   6.1e-5 */
    {"grad.emb",            3.6e-6,  2.9e-4}, /* 3.6e-7   2.9e-5 */
    {"train.loss",          3.7e-6,  1.1e-6}, /* 3.7e-7   1.1e-7 */
    {"final.params",        2.6e-6,  2.7e-4}, /* 2.6e-7   2.7e-5 */
    {"final.emb",           1.2e-6,  8.5e-5}, /* 1.2e-7   8.5e-6 */
    {"final.buffers",       1.2e-6,  6.3e-6}, /* 1.2e-7   6.3e-7 */
    {"final.eval_logits",   3e-6,    7.7e-5}, /* 3.0e-7   7.7e-6 */
    {"final.eval_probs",    1.2e-6,  2.1e-6}, /* 1.2e-7   2.1e-7 */
};

static int g_zoo; /* the fixture being replayed is an op-graph model: use TOL_ZOO */

static const tol_t *tol_of(const char *what)
{
    const tol_t *tab = g_zoo ? TOL_ZOO : TOL;
    size_t n = g_zoo ? sizeof TOL_ZOO / sizeof TOL_ZOO[0] : sizeof TOL / sizeof TOL[0];
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].what, what)) return &tab[i];
    fail_msg("no tolerance for %s", what);
    return NULL;
}

/* ---- fixture file ---------------------------------------------------------------------------
 * "RFREF001", u32 version (1), u32 count; per tensor: u32 name length, name, u32 dtype
 * (1 f32, 2 f64, 3 i32, 4 u8), u32 ndim, u32 dims[ndim], data. Little-endian. */
enum { DT_F32 = 1, DT_F64 = 2, DT_I32 = 3, DT_U8 = 4 };

typedef struct {
    char name[64];
    int dt, ndim;
    uint32_t dims[8];
    size_t n;   /* elements */
    void *data; /* own, aligned copy */
} ref_tensor;

typedef struct {
    int n;
    ref_tensor t[64];
} ref_file;

static const char *fixture_dir(void)
{
    const char *d = getenv("RESFLOW_FIXTURES");
    static const char *cands[] = {"tests/fixtures", "../tests/fixtures", "../../tests/fixtures", NULL};
    struct stat st;
    if (d) return d;
    for (int i = 0; cands[i]; i++)
        if (stat(cands[i], &st) == 0) return cands[i];
    return "tests/fixtures";
}

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ref_load(ref_file *rf, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bin", fixture_dir(), name);
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open fixture %s (run from the repo root or set RESFLOW_FIXTURES)", path);
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)sz);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    const uint16_t one = 1;
    assert_int_equal(*(const unsigned char *)&one, 1); /* the data are little-endian */
    size_t o = 0, end = (size_t)sz;
#define NEED(k) do { if (o + (k) > end) fail_msg("%s: truncated at byte %zu", path, o); } while (0)
    NEED(16);
    if (memcmp(buf, "RFREF001", 8)) fail_msg("%s: bad magic", path);
    if (rd_u32(buf + 8) != 1) fail_msg("%s: unsupported version %u", path, rd_u32(buf + 8));
    uint32_t cnt = rd_u32(buf + 12);
    if (cnt > 64) fail_msg("%s: %u tensors (max 64)", path, cnt);
    o = 16;
    memset(rf, 0, sizeof *rf);
    for (uint32_t i = 0; i < cnt; i++) {
        ref_tensor *t = &rf->t[rf->n++];
        NEED(4);
        uint32_t nl = rd_u32(buf + o);
        o += 4;
        if (nl >= sizeof t->name) fail_msg("%s: tensor name too long", path);
        NEED(nl + 8);
        memcpy(t->name, buf + o, nl);
        o += nl;
        t->dt = (int)rd_u32(buf + o);
        t->ndim = (int)rd_u32(buf + o + 4);
        o += 8;
        if (t->ndim > 8 || t->dt < DT_F32 || t->dt > DT_U8) fail_msg("%s: %s: bad header", path, t->name);
        NEED(4 * (size_t)t->ndim);
        t->n = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->dims[d] = rd_u32(buf + o);
            o += 4;
            t->n *= t->dims[d];
        }
        size_t es = t->dt == DT_F64 ? 8 : t->dt == DT_U8 ? 1 : 4;
        NEED(t->n * es);
        t->data = malloc(t->n * es + 1); /* +1: u8 text gets a NUL */
        assert_non_null(t->data);
        memcpy(t->data, buf + o, t->n * es);
        ((unsigned char *)t->data)[t->n * es] = 0;
        o += t->n * es;
    }
    if (o != end) fail_msg("%s: %zu trailing bytes", path, end - o);
#undef NEED
    free(buf);
}

static void ref_free(ref_file *rf)
{
    for (int i = 0; i < rf->n; i++) free(rf->t[i].data);
}

static const ref_tensor *ref_find(const ref_file *rf, const char *name)
{
    for (int i = 0; i < rf->n; i++)
        if (!strcmp(rf->t[i].name, name)) return &rf->t[i];
    return NULL;
}

/* Tensor by name with a given dtype and element count (n == (size_t)-1: any count). */
static const void *ref_get(const ref_file *rf, const char *name, int dt, size_t n)
{
    const ref_tensor *t = ref_find(rf, name);
    if (!t) fail_msg("fixture has no tensor %s", name);
    if (t->dt != dt) fail_msg("%s: dtype %d, expected %d", name, t->dt, dt);
    if (n != (size_t)-1 && t->n != n) fail_msg("%s: %zu elements, expected %zu", name, t->n, n);
    return t->data;
}

/* ---- comparisons ------------------------------------------------------------------------- */
static int verbose(void) { return getenv("RESFLOW_TEST_VERBOSE") != NULL; }

/* Compare n values (float or double) against the reference with the tolerance of `what`;
 * returns the number of failing tensors (0/1) and prints stats in verbose mode. */
static int cmp_vals(const char *fx, const char *what, const char *label, const float *cf,
                    const double *cd, const float *tf, const double *td, size_t n)
{
    const tol_t *tl = tol_of(what);
    double maxabs = 0, maxrel = 0, use = 0;
    for (size_t i = 0; i < n; i++) {
        double c = cf ? cf[i] : cd[i], t = tf ? tf[i] : td[i];
        double d = fabs(c - t);
        if (!(d <= maxabs)) maxabs = d;
        if (fabs(t) > 1e-3 && !(d / fabs(t) <= maxrel)) maxrel = d / fabs(t);
        double u = d / (tl->atol + tl->rtol * fabs(t));
        if (!(u <= use)) use = u;
    }
    int ok = use <= 1.0;
    if (!ok || verbose())
        fprintf(stderr, "  %-14s %-22s n=%-5zu maxabs=%-9.3g maxrel=%-9.3g use=%-8.3g %s\n", fx, label,
                n, maxabs, maxrel, use, ok ? "ok" : "FAIL");
    if (!ok && cf && tf) /* close_enough names the worst element */
        close_enough(cf, tf, n, tl->atol, tl->rtol, label);
    return !ok;
}

static int cmp_f(const char *fx, const char *what, const char *label, const float *c, const float *t,
                 size_t n)
{
    return cmp_vals(fx, what, label, c, NULL, t, NULL, n);
}

static int cmp_d(const char *fx, const char *what, const char *label, const double *c, const double *t,
                 size_t n)
{
    return cmp_vals(fx, what, label, NULL, c, NULL, t, n);
}

/* The dense slab as named tensors, from the model's own views (checked to tile the slab in
 * the documented order, which is the order torch_ref.py wrote). */
typedef struct {
    char name[32];
    size_t off, n;
} seg_t;

#define MAX_SEGS 256

/* The op-graph models (model zoo) have no named views into the slab: their fixtures name the
 * segments (slab.names, one per line, and slab.offsets, n + 1 offsets), in the order src/nn/zoo.c
 * registers the parameters. They must tile the slab, and the model's own views (the dense
 * projection) must sit where the fixture says. */
static int slab_segments_named(const ref_file *rf, const rf_model *m, seg_t *s)
{
    const ref_tensor *nt = ref_find(rf, "slab.names"), *ot = ref_find(rf, "slab.offsets");
    if (!nt || !ot || nt->dt != DT_U8 || ot->dt != DT_I32) fail_msg("graph model: fixture lacks slab.names/offsets");
    const int32_t *off = ot->data;
    int ns = (int)ot->n - 1;
    if (ns < 1 || ns > MAX_SEGS) fail_msg("slab.offsets: %d segments", ns);
    const char *p = nt->data; /* NUL-terminated by ref_load */
    for (int i = 0; i < ns; i++) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!len || len >= sizeof s[i].name) fail_msg("slab.names: bad name %d", i);
        memcpy(s[i].name, p, len);
        s[i].name[len] = '\0';
        p = e ? e + 1 : p + len;
        assert_true(off[i + 1] > off[i]);
        s[i].off = (size_t)off[i];
        s[i].n = (size_t)(off[i + 1] - off[i]);
        if (!strcmp(s[i].name, "Wd")) assert_true(m->Wd && s[i].off == (size_t)(m->Wd - m->params));
        if (!strcmp(s[i].name, "bd")) assert_true(m->bd && s[i].off == (size_t)(m->bd - m->params));
    }
    assert_int_equal(*p, '\0');
    return ns;
}

static int slab_segments(const ref_file *rf, const rf_model *m, seg_t *s)
{
    int ns = 0;
    if (m->graph) ns = slab_segments_named(rf, m, s);
#define SEG(ptr, cnt, ...) do { if (ptr) { snprintf(s[ns].name, sizeof s[ns].name, __VA_ARGS__); \
        s[ns].off = (size_t)((ptr) - m->params); s[ns].n = (cnt); ns++; } } while (0)
    for (int l = 0; l < (m->graph ? 0 : m->L); l++) {
        size_t KH = (size_t)m->K * m->H[l], in = l == 0 ? (size_t)m->In : (size_t)m->H[l - 1];
        SEG(m->layer[l].W, in * KH, "L%d.W", l);
        SEG(m->layer[l].b, KH, "L%d.b", l);
        SEG(m->layer[l].alpha, KH, "L%d.alpha", l);
        SEG(m->layer[l].gamma, KH, "L%d.gamma", l);
        SEG(m->layer[l].beta, KH, "L%d.beta", l);
    }
    SEG(m->Wout, (size_t)m->K * m->H[m->L - 1], "Wout");
    SEG(m->bout, (size_t)m->K, "bout");
    if (!m->graph) {
        SEG(m->Wd, (size_t)m->D * m->E, "Wd");
        SEG(m->bd, (size_t)m->E, "bd");
    }
#undef SEG
    size_t o = 0;
    for (int i = 0; i < ns; i++) {
        assert_int_equal(s[i].off, o);
        o += s[i].n;
    }
    assert_int_equal(o, m->n_params);
    return ns;
}

static int cmp_slab(const ref_file *rf, const char *fx, const char *what, const rf_model *m, const float *c,
                    const float *t)
{
    seg_t seg[MAX_SEGS];
    int ns = slab_segments(rf, m, seg), bad = 0;
    for (int i = 0; i < ns; i++) {
        char label[64];
        snprintf(label, sizeof label, "%.24s %.31s", what, seg[i].name);
        bad += cmp_f(fx, what, label, c + seg[i].off, t + seg[i].off, seg[i].n);
    }
    return bad;
}

/* ---- the replay -------------------------------------------------------------------------- */
static int run_fixture(const char *fx)
{
    ref_file rf;
    ref_load(&rf, fx);
    rf_error err;
    char eb[1600];

    /* configuration: defaults + the stored YAML */
    const ref_tensor *ct = ref_find(&rf, "config");
    assert_non_null(ct);
    rf_config cfg;
    rf_config_default(&cfg);
    if (rf_config_load_string(&cfg, ct->data, ct->n, fx, &err) != RF_OK ||
        rf_config_validate(&cfg, &err) != RF_OK)
        fail_msg("%s: config: %s", fx, rf_error_format(&err, eb, sizeof eb));
    const int K = cfg.K;

    /* dataset */
    const ref_tensor *vt = ref_find(&rf, "fields.vocab"), *cat = ref_find(&rf, "data.cat");
    assert_non_null(vt);
    assert_non_null(cat);
    const int F = (int)vt->n;
    const size_t N = cat->dims[0];
    const ref_tensor *dt = ref_find(&rf, "data.dense");
    const int D = dt && dt->ndim == 2 ? (int)dt->dims[1] : 0;
    const int32_t *vocab = vt->data;
    const int32_t *pool = ref_get(&rf, "fields.pooling", DT_I32, (size_t)F);
    rf_dataset *ds = rf_dataset_alloc(N, F, D, K);
    assert_non_null(ds);
    const int32_t *cids = ref_get(&rf, "data.cat", DT_I32, N * F);
    for (size_t i = 0; i < N * F; i++) ds->cat[i] = (uint32_t)cids[i];
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "f%d", f);
        ds->fields[f].vocab = (uint32_t)vocab[f];
        ds->fields[f].multi = pool[f] >= 0;
        ds->fields[f].pooling = pool[f] >= 0 ? pool[f] : 0;
        if (pool[f] < 0) continue;
        char nm[64];
        snprintf(nm, sizeof nm, "data.mv_off.%d", f);
        const int32_t *off = ref_get(&rf, nm, DT_I32, N + 1);
        snprintf(nm, sizeof nm, "data.mv_ids.%d", f);
        const int32_t *ids = ref_get(&rf, nm, DT_I32, (size_t)off[N]);
        ds->mv_off[f] = malloc((N + 1) * sizeof(uint64_t));
        ds->mv_ids[f] = malloc(((size_t)off[N] + 1) * sizeof(uint32_t));
        assert_true(ds->mv_off[f] && ds->mv_ids[f]);
        for (size_t i = 0; i <= N; i++) ds->mv_off[f][i] = (uint64_t)off[i];
        for (int32_t i = 0; i < off[N]; i++) ds->mv_ids[f][i] = (uint32_t)ids[i];
    }
    if (D) memcpy(ds->dense, ref_get(&rf, "data.dense", DT_F32, N * D), N * D * sizeof(float));
    memcpy(ds->labels, ref_get(&rf, "data.labels", DT_F32, N * K), N * K * sizeof(float));
    ds->weight = malloc(N * sizeof(float));
    assert_non_null(ds->weight);
    memcpy(ds->weight, ref_get(&rf, "data.weight", DT_F32, N), N * sizeof(float));
    for (int k = 0; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "y%d", k);

    /* model with the stored initial state */
    rf_model *m = NULL;
    if (rf_config_create_model(&cfg, F, ds->fields, D, &m, &err) != RF_OK)
        fail_msg("%s: model: %s", fx, rf_error_format(&err, eb, sizeof eb));
    g_zoo = m->graph != NULL;
    const size_t NP = m->n_params, NB = m->n_buffers, NR = m->emb_off[F], NE = NR * m->E;
    const float *P0 = ref_get(&rf, "init.params", DT_F32, NP);
    const float *E0 = ref_get(&rf, "init.emb", DT_F32, NE);
    const float *B0 = ref_get(&rf, "init.buffers", DT_F32, NB);
    memcpy(m->params, P0, NP * sizeof(float));
    memcpy(m->emb, E0, NE * sizeof(float));
    if (NB) memcpy(m->buffers, B0, NB * sizeof(float));

    const ref_tensor *brt = ref_find(&rf, "batch.rows");
    assert_non_null(brt);
    const int B = (int)brt->n;
    size_t *rows = malloc((size_t)B * sizeof *rows);
    assert_non_null(rows);
    const int32_t *br = brt->data;
    for (int i = 0; i < B; i++) rows[i] = (size_t)br[i];
    int lc[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) lc[k] = k;
    rf_batch bt = {ds, rows, B, lc};
    rf_workspace *ws = rf_workspace_create(m, B);
    rf_grads *G = rf_grads_create(m);
    assert_non_null(ws);
    int bad = 0;
    const size_t BK = (size_t)B * K;

    /* 1. forward (training mode), loss, backward */
    rf_grads_zero(G);
    if (rf_model_forward(m, ws, &bt, 1, &err) != RF_OK)
        fail_msg("%s: forward: %s", fx, rf_error_format(&err, eb, sizeof eb));
    rf_model_adopt_buffers(m, ws); /* the running statistics of this training forward */
    double per[RF_MAX_TASKS];
    double loss = rf_model_loss(m, ws, &bt, NULL, per);
    assert_int_equal(rf_model_backward(m, ws, &bt, G, NULL), RF_OK);
    bad += cmp_f(fx, "fwd.logits", "fwd.logits", rf_ws_logits(ws), ref_get(&rf, "fwd.logits", DT_F32, BK), BK);
    bad += cmp_f(fx, "fwd.probs", "fwd.probs", rf_ws_probs(ws), ref_get(&rf, "fwd.probs", DT_F32, BK), BK);
    bad += cmp_f(fx, "fwd.cond", "fwd.cond", rf_ws_cond(ws), ref_get(&rf, "fwd.cond", DT_F32, BK), BK);
    bad += cmp_d(fx, "fwd.loss", "fwd.loss", &loss, ref_get(&rf, "fwd.loss", DT_F64, 1), 1);
    bad += cmp_d(fx, "fwd.per_task", "fwd.per_task", per, ref_get(&rf, "fwd.per_task", DT_F64, (size_t)K), (size_t)K);
    bad += cmp_f(fx, "fwd.buffers", "fwd.buffers", m->buffers, ref_get(&rf, "fwd.buffers", DT_F32, NB), NB);
    bad += cmp_slab(&rf, fx, "grad.params", m, rf_grads_dense(G, NULL), ref_get(&rf, "grad.params", DT_F32, NP));
    {
        /* embedding gradient: scatter the row-sparse C gradient; the touched rows must match */
        float *eg = calloc(NE, sizeof(float));
        assert_non_null(eg);
        const uint32_t *er;
        float *g;
        size_t nr = rf_grads_emb(G, &er, &g);
        const int32_t *touched = ref_get(&rf, "grad.touched", DT_I32, NR);
        size_t nt = 0;
        for (size_t r = 0; r < NR; r++) nt += touched[r] != 0;
        for (size_t i = 0; i < nr; i++) {
            assert_true(er[i] < NR);
            if (!touched[er[i]]) {
                fprintf(stderr, "  %s: C touched embedding row %u, torch did not\n", fx, er[i]);
                bad++;
            }
            memcpy(eg + (size_t)er[i] * m->E, g + i * m->E, m->E * sizeof(float));
        }
        if (nr != nt) {
            fprintf(stderr, "  %s: C touched %zu embedding rows, torch %zu\n", fx, nr, nt);
            bad++;
        }
        bad += cmp_f(fx, "grad.emb", "grad.emb", eg, ref_get(&rf, "grad.emb", DT_F32, NE), NE);
        free(eg);
    }
    rf_grads_emb_clear(G);

    /* 2. ten Adam steps from the initial state, one stored batch each */
    memcpy(m->params, P0, NP * sizeof(float));
    memcpy(m->emb, E0, NE * sizeof(float));
    if (NB) memcpy(m->buffers, B0, NB * sizeof(float));
    const ref_tensor *trt = ref_find(&rf, "train.rows");
    assert_non_null(trt);
    assert_int_equal(trt->ndim, 2);
    assert_int_equal(trt->dims[1], (uint32_t)B);
    const int steps = (int)trt->dims[0];
    const int32_t *tr = trt->data;
    double *curve = malloc((size_t)steps * sizeof(double));
    rf_optimizer *opt = rf_adam_create(m, &cfg.train);
    assert_true(curve && opt);
    for (int s = 0; s < steps; s++) {
        size_t srows[4096];
        assert_true(B <= 4096);
        for (int i = 0; i < B; i++) srows[i] = (size_t)tr[(size_t)s * B + i];
        rf_batch sb = {ds, srows, B, lc};
        rf_grads_zero(G);
        if (rf_model_forward(m, ws, &sb, 1, &err) != RF_OK)
            fail_msg("%s: forward: %s", fx, rf_error_format(&err, eb, sizeof eb));
        curve[s] = rf_model_loss(m, ws, &sb, NULL, NULL);
        rf_model_adopt_buffers(m, ws);
        assert_int_equal(rf_model_backward(m, ws, &sb, G, NULL), RF_OK);
        rf_optimizer_step(opt, m, G);
        rf_grads_emb_clear(G);
    }
    assert_int_equal(rf_optimizer_steps(opt), steps);
    bad += cmp_d(fx, "train.loss", "train.loss", curve, ref_get(&rf, "train.loss", DT_F64, (size_t)steps),
                 (size_t)steps);
    bad += cmp_slab(&rf, fx, "final.params", m, m->params, ref_get(&rf, "final.params", DT_F32, NP));
    bad += cmp_f(fx, "final.emb", "final.emb", m->emb, ref_get(&rf, "final.emb", DT_F32, NE), NE);
    bad += cmp_f(fx, "final.buffers", "final.buffers", m->buffers, ref_get(&rf, "final.buffers", DT_F32, NB), NB);

    /* 3. eval-mode forward with the final state (BN uses the running statistics) */
    if (rf_model_forward(m, ws, &bt, 0, &err) != RF_OK)
        fail_msg("%s: forward: %s", fx, rf_error_format(&err, eb, sizeof eb));
    bad += cmp_f(fx, "final.eval_logits", "final.eval_logits", rf_ws_logits(ws),
                 ref_get(&rf, "final.eval_logits", DT_F32, BK), BK);
    bad += cmp_f(fx, "final.eval_probs", "final.eval_probs", rf_ws_probs(ws),
                 ref_get(&rf, "final.eval_probs", DT_F32, BK), BK);

    rf_optimizer_free(opt);
    free(curve);
    rf_grads_free(G);
    rf_workspace_free(ws);
    free(rows);
    rf_model_free(m);
    rf_dataset_free(ds);
    ref_free(&rf);
    return bad;
}

static void check(const char *fx)
{
    int bad = run_fixture(fx);
    if (bad) fail_msg("%s: %d tensor(s) differ from the PyTorch reference", fx, bad);
}

static void test_resflow_2task(void **state) { (void)state; check("resflow_2task"); }
static void test_resflow_tree(void **state) { (void)state; check("resflow_tree"); }
static void test_esmm_3task(void **state) { (void)state; check("esmm_3task"); }
static void test_nse_2task(void **state) { (void)state; check("nse_2task"); }
static void test_mmoe_2task(void **state) { (void)state; check("mmoe_2task"); }
static void test_ple_3task(void **state) { (void)state; check("ple_3task"); }
static void test_aitm_3task(void **state) { (void)state; check("aitm_3task"); }
static void test_twin_both_3task(void **state) { (void)state; check("twin_both_3task"); } /* tests/ref/twin_ref.py */
static void test_twin_before_2task(void **state) { (void)state; check("twin_before_2task"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resflow_2task),
        cmocka_unit_test(test_resflow_tree),
        cmocka_unit_test(test_esmm_3task),
        cmocka_unit_test(test_nse_2task),
        cmocka_unit_test(test_mmoe_2task),
        cmocka_unit_test(test_ple_3task),
        cmocka_unit_test(test_aitm_3task),
        cmocka_unit_test(test_twin_both_3task),
        cmocka_unit_test(test_twin_before_2task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
