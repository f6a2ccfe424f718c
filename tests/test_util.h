/* test_util.h - shared helpers for the cmocka test programs. */
#ifndef RESFLOW_TEST_UTIL_H
#define RESFLOW_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <dirent.h>
#include <unistd.h>

#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/pipeline.h"
#include "resflow/synth.h"

/* Remove the files in dir (not subdirectories) and dir itself. */
static inline void test_rmdir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* A per-run temporary directory for a test program. TEST_TMPDIR("csv") defines g_tmp (its
 * path), group_setup / group_teardown (cmocka group fixtures: create it; remove it and its
 * files) and tmp_path(name) (a path inside it; the last 8 results stay valid). */
#define TEST_TMPDIR(tag)                                                                         \
    static char g_tmp[256];                                                                      \
    static int group_setup(void **state)                                                         \
    {                                                                                            \
        (void)state;                                                                             \
        snprintf(g_tmp, sizeof g_tmp, "/tmp/rf_test_" tag "_XXXXXX");                            \
        return mkdtemp(g_tmp) ? 0 : -1;                                                          \
    }                                                                                            \
    static int group_teardown(void **state)                                                      \
    {                                                                                            \
        (void)state;                                                                             \
        test_rmdir_files(g_tmp);                                                                 \
        return 0;                                                                                \
    }                                                                                            \
    static inline const char *tmp_path(const char *name)                                         \
    {                                                                                            \
        static char paths_[8][512];                                                              \
        static int next_;                                                                        \
        char *r = paths_[next_++ % 8];                                                           \
        snprintf(r, sizeof paths_[0], "%s/%s", g_tmp, name);                                     \
        return r;                                                                                \
    }

/* Directory of the real data sets (../shared/data relative to the repo root), overridable
 * with RESFLOW_DATA. Returns NULL (and prints why) when absent: tests then skip(). */
static inline const char *test_data_dir(void)
{
    const char *d = getenv("RESFLOW_DATA");
    static const char *cands[] = {"../shared/data", "../../shared/data", NULL};
    struct stat st;
    if (d && stat(d, &st) == 0) return d;
    for (int i = 0; cands[i]; i++)
        if (stat(cands[i], &st) == 0) return cands[i];
    fprintf(stderr, "  [skip] ../shared/data not found (set RESFLOW_DATA); real-data test skipped\n");
    return NULL;
}

/* Rewrite a "../shared/data" prefix of a path to the data directory dd in use. */
static inline void test_repath(char *p, size_t n, const char *dd)
{
    const char *pre = "../shared/data";
    size_t lp = strlen(pre), a = strlen(dd), b = strlen(p) - lp;
    if (strncmp(p, pre, lp) || a + b + 1 > n) return;
    memmove(p + a, p + lp, b + 1);
    memcpy(p, dd, a);
}

/* A shipped config (configs/NAME.yaml, from the repo root or build/) into *c with its data paths
 * at the data directory in use and the schema of its tasks: 0, or -1 (the reason printed) when
 * its data is absent: the test then skips. */
static inline int test_shipped_config(rf_config *c, const char *name)
{
    const char *dd = test_data_dir();
    if (!dd) return -1;
    char path[256];
    snprintf(path, sizeof path, "configs/%s.yaml", name);
    if (access(path, R_OK)) snprintf(path, sizeof path, "../configs/%s.yaml", name);
    rf_config_default(c);
    rf_error e;
    assert_int_equal(rf_config_load_file(c, path, &e), RF_OK);
    test_repath(c->data.source, sizeof c->data.source, dd);
    test_repath(c->data.test, sizeof c->data.test, dd);
    if (access(c->data.source, R_OK)) {
        fprintf(stderr, "  [skip] %s not found\n", c->data.source);
        return -1;
    }
    rf_schema_from_tasks(c);
    return 0;
}

/* n floats uniform in [-1, 1) from seed (an LCG: the same matrices on every machine) */
static inline float *test_randm(size_t n, uint64_t seed)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(seed >> 33) / 2147483648.0 - 0.5) * 2.0f;
    }
    return p;
}

/* |a-b| <= atol + rtol*|b| for every element; prints the worst element on failure. */
/* x rounded to bfloat16, to nearest even, as vcvtne2ps2bf16 (finite x), kept in a float. */
static inline float test_bf16r(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static inline int close_enough(const float *a, const float *b, size_t n, double atol, double rtol,
                               const char *label)
{
    double worst = 0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double lim = atol + rtol * fabs((double)b[i]);
        if (!(d <= lim)) ok = 0;
        if (!(d <= worst)) { worst = d; wi = i; }
    }
    if (!ok || getenv("RESFLOW_TEST_VERBOSE"))
        fprintf(stderr, "  %-28s n=%zu maxdiff=%.3g at %zu (%g vs %g) %s\n", label, n, worst, wi,
                n ? a[wi] : 0.0, n ? b[wi] : 0.0, ok ? "ok" : "FAIL");
    return ok;
}

/* An environment switch (RESFLOW_BF16=off, RESFLOW_INT8=off) for a while, as on a CPU without the
 * instructions (rf_bf16_supported / rf_int8_supported say 0); test_env_restore puts back the
 * environment the test started with. */
typedef struct {
    const char *var;
    int had;
    char was[64];
} test_env_saved;
static inline test_env_saved test_env_off(const char *var)
{
    const char *env = getenv(var);
    test_env_saved s = {var, env != NULL, ""};
    snprintf(s.was, sizeof s.was, "%s", env ? env : "");
    setenv(var, "off", 1);
    return s;
}
static inline void test_env_restore(const test_env_saved *s)
{
    if (s->had) setenv(s->var, s->was, 1);
    else unsetenv(s->var);
}
static inline test_env_saved test_bf16_off(void) { return test_env_off("RESFLOW_BF16"); }
static inline void test_bf16_restore(const test_env_saved *s) { test_env_restore(s); }

/* The options of a small world of the search simulator: rows impressions from seed over users /
 * items / queries entities, click rate 0.1 and conversion rate cvr. */
static inline rf_synth_opts test_sim_opts(size_t rows, uint64_t seed, uint32_t users, uint32_t items,
                                          uint32_t queries, float cvr)
{
    rf_synth_opts o = rf_synth_default();
    o.rows = rows;
    o.seed = seed;
    o.n_users = users;
    o.n_items = items;
    o.n_queries = queries;
    o.ctr = 0.1f;
    o.cvr = cvr;
    return o;
}

/* The simulated dataset of o (generation asserted to succeed). */
static inline rf_dataset *test_sim_gen(const rf_synth_opts *o)
{
    rf_dataset *ds = NULL;
    rf_error e;
    assert_int_equal(rf_synth_generate(o, &ds, &e), RF_OK);
    return ds;
}

/* A small world of the search simulator (test_sim_opts). */
static inline rf_dataset *test_sim(size_t rows, uint64_t seed, uint32_t users, uint32_t items, uint32_t queries,
                                   float cvr)
{
    rf_synth_opts o = test_sim_opts(rows, seed, users, items, queries, cvr);
    return test_sim_gen(&o);
}

/* Shrink cfg to a small tower model: embeddings 8, hidden 32-16 with BatchNorm, batch 128,
 * weight decay 1e-3, no progress lines; lr > 0 also sets the learning rate. */
static inline void test_small_cfg(rf_config *cfg, float lr)
{
    cfg->model.emb_dim = 8;
    cfg->model.n_hidden = 2;
    cfg->model.hidden[0] = 32;
    cfg->model.hidden[1] = 16;
    cfg->model.bn = RF_BN_BATCH;
    cfg->train.batch_size = 128;
    cfg->train.weight_decay = 1e-3f;
    if (lr > 0) cfg->train.lr = lr;
    cfg->train.log_every = 1000000;
}

/* A model of type t for ds from the default config shrunk by test_small_cfg (cfg: its config). */
static inline rf_model *test_small_model(const rf_dataset *ds, rf_model_type t, float lr, rf_config *cfg)
{
    rf_config_default(cfg);
    cfg->model.type = t;
    test_small_cfg(cfg, lr);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

#endif
