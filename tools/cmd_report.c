/* cmd_report.c - the HTML report of a model (resflow report; train --report DIR): the training
 * curves when the run recorded them, the test metrics table, calibration per task. The page is
 * built by the lab (include/resflow/lab/report.h); this file only gathers what goes in it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/lab/report.h"
#include "cli.h"
#include "progress.h"
#include "report_cli.h"

static void fmt(char *buf, size_t n, const char *f, double v)
{
    if (isfinite(v)) snprintf(buf, n, f, v);
    else snprintf(buf, n, "NaN");
}

/* train.balance's task weights against epochs, when a balancer ran (its log lines). */
static rf_status add_weights(rf_report *r, const progress *pg, rf_error *e)
{
    if (!pg->wK || !pg->weight_at.n) return RF_OK;
    rf_plot_series ws[PG_MAX_TASKS];
    for (int k = 0; k < pg->wK; k++)
        ws[k] = (rf_plot_series){pg->wtask[k], pg->weight[k].n, pg->weight[k].x, pg->weight[k].y, NULL};
    char cap[160];
    snprintf(cap, sizeof cap, "Task weights of train.balance: %s every train.log_every steps (docs/balance.md).",
             pg->balance);
    rf_plot_opts o = {"task weights", "epoch", "weight", 0, 520, 360, 0, NULL, NULL};
    return rf_report_plot(r, cap, &o, ws, pg->wK, e);
}

/* The curves: training and validation loss, validation AUC per task (and MSE) against epochs,
 * train.balance's task weights. */
static rf_status add_curves(rf_report *r, const progress *pg, rf_error *e)
{
    rf_status st = rf_report_heading(r, "Training curves", e);
    if (st) return st;
    if (pg->train_loss.n + pg->valid_loss.n == 0)
        return rf_report_text(r, "No progress was logged (raise train.log_every steps or train longer).", 1, e);
    rf_plot_series ls[2];
    int nl = 0;
    if (pg->train_loss.n)
        ls[nl++] = (rf_plot_series){"training loss", pg->train_loss.n, pg->train_loss.x,
                                    pg->train_loss.y, NULL};
    if (pg->valid_loss.n)
        ls[nl++] = (rf_plot_series){"validation loss", pg->valid_loss.n, pg->valid_loss.x, pg->valid_loss.y, NULL};
    rf_plot_opts o = {"loss", "epoch", "loss", 0, 520, 360, 0, NULL, NULL};
    if ((st = rf_report_plot(r, "Training loss every train.log_every steps; validation loss at each evaluation.",
                             &o, ls, nl, e)))
        return st;
    rf_plot_series as[PG_MAX_TASKS];
    for (int k = 0; k < pg->K; k++)
        as[k] = (rf_plot_series){pg->task[k], pg->valid_auc[k].n, pg->valid_auc[k].x, pg->valid_auc[k].y, NULL};
    rf_plot_opts oa = {"validation AUC", "epoch", "AUC", 0, 520, 360, 0, NULL, NULL};
    if (pg->K && (st = rf_report_plot(r, "Validation AUC per task at each evaluation.", &oa, as, pg->K, e)))
        return st;
    if (pg->valid_mse.n) {
        rf_plot_series ms = {"validation MSE", pg->valid_mse.n, pg->valid_mse.x, pg->valid_mse.y, NULL};
        rf_plot_opts om = {"validation MSE", "epoch", "MSE", 0, 520, 360, 0, NULL, NULL};
        if ((st = rf_report_plot(r, NULL, &om, &ms, 1, e))) return st;
    }
    return add_weights(r, pg, e);
}

static rf_status add_metrics(rf_report *r, const rf_model *m, const rf_eval_result *te, size_t rows, rf_error *e)
{
    const rf_model_spec *sp = rf_model_spec_of(m);
    const int *parent = rf_model_info_of(m)->parent;
    enum { NC = 9 };
    static const char *const head[NC] = {"task",     "parent",   "AUC",   "conditional AUC", "logloss",
                                         "mean pred", "observed", "calib", "positives"};
    char cells[RF_MAX_TASKS][NC][80];
    const char *cp[RF_MAX_TASKS * NC];
    for (int k = 0; k < sp->K; k++) {
        const rf_task_metrics *t = &te->task[k];
        snprintf(cells[k][0], 80, "%s", sp->tasks[k].name);
        snprintf(cells[k][1], 80, "%s", parent[k] >= 0 ? sp->tasks[parent[k]].name : "");
        fmt(cells[k][2], 80, "%.4f", t->auc);
        if (parent[k] >= 0) fmt(cells[k][3], 80, "%.4f", te->cond[k].auc);
        else cells[k][3][0] = 0;
        fmt(cells[k][4], 80, "%.5f", t->logloss);
        fmt(cells[k][5], 80, "%.5f", t->mean_pred);
        fmt(cells[k][6], 80, "%.5f", t->mean_label);
        fmt(cells[k][7], 80, "%.3f", t->calib);
        snprintf(cells[k][8], 80, "%zu", t->positives);
        for (int j = 0; j < NC; j++) cp[k * NC + j] = cells[k][j];
    }
    char cap[96];
    snprintf(cap, sizeof cap, "Test metrics on %zu rows", rows);
    rf_status st = rf_report_heading(r, "Test results", e);
    if (!st) st = rf_report_table(r, cap, NC, head, sp->K, cp, e);
    if (!st && sp->regression.target[0]) {
        char t[256];
        snprintf(t, sizeof t, "Regression of %s: MSE %.5f, RMSE %.5f, MAE %.5f on %zu rows.", sp->regression.target,
                 te->reg.mse, te->reg.rmse, te->reg.mae, te->reg.n);
        st = rf_report_text(r, t, 0, e);
    }
    return st;
}

static rf_status add_calibration(rf_report *r, const rf_model *m, const rf_dataset *ds, int threads, rf_error *e)
{
    const rf_model_spec *sp = rf_model_spec_of(m);
    int K = sp->K, lc[RF_MAX_TASKS];
    rf_status st = rf_report_heading(r, "Calibration (test rows)", e);
    if (st || (st = rf_resolve_labels(m, ds, lc, e))) return st;
    float *P = malloc((ds->n ? ds->n : 1) * (size_t)K * sizeof *P);
    if (!P) return rf_errorf(e, RF_ENOMEM, "out of memory");
    st = rf_predict(m, ds, threads, P, NULL, e);
    for (int k = 0; k < K && !st; k++) {
        if (sp->tasks[k].loss == RF_LOSS_MSE) continue; /* not a probability */
        st = rf_report_calibration(r, sp->tasks[k].name, P + k, (size_t)K, ds->labels + lc[k], (size_t)ds->K, ds->n,
                                   10, e);
    }
    free(P);
    return st;
}

int report_run(const char *path, const rf_model *m, const rf_config *cfg, const rf_dataset *test,
               const rf_eval_result *te, const progress *pg, const rf_train_summary *ts)
{
    rf_error e;
    rf_error_clear(&e);
    const rf_model_spec *sp = rf_model_spec_of(m);
    char title[1024], line[1024];
    snprintf(title, sizeof title, "resflow: %s on %s", type_name(cfg->model.type), cfg->data.source);
    rf_report *r = rf_report_create(title);
    if (!r) {
        fprintf(stderr, "resflow: error: out of memory\n");
        return RF_ENOMEM;
    }
    size_t o = (size_t)snprintf(line, sizeof line, "Model %s with %d task%s:", type_name(cfg->model.type), sp->K,
                                sp->K == 1 ? "" : "s");
    for (int k = 0; k < sp->K && o < sizeof line; k++) {
        int pk = rf_model_info_of(m)->parent[k];
        o += (size_t)snprintf(line + o, sizeof line - o, "%s %s%s%s", k ? "," : "", sp->tasks[k].name,
                              pk >= 0 ? " (parent " : "", pk >= 0 ? sp->tasks[pk].name : "");
        if (pk >= 0 && o < sizeof line) o += (size_t)snprintf(line + o, sizeof line - o, ")");
    }
    if (ts && o < sizeof line)
        snprintf(line + o, sizeof line - o, ". Trained %ld steps in %.1f s, %d epoch%s run, best epoch %d%s.",
                 ts->steps, ts->seconds, ts->epochs_run, ts->epochs_run == 1 ? "" : "s", ts->best_epoch,
                 ts->stopped_early ? " (early-stopped)" : "");
    rf_status st = rf_report_text(r, line, 0, &e);
    if (!st && chain_links_inactive(cfg, cfg->model.type))
        st = rf_report_text(r,
                            "No task has a parent (tasks[].parent): the links of ResFlow and ESMM are inactive and "
                            "they reduce to NSE.",
                            1, &e);
    if (!st && pg) st = add_curves(r, pg, &e);
    if (!st && !pg)
        st = rf_report_text(r, "Training curves are recorded by 'resflow train --report DIR'; this report was made "
                               "from a saved model.", 1, &e);
    if (!st && test && te) st = add_metrics(r, m, te, test->n, &e);
    if (!st && test && test->n) st = add_calibration(r, m, test, cfg->train.threads, &e);
    if (!st && (!test || !test->n)) st = rf_report_text(r, "No test rows: no test metrics.", 1, &e);
    if (!st) st = rf_report_write(r, path, &e);
    rf_report_free(r);
    if (st) return die(&e);
    note("report written to %s", path);
    return 0;
}

static const char *report_help =
    "usage: resflow report -m MODEL [--data FILE] [-o REPORT.html]\n"
    "\n"
    "Write one self-contained HTML page about a saved model: the test metrics per task (AUC,\n"
    "conditional AUC, logloss, calibration) and a calibration plot per task. The rows are --data,\n"
    "or the model's own test split. Training curves are added by 'resflow train --report DIR'\n"
    "(DIR/report.html); 'resflow experiment' writes OUT/report.html. docs/report.md.\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train'\n"
    "  -d, --data FILE       CSV/TSV file with the model's feature and label columns\n"
    "  -o, --out FILE        the page (default report.html)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

int cmd_report(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("report", argc, argv, &o, report_help);
    if (rc) return rc;
    if (!o.model) return usage_error("report", "--model is required");
    const char *out = o.out ? o.out : "report.html";
    if ((rc = check_output("report", out, (const char *[]){o.model, o.data}, 2))) return rc;
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    if (!(rc = model_and_data(&o, &lm, &ds, 1))) {
        rf_eval_result te;
        rf_error e;
        if (rf_evaluate(lm.model, ds, lm.cfg.train.threads, &te, &e)) rc = die(&e);
        else rc = report_run(out, lm.model, &lm.cfg, ds, &te, NULL, NULL);
    }
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}
