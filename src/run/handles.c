/* handles.c - opaque handles and plain arrays over the library, for bindings (handles.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logf.h"
#include "resflow/evalreport.h"
#include "resflow/frame.h"
#include "resflow/handles.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"

rf_config *rf_config_new(void)
{
    rf_config *c = malloc(sizeof *c);
    if (c) rf_config_default(c);
    return c;
}

rf_config *rf_config_clone(const rf_config *c)
{
    rf_config *d = malloc(sizeof *d);
    if (d) *d = *c;
    return d;
}

void rf_config_free(rf_config *c) { free(c); }

size_t rf_abi_sizeof(const char *type)
{
    static const struct { const char *name; size_t size; } t[] = {
        {"rf_error", sizeof(rf_error)},           {"rf_eval_result", sizeof(rf_eval_result)},
        {"rf_train_summary", sizeof(rf_train_summary)}, {"rf_task_metrics", sizeof(rf_task_metrics)},
        {"rf_column", sizeof(rf_column)},         {"rf_dataset", sizeof(rf_dataset)},
        {"rf_eval_opts", sizeof(rf_eval_opts)},
    };
    for (size_t i = 0; type && i < sizeof t / sizeof *t; i++)
        if (!strcmp(type, t[i].name)) return t[i].size;
    return 0;
}

rf_status rf_config_simulate(const rf_config *cfg, const char *csv_path, rf_error *err)
{
    rf_synth_opts o = cfg->data.synth;
    rf_dataset *ds = NULL;
    o.threads = cfg->train.threads;
    rf_status st = rf_synth_generate(&o, &ds, err);
    if (!st) st = rf_dataset_write_csv(ds, csv_path, err);
    rf_dataset_free(ds);
    return st;
}

rf_status rf_model_open(const char *path, rf_loaded_model **out, rf_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_status st = rf_model_load(path, *out, err);
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

void rf_model_close(rf_loaded_model *lm)
{
    rf_loaded_model_free(lm);
    free(lm);
}

rf_status rf_model_write(const rf_loaded_model *lm, const char *path, rf_error *err)
{
    rf_status st = rf_model_save(lm->model, &lm->cfg, lm->enc, (const char(*)[RF_NAME_MAX])lm->dense_names,
                                 (const char(*)[RF_NAME_MAX])lm->label_names, path, err);
    if (!st && lm->fusion.kind != RF_FUSION_NONE) st = rf_model_set_fusion(path, path, &lm->fusion, err);
    return st;
}

const rf_model *rf_model_of(const rf_loaded_model *lm) { return lm->model; }
const rf_config *rf_model_config(const rf_loaded_model *lm) { return &lm->cfg; }
int rf_model_ntasks(const rf_loaded_model *lm) { return rf_model_info_of(lm->model)->K; }

const char *rf_model_task(const rf_loaded_model *lm, int k, int *parent)
{
    if (k < 0 || k >= rf_model_ntasks(lm)) return NULL;
    if (parent) *parent = rf_model_info_of(lm->model)->parent[k];
    return rf_model_spec_of(lm->model)->tasks[k].name;
}

int rf_model_ncolumns(const rf_loaded_model *lm) { return lm->F + lm->D; }

const char *rf_model_column(const rf_loaded_model *lm, int i)
{
    if (i < 0 || i >= lm->F + lm->D) return NULL;
    return i < lm->F ? rf_model_spec_of(lm->model)->fields[i].name : lm->dense_names[i - lm->F];
}

int rf_model_nlabels(const rf_loaded_model *lm) { return lm->label_names ? lm->K_labels : 0; }

const char *rf_model_label(const rf_loaded_model *lm, int j)
{
    return j >= 0 && j < rf_model_nlabels(lm) ? lm->label_names[j] : NULL;
}

const char *rf_model_regression(const rf_loaded_model *lm, int *traditional, const float **thresholds, int *n)
{
    const rf_regression_cfg *rg = &rf_model_spec_of(lm->model)->regression;
    if (traditional) *traditional = rg->head == RF_REG_TRADITIONAL;
    if (thresholds) *thresholds = rg->thresholds.v;
    if (n) *n = rg->thresholds.n;
    return rg->target;
}

int rf_model_fusion_spec(const rf_loaded_model *lm, char *buf, size_t n)
{
    if (n) buf[0] = '\0';
    if (lm->fusion.kind == RF_FUSION_NONE) return 0;
    rf_fusion_spec(&lm->fusion, buf, n);
    return 1;
}

rf_status rf_model_data(const rf_loaded_model *lm, const char *path, int with_labels, int skip_bad_rows,
                        rf_dataset **out, size_t *bad_rows, rf_error *err)
{
    size_t bad_ = 0;
    if (!bad_rows) bad_rows = &bad_;
    *bad_rows = 0;
    *out = NULL;
    int skip = skip_bad_rows || lm->cfg.train.skip_bad_rows;
    if (path) return rf_data_load_for_model(lm, path, skip, with_labels, out, bad_rows, err);
    if (strcmp(lm->cfg.data.source, "synth") != 0)
        return rf_data_load_test_for_model(lm, skip, with_labels, out, bad_rows, err);
    rf_splits sp; /* the simulator's test split, regenerated (no encoders to re-fit) */
    rf_status st = rf_data_load(&lm->cfg, &sp, NULL, NULL, err);
    if (st) return st;
    *out = sp.test;
    sp.test = NULL;
    rf_splits_free(&sp);
    return RF_OK;
}

size_t rf_dataset_rows(const rf_dataset *ds) { return ds->n; }

rf_status rf_model_predict_all(const rf_loaded_model *lm, const rf_dataset *ds, int threads, int precision, float *P,
                               float *C, float *S, float *EV, rf_error *err)
{
    const rf_model *m = lm->model;
    const rf_model_spec *sp = rf_model_spec_of(m);
    const int *parent = rf_model_info_of(m)->parent;
    int K = rf_model_info_of(m)->K, fused = S && lm->fusion.kind != RF_FUSION_NONE;
    size_t n = ds->n;
    float *C_own = NULL;
    if (!C && fused && !(C = C_own = malloc((n ? n : 1) * (size_t)K * sizeof *C)))
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_predict_opts po = {threads ? threads : lm->cfg.train.threads, precision};
    rf_status st = rf_predict_ex(m, ds, &po, P, C, err);
    if (!st && EV && sp->regression.target[0]) st = rf_regression_predict(sp, P, n, EV, err);
    if (!st && fused) { /* the formula's terms: task probabilities and child|parent conditionals */
        rf_score_col cols[2 * RF_MAX_TASKS];
        char names[RF_MAX_TASKS][RF_NAME_MAX];
        int nc = 0;
        for (int k = 0; k < K; k++) cols[nc++] = (rf_score_col){sp->tasks[k].name, P + k, (size_t)K};
        for (int k = 0; k < K; k++) {
            if (parent[k] < 0) continue;
            char nm[2 * RF_NAME_MAX + 2];
            snprintf(nm, sizeof nm, "%s|%s", sp->tasks[k].name, sp->tasks[parent[k]].name);
            if (strlen(nm) >= RF_NAME_MAX) continue;
            snprintf(names[k], RF_NAME_MAX, "%.63s", nm);
            cols[nc++] = (rf_score_col){names[k], C + k, (size_t)K};
        }
        st = rf_fusion_apply(&lm->fusion, cols, nc, n, S, err);
    }
    free(C_own);
    return st;
}
