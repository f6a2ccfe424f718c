/* pipeline.c - data configuration -> train/valid/test datasets (see pipeline.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logf.h"
#include "resflow/cache.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"

/* Regression (regression.h): the labels are the numeric target and target>=v_k for explicit
 * thresholds, whatever the head and the (not yet resolved) task list. */
static void regression_schema(rf_config *cfg)
{
    rf_schema *s = &cfg->data.schema;
    const rf_regression_cfg *rg = &cfg->regression;
    s->K = 0;
    snprintf(s->label[s->K++], sizeof s->label[0], "%s", rg->target);
    for (int k = 1; k < rg->thresholds.n && s->K < RF_MAX_LABELS; k++)
        rf_regression_label(rg->target, rg->thresholds.v[k], s->label[s->K++]);
    size_t tl = strlen(rg->target);
    for (int i = 0; i < s->nnumeric; i++)
        if (!strncmp(s->numeric[i], rg->target, tl) && (!s->numeric[i][tl] || s->numeric[i][tl] == ':')) return;
    if (s->nnumeric < RF_MAX_LABELS) snprintf(s->numeric[s->nnumeric++], sizeof s->numeric[0], "%s", rg->target);
}

void rf_schema_from_tasks(rf_config *cfg)
{
    rf_schema *s = &cfg->data.schema;
    s->labels_binary = 1;
    if (cfg->regression.target[0]) {
        regression_schema(cfg);
        return;
    }
    s->K = cfg->K;
    for (int k = 0; k < cfg->K; k++) snprintf(s->label[k], sizeof s->label[k], "%s", cfg->tasks[k].label);
}

/* A validation/test file of a text source, read with the encoders fitted on the training rows. */
static rf_status load_extra(const rf_config *cfg, const rf_encoders *enc, const char *path,
                            rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    rf_config c = *cfg;
    rf_schema_from_tasks(&c);
    rf_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.skip_bad_rows = cfg->train.skip_bad_rows;
    lo.threads = cfg->train.threads;
    rf_encoders *e = (rf_encoders *)enc;
    rf_status st = rf_load_csv(path, &c.data.schema, &e, &lo, out, err);
    *bad_rows = lo.bad_rows;
    return st;
}

/* The schema a loaded model reads (in c->data.schema, c a copy of its configuration) and its
 * encoders: the stored ones, or (models without stored encoders, e.g. simulator models) its own
 * fields and dense names with integer ids or vocabulary keys, in *ids (the caller frees). */
static rf_status model_schema(const rf_loaded_model *lm, int with_labels, rf_config *c, rf_encoders **enc,
                              rf_encoders **ids, rf_error *err)
{
    const rf_model_info *m = rf_model_info_of(lm->model);
    const rf_field *mf = rf_model_spec_of(lm->model)->fields;
    *c = lm->cfg;
    rf_schema_from_tasks(c);
    rf_schema *s = &c->data.schema;
    if (!with_labels) s->K = 0;
    int fitted = lm->enc && lm->enc->field && s->F == m->F && s->D == m->D;
    if (!fitted) {
        /* the format the stored configuration's */
        s->F = m->F;
        for (int f = 0; f < m->F; f++) {
            memset(&s->cat[f], 0, sizeof s->cat[f]);
            snprintf(s->cat[f].name, RF_NAME_MAX, "%.*s", RF_NAME_MAX - 1, mf[f].name);
            s->cat[f].multi = mf[f].multi ? 1 : 0;
            s->cat[f].pooling = mf[f].multi ? mf[f].pooling : RF_POOL_SUM;
            s->cat[f].sep = mf[f].sep;
        }
        s->D = m->D;
        for (int d = 0; d < m->D; d++) snprintf(s->dense[d], RF_NAME_MAX, "%s", lm->dense_names[d]);
    }
    *ids = NULL;
    *enc = lm->enc;
    uint32_t vocab[RF_MAX_FIELDS];
    for (int f = 0; f < m->F; f++)
        vocab[f] = (uint32_t)(rf_model_emb_offset(lm->model, f + 1) - rf_model_emb_offset(lm->model, f));
    if (!*enc && !(*enc = *ids = rf_encoders_ids(m->F, vocab))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    return RF_OK;
}

rf_status rf_row_encoder_for_model(const rf_loaded_model *lm, rf_row_encoder **out, rf_error *err)
{
    rf_config c;
    rf_encoders *e, *ids;
    *out = NULL;
    rf_status st = model_schema(lm, 0, &c, &e, &ids, err);
    if (!st) st = rf_row_encoder_create(&c.data.schema, e, out, err);
    rf_encoders_free(ids); /* integer ids: nothing of them is kept */
    return st;
}

const char *rf_load_bad_summary(const rf_load_opts *lo, const char *path, char *buf, size_t n)
{
    snprintf(buf, n, "skipped %zu bad row%s of %s (--skip-bad-rows)%s %s%s", lo->bad_rows, lo->bad_rows == 1 ? "" : "s",
             path, lo->bad_rows > 5 ? "; the first 5:" : ":", lo->bad_first, lo->bad_rows > 5 ? "; ..." : "");
    return buf;
}

rf_status rf_data_load_for_model_ex(const rf_loaded_model *lm, const char *path, int with_labels, rf_load_opts *lo,
                                    rf_dataset **out, rf_error *err)
{
    rf_config c;
    rf_encoders *e, *ids;
    lo->bad_rows = 0;
    lo->bad_first[0] = '\0';
    rf_status st = model_schema(lm, with_labels, &c, &e, &ids, err);
    if (st) return st;
    rf_schema *s = &c.data.schema;
    rf_load_opts l;
    memset(&l, 0, sizeof l);
    l.skip_bad_rows = lo->skip_bad_rows;
    l.threads = c.train.threads;
    st = rf_load_csv(path, s, &e, &l, out, err);
    lo->bad_rows = l.bad_rows;
    memcpy(lo->bad_first, l.bad_first, sizeof lo->bad_first);
    rf_encoders_free(ids);
    return st;
}

rf_status rf_data_load_for_model(const rf_loaded_model *lm, const char *path, int skip_bad_rows,
                                 int with_labels, rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    rf_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.skip_bad_rows = skip_bad_rows;
    rf_status st = rf_data_load_for_model_ex(lm, path, with_labels, &lo, out, err);
    if (bad_rows) *bad_rows = lo.bad_rows;
    return st;
}

/* data.split: random - the rows of role r (rf_split_roles: 0 train, 1 valid, 2 test) of all, in
 * their order, into parts[r] for each r with want[r] (the others left NULL). */
static rf_status split_random(const rf_data_cfg *dc, const rf_dataset *all, float vf, float tf, const int want[3],
                              rf_dataset **parts, rf_error *err)
{
    uint8_t *role = malloc(all->n ? all->n : 1);
    size_t *rows = malloc((all->n ? all->n : 1) * sizeof *rows);
    rf_status st = RF_OK;
    if (!role || !rows) st = rf_errorf(err, RF_ENOMEM, "out of memory splitting the data");
    if (!st) rf_split_roles(all->group, all->n, dc->split_seed, vf, tf, role);
    for (int r = 0; r < 3 && !st; r++) {
        if (!want[r]) continue;
        size_t m = 0;
        for (size_t i = 0; i < all->n; i++)
            if (role[i] == r) rows[m++] = i;
        if (!(parts[r] = rf_dataset_slice(all, rows, m))) st = rf_errorf(err, RF_ENOMEM, "out of memory splitting the data");
    }
    free(role);
    free(rows);
    return st;
}

rf_status rf_data_load_test_for_model_ex(const rf_loaded_model *lm, int with_labels, rf_load_opts *lo,
                                         rf_dataset **out, rf_error *err)
{
    const rf_data_cfg *dc = &lm->cfg.data;
    *out = NULL;
    if (!strcmp(dc->source, "synth"))
        return rf_errorf(err, RF_EUSAGE, "the model was trained on the simulator: it has no data file to read");
    if (dc->test[0]) return rf_data_load_for_model_ex(lm, dc->test, with_labels, lo, out, err);
    /* the position split of the source, as in training (it depends on the rows kept - read with
     * their labels, like in training, whatever with_labels says - and their group keys, not on
     * the encoders) */
    rf_dataset *all = NULL;
    rf_status st = rf_data_load_for_model_ex(lm, dc->source, 1, lo, &all, err);
    if (st) return st;
    if (dc->split == RF_SPLIT_RANDOM) {
        rf_dataset *parts[3] = {NULL, NULL, NULL};
        st = split_random(dc, all, dc->valid[0] ? 0 : dc->valid_frac, dc->test_frac, (const int[3]){0, 0, 1}, parts, err);
        rf_dataset_free(all);
        *out = parts[2];
        return st;
    }
    size_t a, b;
    rf_split_points(all->group, all->n, dc->valid[0] ? 0 : dc->valid_frac, dc->test_frac, &a, &b);
    *out = rf_dataset_range(all, b, all->n);
    rf_dataset_free(all);
    return *out ? RF_OK : rf_errorf(err, RF_ENOMEM, "out of memory");
}

rf_status rf_data_load_test_for_model(const rf_loaded_model *lm, int skip_bad_rows, int with_labels,
                                      rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    rf_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.skip_bad_rows = skip_bad_rows;
    rf_status st = rf_data_load_test_for_model_ex(lm, with_labels, &lo, out, err);
    if (bad_rows) *bad_rows = lo.bad_rows;
    return st;
}

/* Summary of fitted encoders: kinds and total ids. */
static void log_encoders(const rf_encoders *enc, rf_log_fn log, void *ud)
{
    if (!log || !enc || !enc->field) return;
    int nk[4] = {0};
    uint64_t ids = 0;
    for (int f = 0; f < enc->F; f++) {
        if (enc->field[f].kind >= 0 && enc->field[f].kind < 4) nk[enc->field[f].kind]++;
        ids += enc->field[f].size;
    }
    int nn = 0;
    for (int d = 0; d < enc->D && enc->dense; d++) nn += enc->dense[d].norm != RF_NORM_NONE;
    logf_(log, ud,
          "encoders (fitted on the training rows): %d vocabulary, %d hashed, %d bucketized field%s, "
          "%llu embedding rows; %d of %d dense features normalised",
          nk[RF_ENC_VOCAB], nk[RF_ENC_HASH], nk[RF_ENC_BUCKET], enc->F == 1 ? "" : "s",
          (unsigned long long)ids, nn, enc->D);
}

rf_status rf_data_split(const rf_config *cfg, rf_dataset *all, rf_splits *out, rf_error *err)
{
    const rf_data_cfg *dc = &cfg->data;
    float vf = dc->valid[0] ? 0 : dc->valid_frac, tf = dc->test[0] ? 0 : dc->test_frac;
    if (dc->split == RF_SPLIT_RANDOM) {
        rf_dataset *parts[3] = {NULL, NULL, NULL};
        rf_status st = split_random(dc, all, vf, tf, (const int[3]){1, 1, 1}, parts, err);
        out->train = parts[0];
        out->valid = parts[1];
        out->test = parts[2];
        return st;
    }
    size_t a, b;
    rf_split_points(all->group, all->n, vf, tf, &a, &b);
    out->train = rf_dataset_range(all, 0, a);
    out->valid = rf_dataset_range(all, a, b);
    out->test = rf_dataset_range(all, b, all->n);
    if (!out->train || !out->valid || !out->test) return rf_errorf(err, RF_ENOMEM, "out of memory splitting the data");
    return RF_OK;
}

static void apply_stream(const rf_schema *s, rf_dataset *train, int mapped)
{
    int block = s->shuffle == RF_SHUFFLE_BLOCK || (s->shuffle == RF_SHUFFLE_AUTO && mapped);
    train->shuffle_block = block ? (s->shuffle_block ? s->shuffle_block : 65536) : 0;
    train->shuffle_window = s->shuffle_window > 0 ? s->shuffle_window : 8;
}

static rf_status load_splits(const rf_config *cfg, int rank, int nproc, rf_splits *out, rf_log_fn log, void *ud,
                             rf_error *err)
{
    memset(out, 0, sizeof *out);
    const rf_data_cfg *dc = &cfg->data;
    rf_dataset *all = NULL;
    rf_status st;
    rf_config c = *cfg;
    rf_schema_from_tasks(&c);
    if (strcmp(dc->source, "synth") == 0) {
        rf_synth_opts so = dc->synth;
        so.threads = cfg->train.threads;
        if ((st = rf_synth_generate(&so, &all, err))) return st;
        if ((st = rf_dataset_derive_labels(all, c.data.schema.label, c.data.schema.K, err))) {
            rf_dataset_free(all);
            return st;
        }
        logf_(log, ud, "data: simulator (%s), %zu rows, %d fields, seed %llu",
              so.preset == RF_SYNTH_KUAIRAND ? "kuairand" : so.preset == RF_SYNTH_RATING ? "rating" : so.preset == RF_SYNTH_ECOM ? "ecom" : "search",
              all->n, all->F, (unsigned long long)so.seed);
    } else if (dc->schema.cache[0]) {
        return rf_cache_load_shard(cfg, rank, nproc, out, log, ud, err);
    } else {
        rf_load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.skip_bad_rows = cfg->train.skip_bad_rows;
        lo.threads = cfg->train.threads;
        lo.valid_frac = dc->valid[0] ? 0 : dc->valid_frac;
        lo.test_frac = dc->test[0] ? 0 : dc->test_frac;
        lo.split_random = dc->split == RF_SPLIT_RANDOM;
        lo.split_seed = dc->split_seed;
        if ((st = rf_load_csv(dc->source, &c.data.schema, &out->enc, &lo, &all, err))) return st;
        out->bad_rows += lo.bad_rows;
        logf_(log, ud, "data: %s, %zu rows, %d categorical + %d dense features%s%s", dc->source, all->n, all->F,
              all->D, lo.bad_rows ? " (bad rows skipped, see summary)" : "",
              lo.filtered_rows ? " (some rows removed by data.filter)" : "");
        if (lo.filtered_rows) logf_(log, ud, "data.filter removed %zu rows", lo.filtered_rows);
        if (lo.bad_rows)
        {
            char msg[1024];
            logf_(log, ud, "%s", rf_load_bad_summary(&lo, dc->source, msg, sizeof msg));
        }
        log_encoders(out->enc, log, ud);
    }
    st = rf_data_split(cfg, all, out, err);
    rf_dataset_free(all);
    if (st) {
        rf_splits_free(out);
        return st;
    }
    for (int which = 0; which < 2; which++) {
        const char *path = which ? dc->test : dc->valid;
        if (!path[0]) continue;
        if (strcmp(dc->source, "synth") == 0) {
            rf_splits_free(out);
            return rf_errorf(err, RF_EUSAGE, "data.%s: a separate file needs a file source, not the simulator",
                             which ? "test" : "valid");
        }
        rf_dataset *d = NULL;
        size_t bad = 0;
        if ((st = load_extra(cfg, out->enc, path, &d, &bad, err))) {
            rf_splits_free(out);
            return st;
        }
        out->bad_rows += bad;
        rf_dataset **slot = which ? &out->test : &out->valid;
        rf_dataset_free(*slot);
        *slot = d;
    }
    if (out->train->n == 0) {
        rf_splits_free(out);
        return rf_errorf(err, RF_EDATA, "no training rows left after the valid/test split");
    }
    apply_stream(&dc->schema, out->train, 0);
    return RF_OK;
}

/* Raw dense columns (no normaliser) whose training values are far outside about [-10, 10]
 * (|mean| or sd above 100): a warning per column, on a strided sample of at most 100,000 rows
 * (a cache is not paged in whole for it). */
#define UNSCALED_LIMIT 100.0
static void warn_unscaled(const rf_dataset *tr, const rf_encoders *enc, rf_log_fn log, void *ud)
{
    if (!log || !tr || !tr->dense || tr->n == 0) return;
    size_t step = tr->n > 100000 ? tr->n / 100000 : 1;
    int shown = 0, more = 0;
    for (int d = 0; d < tr->D; d++) {
        if (enc && enc->dense && d < enc->D && enc->dense[d].norm != RF_NORM_NONE) continue;
        double s = 0, s2 = 0;
        size_t n = 0;
        for (size_t i = 0; i < tr->n; i += step, n++) {
            double v = tr->dense[i * (size_t)tr->D + d];
            s += v;
            s2 += v * v;
        }
        double mean = s / (double)n, var = s2 / (double)n - mean * mean;
        double sd = sqrt(var > 0 ? var : 0);
        if (!(fabs(mean) > UNSCALED_LIMIT || sd > UNSCALED_LIMIT)) continue;
        if (shown++ < 5)
            logf_(log, ud,
                  "warning: dense column %s is used unscaled (mean %.4g, sd %.4g on the training rows); "
                  "inputs far outside [-10, 10] slow or spoil training: set data.normalize: standardize "
                  "(or list it as %s:standardize in data.dense)",
                  tr->dense_names ? tr->dense_names[d] : "?", mean, sd, tr->dense_names ? tr->dense_names[d] : "?");
        else
            more++;
    }
    if (more) logf_(log, ud, "warning: %d more dense columns are used unscaled (data.normalize: standardize)", more);
}

rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud, rf_error *err)
{
    return rf_data_load_shard(cfg, 0, 1, out, log, ud, err);
}

rf_status rf_data_load_shard(const rf_config *cfg, int rank, int nproc, rf_splits *out, rf_log_fn log, void *ud,
                             rf_error *err)
{
    rf_status st = load_splits(cfg, rank, nproc, out, log, ud, err);
    if (!st) warn_unscaled(out->train, out->enc, log, ud);
    if (st || !cfg->regression.target[0] || cfg->regression.thresholds.n) return st;
    /* regression with quantile thresholds: fitted on the training rows, then the labels */
    rf_floats thr;
    rf_dataset *sets[3] = {out->train, out->valid, out->test};
    st = rf_regression_thresholds(cfg, out->train, &thr, err);
    for (int i = 0; i < 3 && !st; i++) st = rf_regression_derive_labels(cfg, &thr, sets[i], err);
    if (st) rf_splits_free(out);
    return st;
}

void rf_splits_free(rf_splits *s)
{
    rf_dataset_free(s->train);
    rf_dataset_free(s->valid);
    rf_dataset_free(s->test);
    rf_encoders_free(s->enc);
    memset(s, 0, sizeof *s);
}
