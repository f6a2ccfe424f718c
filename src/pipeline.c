/* pipeline.c - data configuration -> train/valid/test datasets (see pipeline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/pipeline.h"

void rf_schema_from_tasks(rf_config *cfg)
{
    rf_schema *s = &cfg->data.schema;
    s->K = cfg->K;
    s->labels_binary = 1;
    for (int k = 0; k < cfg->K; k++) snprintf(s->label[k], sizeof s->label[k], "%s", cfg->tasks[k].label);
}

static rf_dataset *range(const rf_dataset *ds, size_t lo, size_t hi)
{
    size_t *rows = malloc((hi > lo ? hi - lo : 1) * sizeof *rows);
    if (!rows) return NULL;
    for (size_t i = lo; i < hi; i++) rows[i - lo] = i;
    rf_dataset *out = rf_dataset_slice(ds, rows, hi - lo);
    free(rows);
    return out;
}

/* Move the split point forward to the next group boundary so a query is not split. */
static size_t align_group(const rf_dataset *ds, size_t at)
{
    if (!ds->group) return at;
    while (at > 0 && at < ds->n && ds->group[at] == ds->group[at - 1]) at++;
    return at;
}

/* A validation/test file of a CSV source, read with the encoders fitted on the training file. */
static rf_status load_extra(const rf_config *cfg, const rf_encoders *enc, const char *path,
                            rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    rf_config c = *cfg;
    rf_schema_from_tasks(&c);
    rf_load_opts lo = {cfg->train.skip_bad_rows, 0, 0};
    rf_encoders *e = (rf_encoders *)enc;
    rf_status st = rf_load_csv(path, &c.data.schema, &e, &lo, out, err);
    *bad_rows = lo.bad_rows;
    return st;
}

rf_status rf_data_load_for_model(const rf_loaded_model *lm, const char *path, int skip_bad_rows,
                                 int with_labels, rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    const rf_model *m = lm->model;
    rf_config c = m->cfg;
    rf_schema_from_tasks(&c);
    rf_schema *s = &c.data.schema;
    if (!with_labels) s->K = 0;
    s->F = m->F;
    for (int f = 0; f < m->F; f++) {
        snprintf(s->cat[f].name, RF_NAME_MAX, "%s", m->fields[f].name);
        s->cat[f].multi = m->pooling[f] >= 0;
        s->cat[f].pooling = m->pooling[f] >= 0 ? m->pooling[f] : RF_POOL_SUM;
        s->cat[f].sep = m->fields[f].sep;
    }
    s->D = m->D;
    for (int d = 0; d < m->D; d++) snprintf(s->dense[d], RF_NAME_MAX, "%s", lm->dense_names[d]);
    rf_encoders *ids = NULL, *e = lm->enc;
    if (!e && !(e = ids = rf_encoders_ids(m->F, m->vocab))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_load_opts lo = {skip_bad_rows, 0, 0};
    rf_status st = rf_load_csv(path, s, &e, &lo, out, err);
    if (bad_rows) *bad_rows = lo.bad_rows;
    rf_encoders_free(ids);
    return st;
}

rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud, rf_error *err)
{
    memset(out, 0, sizeof *out);
    const rf_data_cfg *dc = &cfg->data;
    rf_dataset *all = NULL;
    rf_status st;
    char line[1024];
    if (strcmp(dc->source, "synth") == 0) {
        rf_synth_opts so = dc->synth;
        so.tasks = cfg->data.synth.tasks;
        if ((st = rf_synth_generate(&so, &all, err))) return st;
        if (log) {
            snprintf(line, sizeof line, "data: simulator, %zu rows, %d fields, seed %llu", all->n, all->F,
                     (unsigned long long)so.seed);
            log(ud, line);
        }
    } else {
        rf_config c = *cfg;
        rf_schema_from_tasks(&c);
        rf_load_opts lo = {cfg->train.skip_bad_rows, 0, 0};
        if ((st = rf_load_csv(dc->source, &c.data.schema, &out->enc, &lo, &all, err))) return st;
        out->bad_rows += lo.bad_rows;
        if (log) {
            snprintf(line, sizeof line, "data: %s, %zu rows, %d categorical + %d dense features%s", dc->source,
                     all->n, all->F, all->D, lo.bad_rows ? " (bad rows skipped, see summary)" : "");
            log(ud, line);
        }
    }
    size_t n = all->n;
    size_t n_test = dc->test[0] ? 0 : (size_t)(dc->test_frac * n);
    size_t n_valid = dc->valid[0] ? 0 : (size_t)(dc->valid_frac * n);
    size_t a = align_group(all, n - n_test - n_valid), b = align_group(all, n - n_test);
    if (a > b) a = b;
    out->train = range(all, 0, a);
    out->valid = range(all, a, b);
    out->test = range(all, b, n);
    rf_dataset_free(all);
    if (!out->train || !out->valid || !out->test) {
        rf_splits_free(out);
        return rf_errorf(err, RF_ENOMEM, "out of memory splitting the data");
    }
    for (int which = 0; which < 2; which++) {
        const char *path = which ? dc->test : dc->valid;
        if (!path[0]) continue;
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
    return RF_OK;
}

void rf_splits_free(rf_splits *s)
{
    rf_dataset_free(s->train);
    rf_dataset_free(s->valid);
    rf_dataset_free(s->test);
    rf_encoders_free(s->enc);
    memset(s, 0, sizeof *s);
}
