/* exp_report.c - OUT/report.html of `resflow experiment` and `resflow sweep`: per dataset, the
 * test AUC of every model and task (mean ± std over seeds) as a table and as a plot with error
 * bars, plus the regression error when there is one. The page is the lab's (report.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/lab/exp_table.h"
#include "resflow/lab/report.h"
#include "exp_runner.h"

static void pm(char *buf, size_t n, rf_stat s)
{
    if (s.n == 0) snprintf(buf, n, "NaN");
    else if (s.n < 2) snprintf(buf, n, "%.4f", s.mean);
    else snprintf(buf, n, "%.4f ± %.4f", s.mean, s.std);
}

/* One dataset: the first result of it tells the tasks. */
static rf_status dataset_section(rf_report *r, const rf_experiment *x, const rf_run_result *const *res, int d,
                                 rf_error *e)
{
    int M = x->n_models, S = x->n_seeds;
    const rf_run_result *any = NULL;
    for (int i = d * M * S; i < (d + 1) * M * S && !any; i++) any = res[i];
    rf_status st = rf_report_heading(r, x->datasets[d].name, e);
    if (st) return st;
    if (!any) return rf_report_text(r, "No finished runs.", 1, e);
    int K = any->K, reg = any->target[0] != '\0';
    int nc = 2 + K + reg;
    const char **head = calloc((size_t)nc, sizeof *head);
    char(*cells)[64] = calloc((size_t)M * nc, sizeof *cells);
    const char **cp = calloc((size_t)M * nc, sizeof *cp);
    double *mean = calloc((size_t)K * M, sizeof *mean), *sd = calloc((size_t)K * M, sizeof *sd);
    double *xs = calloc((size_t)M, sizeof *xs);
    char(*hn)[80] = calloc((size_t)K, sizeof *hn);
    if (!head || !cells || !cp || !mean || !sd || !xs || !hn) {
        st = rf_errorf(e, RF_ENOMEM, "out of memory");
        goto done;
    }
    head[0] = "model";
    head[1] = "seeds";
    for (int k = 0; k < K; k++) {
        snprintf(hn[k], sizeof hn[k], "%s AUC", any->task[k]);
        head[2 + k] = hn[k];
    }
    if (reg) head[2 + K] = "MSE";
    int chain_inactive = 1;
    for (int k = 0; k < K; k++) chain_inactive &= any->parent[k] < 0;
    int has_chain_model = 0;
    for (int m = 0; m < M; m++) {
        double v[RF_MAX_TASKS + 1][64];
        int n = 0;
        for (int s = 0; s < S && s < 64; s++) {
            const rf_run_result *rr = res[(d * M + m) * S + s];
            if (!rr || rr->status != RF_OK) continue;
            for (int k = 0; k < K; k++) v[k][n] = rr->auc[k];
            v[K][n] = rr->mse;
            n++;
            has_chain_model |= !strcmp(rr->model_type, "resflow") || !strcmp(rr->model_type, "esmm");
        }
        xs[m] = m + 1;
        snprintf(cells[m * nc], 64, "%s", x->models[m].name);
        snprintf(cells[m * nc + 1], 64, "%d", n);
        for (int k = 0; k < K; k++) {
            rf_stat s = rf_stat_of(v[k], n);
            pm(cells[m * nc + 2 + k], 64, s);
            mean[k * M + m] = n ? s.mean : NAN;
            sd[k * M + m] = s.std;
        }
        if (reg) pm(cells[m * nc + 2 + K], 64, rf_stat_of(v[K], n));
        for (int j = 0; j < nc; j++) cp[m * nc + j] = cells[m * nc + j];
    }
    char cap[160];
    snprintf(cap, sizeof cap, "%s: test metrics, mean ± sample std over seeds", x->datasets[d].name);
    st = rf_report_table(r, cap, nc, head, M, cp, e);
    if (!st && chain_inactive && has_chain_model)
        st = rf_report_text(r, "No task has a parent: the links of ResFlow and ESMM are inactive, they reduce to NSE.",
                            1, e);
    if (!st) {
        rf_plot_series ser[RF_MAX_TASKS];
        const char **lab = (const char **)calloc((size_t)M, sizeof *lab);
        if (!lab) {
            st = rf_errorf(e, RF_ENOMEM, "out of memory");
            goto done;
        }
        for (int m = 0; m < M; m++) lab[m] = x->models[m].name;
        for (int k = 0; k < K; k++) ser[k] = (rf_plot_series){any->task[k], M, xs, mean + k * M, sd + k * M};
        char title[160];
        snprintf(title, sizeof title, "%s: test AUC per model", x->datasets[d].name);
        rf_plot_opts o = {title, "model", "test AUC (mean ± std over seeds)", 0, 640, 380, M, xs, lab};
        st = rf_report_plot(r, NULL, &o, ser, K, e);
        free(lab);
    }
done:
    free(head);
    free(cells);
    free(cp);
    free(mean);
    free(sd);
    free(xs);
    free(hn);
    return st;
}

rf_status exp_write_report(const rf_experiment *x, const exp_runs *runs, const char *out, rf_error *e)
{
    char title[200], line[256], path[4096];
    snprintf(title, sizeof title, "resflow experiment%s%s", x->name[0] ? ": " : "", x->name);
    rf_report *r = rf_report_create(title);
    if (!r) return rf_errorf(e, RF_ENOMEM, "out of memory");
    snprintf(line, sizeof line,
             "%d dataset(s) x %d model(s) x %d seed(s). Tables: results.md, results.csv, results.json; every "
             "run's configuration and result under runs/.",
             x->n_datasets, x->n_models, x->n_seeds);
    rf_status st = rf_report_text(r, line, 0, e);
    for (int d = 0; d < x->n_datasets && !st; d++)
        st = dataset_section(r, x, (const rf_run_result *const *)runs->res, d, e);
    snprintf(path, sizeof path, "%s/report.html", out);
    if (!st) st = rf_report_write(r, path, e);
    rf_report_free(r);
    return st;
}
