/* exp_result.c - run results on disk: one JSON file per run ("resflow-run-1"), written through
 * the atomic writer, and read back (contract in include/resflow/lab/exp_result.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/afile.h"
#include "lab/exp_int.h"

/* ---- run results on disk ------------------------------------------------------------------------ */

json_t *rf_exp_json_num_(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double get_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

rf_status rf_run_result_write(const rf_run_result *r, const char *path, rf_error *err)
{
    json_t *j = json_object(), *tasks = json_array();
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
    json_object_set_new(j, "format", json_string("resflow-run-1"));
    json_object_set_new(j, "config_hash", json_string(hash));
    json_object_set_new(j, "status", json_string(r->status == RF_OK ? "ok" : r->status == RF_ENUMERIC ? "diverged" : "failed"));
    if (r->status != RF_OK) json_object_set_new(j, "error", json_string(r->error));
    json_object_set_new(j, "model_type", json_string(r->model_type));
    json_object_set_new(j, "seed", json_integer((json_int_t)r->seed));
    for (int k = 0; k < r->K; k++) {
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(r->task[k]));
        json_object_set_new(t, "parent", r->parent[k] >= 0 ? json_string(r->task[r->parent[k]]) : json_null());
        json_object_set_new(t, "auc", rf_exp_json_num_(r->auc[k]));
        json_object_set_new(t, "cond_auc", rf_exp_json_num_(r->cond_auc[k]));
        json_object_set_new(t, "increase_share", rf_exp_json_num_(r->increase[k]));
        json_object_set_new(t, "logloss", rf_exp_json_num_(r->logloss[k]));
        json_object_set_new(t, "oracle_auc", rf_exp_json_num_(r->oracle_auc[k]));
        if (isfinite(r->es_auc[k])) json_object_set_new(t, "es_auc", rf_exp_json_num_(r->es_auc[k]));
        if (isfinite(r->es_oracle[k])) json_object_set_new(t, "es_oracle", rf_exp_json_num_(r->es_oracle[k]));
        if (r->task_mse[k]) json_object_set_new(t, "loss", json_string("mse"));
        json_array_append_new(tasks, t);
    }
    json_object_set_new(j, "tasks", tasks);
    if (r->target[0])
        json_object_set_new(j, "regression", json_pack("{s:s,s:o,s:o,s:o,s:o}", "target", r->target, "mse", rf_exp_json_num_(r->mse),
                                                       "rmse", rf_exp_json_num_(r->rmse), "mae", rf_exp_json_num_(r->mae), "oracle_mse",
                                                       rf_exp_json_num_(r->oracle_mse)));
    json_object_set_new(j, "valid_score", rf_exp_json_num_(r->valid_score));
    json_object_set_new(j, "best_epoch", json_integer(r->best_epoch));
    json_object_set_new(j, "epochs_run", json_integer(r->epochs_run));
    json_object_set_new(j, "train_seconds", rf_exp_json_num_(r->seconds));
    json_object_set_new(j, "samples_per_sec", rf_exp_json_num_(r->samples_per_sec));
    json_object_set_new(j, "dense_params", json_integer((json_int_t)r->dense_params));
    json_object_set_new(j, "emb_params", json_integer((json_int_t)r->emb_params));
    json_object_set_new(j, "test_rows", json_integer((json_int_t)r->test_rows));
    rf_afile *f;
    rf_status st = rf_afile_open(path, 0, &f, err);
    if (st) {
        json_decref(j);
        return st;
    }
    FILE *fp = rf_afile_fp(f); /* NULL: f is marked failed, commit reports it */
    if (fp && json_dumpf(j, fp, JSON_INDENT(2) | JSON_REAL_PRECISION(17))) rf_afile_fail(f, errno);
    json_decref(j);
    return rf_afile_commit(f, RF_AFILE_DURABLE, err);
}

rf_status rf_run_result_read(rf_run_result *r, const char *path, rf_error *err)
{
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return rf_error_at(err, RF_EFORMAT, path, je.line > 0 ? je.line : 0, je.column > 0 ? je.column : 0, "%s", je.text);
    rf_status st = RF_OK;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const char *hash = json_string_value(json_object_get(j, "config_hash"));
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *type = json_string_value(json_object_get(j, "model_type"));
    const json_t *tasks = json_object_get(j, "tasks");
    char *end = NULL;
    if (!fmt || strcmp(fmt, "resflow-run-1") || !hash || !status || !type || !json_is_array(tasks) ||
        json_array_size(tasks) < 1 || json_array_size(tasks) > RF_MAX_TASKS) {
        st = rf_errorf(err, RF_EFORMAT, "%s: not a resflow run result", path);
        goto done;
    }
    errno = 0;
    r->config_hash = (uint64_t)strtoull(hash, &end, 16);
    if (errno || !*hash || *end) {
        st = rf_errorf(err, RF_EFORMAT, "%s: bad config_hash", path);
        goto done;
    }
    r->status = !strcmp(status, "ok") ? RF_OK : !strcmp(status, "diverged") ? RF_ENUMERIC : RF_EINTERNAL;
    const char *e = json_string_value(json_object_get(j, "error"));
    snprintf(r->error, sizeof r->error, "%s", e ? e : "");
    snprintf(r->model_type, sizeof r->model_type, "%s", type);
    r->seed = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    r->K = (int)json_array_size(tasks);
    for (int k = 0; k < r->K; k++) {
        const json_t *t = json_array_get(tasks, (size_t)k);
        const char *nm = json_string_value(json_object_get(t, "name"));
        if (!nm || strlen(nm) >= RF_NAME_MAX) {
            st = rf_errorf(err, RF_EFORMAT, "%s: bad task %d", path, k);
            goto done;
        }
        snprintf(r->task[k], RF_NAME_MAX, "%s", nm);
        r->auc[k] = get_num(t, "auc");
        r->cond_auc[k] = get_num(t, "cond_auc");
        r->increase[k] = get_num(t, "increase_share"); /* NaN in results of older versions */
        r->logloss[k] = get_num(t, "logloss");
        r->oracle_auc[k] = get_num(t, "oracle_auc");
        r->es_auc[k] = get_num(t, "es_auc"); /* NaN when absent (no counterfactual label, older versions) */
        r->es_oracle[k] = get_num(t, "es_oracle");
        const char *loss = json_string_value(json_object_get(t, "loss"));
        r->task_mse[k] = loss && !strcmp(loss, "mse");
    }
    /* regression (absent in results of older versions and of classification runs: NaN) */
    const json_t *rg = json_object_get(j, "regression");
    const char *tg = json_string_value(json_object_get(rg, "target"));
    snprintf(r->target, sizeof r->target, "%s", tg && strlen(tg) < RF_NAME_MAX ? tg : "");
    r->mse = get_num(rg, "mse");
    r->rmse = get_num(rg, "rmse");
    r->mae = get_num(rg, "mae");
    r->oracle_mse = get_num(rg, "oracle_mse");
    for (int k = 0; k < r->K; k++) { /* parents by name, after all names are known */
        const char *p = json_string_value(json_object_get(json_array_get(tasks, (size_t)k), "parent"));
        r->parent[k] = -1;
        for (int i = 0; p && i < r->K; i++)
            if (!strcmp(r->task[i], p)) r->parent[k] = i;
    }
    r->valid_score = get_num(j, "valid_score");
    r->best_epoch = (int)json_integer_value(json_object_get(j, "best_epoch"));
    r->epochs_run = (int)json_integer_value(json_object_get(j, "epochs_run"));
    r->seconds = get_num(j, "train_seconds");
    r->samples_per_sec = get_num(j, "samples_per_sec");
    r->dense_params = (size_t)json_integer_value(json_object_get(j, "dense_params"));
    r->emb_params = (size_t)json_integer_value(json_object_get(j, "emb_params"));
    r->test_rows = (size_t)json_integer_value(json_object_get(j, "test_rows"));
done:
    json_decref(j);
    return st;
}
