/* regression_cfg.c - regression as progressive multi-task in the configuration: the thresholds
 * (explicit, or the training target's quantiles), the generated task chain or traditional head,
 * and the derived threshold labels of a dataset (contract in include/resflow/config.h,
 * docs/regression.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/config.h"
#include "resflow/metrics.h"
#include "resflow/regression.h"

/* Task name of threshold v: "ge" + the number with '.' -> 'p', '-' -> 'm' ("ge4", "ge2p5"). */
static void task_name(float v, char out[RF_NAME_MAX])
{
    char lab[RF_SPEC_MAX];
    size_t o = 2;
    rf_regression_label("", v, lab); /* ">=" and the number in its shortest form */
    out[0] = 'g', out[1] = 'e';
    for (const char *p = lab + 2; *p && o + 1 < RF_NAME_MAX; p++) {
        if (*p == '+') continue;
        out[o++] = *p == '.' ? 'p' : *p == '-' ? 'm' : *p;
    }
    out[o] = '\0';
}

rf_status rf_regression_thresholds(const rf_config *cfg, const rf_dataset *train, rf_floats *out, rf_error *err)
{
    const rf_regression_cfg *rg = &cfg->regression;
    memset(out, 0, sizeof *out);
    if (rg->thresholds.n) {
        *out = rg->thresholds;
        return RF_OK;
    }
    int col = train ? rf_dataset_label_index(train, rg->target) : -1;
    if (col < 0)
        return rf_errorf(err, RF_EUSAGE, "regression.quantiles: the training data have no target column \"%s\"",
                         rg->target);
    rf_status st = rf_quantile_thresholds(train->labels + col, (size_t)train->K, train->n, rg->quantiles, out->v, &out->n);
    if (st == RF_ENOMEM) return rf_errorf(err, st, "out of memory");
    if (st) return rf_errorf(err, st, "regression.quantiles: the training target \"%s\" has fewer than 2 distinct values",
                             rg->target);
    return RF_OK;
}

/* The built-in default task list (ctr <- ctcvr): replaced by the generated tasks. */
static int default_tasks(const rf_config *cfg)
{
    rf_config *d = malloc(sizeof *d);
    if (!d) return 0;
    rf_config_default(d);
    int same = d->K == cfg->K;
    for (int k = 0; same && k < cfg->K; k++)
        same = !strcmp(d->tasks[k].name, cfg->tasks[k].name) && !strcmp(d->tasks[k].label, cfg->tasks[k].label) &&
               !strcmp(d->tasks[k].parent, cfg->tasks[k].parent) && cfg->tasks[k].loss == RF_LOSS_BCE;
    free(d);
    return same;
}

_Static_assert(sizeof(((rf_task_cfg *)0)->name) == sizeof(((rf_task_cfg *)0)->parent), "a task name fits a parent field");

rf_status rf_regression_resolve(rf_config *cfg, const rf_dataset *train, rf_error *err)
{
    rf_regression_cfg *rg = &cfg->regression;
    if (!rg->target[0]) return RF_OK;
    rf_floats thr;
    rf_status st = rf_regression_thresholds(cfg, train, &thr, err);
    if (st) return st;
    rg->thresholds = thr;
    int K = thr.n - 1;
    char lab[RF_MAX_THRESHOLDS][RF_SPEC_MAX];
    for (int k = 1; k <= K; k++) rf_regression_label(rg->target, thr.v[k], lab[k]);

    int prog = cfg->K == K; /* the configured tasks are exactly the chain target>=v_1 -> ... */
    for (int k = 0; prog && k < K; k++)
        prog = !strcmp(cfg->tasks[k].label, lab[k + 1]) && cfg->tasks[k].loss == RF_LOSS_BCE &&
               !strcmp(cfg->tasks[k].parent, k ? cfg->tasks[k - 1].name : "");
    int trad = cfg->K == 1 && !strcmp(cfg->tasks[0].label, rg->target) && cfg->tasks[0].loss == RF_LOSS_MSE &&
               !cfg->tasks[0].parent[0];
    if (!prog && !trad && !default_tasks(cfg)) {
        char want[RF_MAX_THRESHOLDS * (RF_SPEC_MAX + 4)] = "";
        for (int k = 1; k <= K; k++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", k > 1 ? " -> " : "", lab[k]);
        return rf_errorf(err, RF_EUSAGE,
                         "tasks: with regression.target the tasks are generated from the thresholds; the configured "
                         "tasks are neither the chain %s nor one mse task on %s (remove the tasks list, or list "
                         "exactly those)", want, rg->target);
    }
    if (rg->head == RF_REG_PROGRESSIVE && !prog) {
        memset(cfg->tasks, 0, sizeof cfg->tasks);
        cfg->K = K;
        for (int k = 0; k < K; k++) {
            rf_task_cfg *t = &cfg->tasks[k];
            task_name(thr.v[k + 1], t->name);
            snprintf(t->label, sizeof t->label, "%s", lab[k + 1]);
            if (k) memcpy(t->parent, cfg->tasks[k - 1].name, sizeof t->parent); /* both RF_NAME_MAX */
            t->weight = 1;
            t->pos_weight = 1;
        }
    } else if (rg->head == RF_REG_TRADITIONAL && !trad) {
        memset(cfg->tasks, 0, sizeof cfg->tasks);
        cfg->K = 1;
        rf_task_cfg *t = &cfg->tasks[0];
        int ok = !strchr(rg->target, '.') && strspn(rg->target, "0123456789") != strlen(rg->target);
        snprintf(t->name, sizeof t->name, "%s", ok ? rg->target : "value");
        snprintf(t->label, sizeof t->label, "%s", rg->target);
        t->weight = 1;
        t->pos_weight = 1;
        t->loss = RF_LOSS_MSE;
    }
    const char *mon = cfg->train.monitor;
    if (!strncmp(mon, "auc:", 4) && rf_config_task_index(cfg, mon + 4) < 0)
        return rf_errorf(err, RF_EUSAGE, "train.monitor: \"%s\": the %s regression head has no task \"%s\" "
                         "(its tasks: %s%s); use train.monitor=mse", mon,
                         rg->head == RF_REG_TRADITIONAL ? "traditional" : "progressive", mon + 4, cfg->tasks[0].name,
                         cfg->K > 1 ? ", ..." : "");
    if (!strcmp(mon, "mean_auc") && rg->head == RF_REG_TRADITIONAL)
        return rf_errorf(err, RF_EUSAGE, "train.monitor: mean_auc: the traditional regression head has no AUC; "
                         "use train.monitor=mse (or loss)");
    return rf_config_validate(cfg, err); /* e.g. the mse head on a model that has none */
}

rf_status rf_regression_derive_labels(const rf_config *cfg, const rf_floats *thr, rf_dataset *ds, rf_error *err)
{
    char lab[RF_MAX_THRESHOLDS][RF_SPEC_MAX];
    int n = 0;
    for (int k = 1; k < thr->n; k++) rf_regression_label(cfg->regression.target, thr->v[k], lab[n++]);
    return rf_dataset_derive_labels(ds, (const char(*)[RF_SPEC_MAX])lab, n, err);
}
