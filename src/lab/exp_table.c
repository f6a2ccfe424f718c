/* exp_table.c - statistics over seeds and the experiment's tables: Markdown, CSV and JSON of
 * mean ± std per dataset, model and metric (contract in include/resflow/lab/exp_table.h).
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/afile.h"
#include "lab/exp_int.h"
#include "core/sbuf.h"

/* ---- statistics ------------------------------------------------------------------------------------ */

rf_stat rf_stat_of(const double *v, int n)
{
    rf_stat s = {NAN, NAN, 0};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) sum += v[i], s.n++;
    if (!s.n) return s;
    s.mean = sum / s.n;
    if (s.n < 2) return s;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(ss / (s.n - 1));
    return s;
}

/* ---- tables ------------------------------------------------------------------------------------------ */

/* One metric of a dataset: the AUC of a task, the conditional AUC of a child task, a task's
 * logloss, training seconds, best epoch, or the regression errors. Tasks are named (models of a
 * dataset may have different tasks). */
typedef struct {
    int kind, k;
    char label[2 * RF_NAME_MAX + 16]; /* "ctcvr AUC", "ctcvr|ctr AUC" */
    char task[2 * RF_NAME_MAX + 2];   /* "ctcvr", "ctcvr|ctr" ("" for the run-level ones) */
} metric;

enum { M_AUC, M_COND, M_LOGLOSS, M_SECONDS, M_EPOCH, M_MSE, M_RMSE, M_MAE, M_ES };
static const char *const KIND_NAME[] = {"auc",  "cond_auc", "logloss", "train_seconds", "best_epoch",
                                        "mse",  "rmse",     "mae",     "es_auc"};
static int lower_better(int kind) { return kind >= M_MSE && kind <= M_MAE; }
static int is_auc(int kind) { return kind == M_AUC || kind == M_COND || kind == M_ES; }

#define RES(x, res, d, m, s) ((res)[((size_t)(d) * (x)->n_models + (m)) * (x)->n_seeds + (s)])

/* The first result of dataset d (its tasks), or NULL. */
static const rf_run_result *first_result(const rf_experiment *x, const rf_run_result *const *res, int d)
{
    for (int m = 0; m < x->n_models; m++)
        for (int s = 0; s < x->n_seeds; s++)
            if (RES(x, res, d, m, s)) return RES(x, res, d, m, s);
    return NULL;
}

#define MAX_METRICS (4 * RF_MAX_TASKS + 8)

/* "task" or "task|parent" of task k of r */
static void task_key(const rf_run_result *r, int k, int cond, char *buf, size_t n)
{
    if (cond) snprintf(buf, n, "%s|%s", r->task[k], r->task[r->parent[k]]);
    else snprintf(buf, n, "%s", r->task[k]);
}

/* Append a metric unless the list has it. */
static void add_metric(metric *out, int *n, int kind, const char *task, const char *label)
{
    for (int i = 0; i < *n; i++)
        if (out[i].kind == kind && !strcmp(out[i].task, task)) return;
    if (*n >= MAX_METRICS) return;
    out[*n] = (metric){kind, 0, "", ""};
    snprintf(out[*n].task, sizeof out[*n].task, "%s", task);
    snprintf(out[*n].label, sizeof out[*n].label, "%s", label);
    (*n)++;
}

/* The Table-4 metrics of dataset d over all its results: the AUC of every classification task,
 * the conditional AUC of every child task, its entire-space AUC against the simulator's
 * counterfactual label where runs have one ("es ctcvr|ctr AUC"), and the MSE when runs have a
 * regression target. */
static int dataset_metrics(const rf_experiment *x, const rf_run_result *const *res, int d, metric *out)
{
    int n = 0, reg = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int m = 0; m < x->n_models; m++)
            for (int s = 0; s < x->n_seeds; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                for (int k = 0; r && k < r->K; k++) {
                    char t[2 * RF_NAME_MAX + 2], l[2 * RF_NAME_MAX + 16];
                    if (r->task_mse[k] || (pass && r->parent[k] < 0)) continue;
                    if (pass == 2 && !isfinite(r->es_auc[k])) continue;
                    task_key(r, k, pass > 0, t, sizeof t);
                    snprintf(l, sizeof l, "%s%s AUC", pass == 2 ? "es " : "", t);
                    add_metric(out, &n, pass == 2 ? M_ES : pass ? M_COND : M_AUC, t, l);
                }
                reg |= r && r->target[0];
            }
    if (reg) add_metric(out, &n, M_MSE, "", "MSE");
    return n;
}

/* The task of r that a per-task metric names ("ctcvr", or "ctcvr|ctr" for the conditional and
 * entire-space kinds), -1 when r has none. */
static int metric_task(const rf_run_result *r, const metric *mt)
{
    const int cond = mt->kind == M_COND || mt->kind == M_ES;
    for (int k = 0; k < r->K; k++) {
        char t[2 * RF_NAME_MAX + 2];
        if (cond && r->parent[k] < 0) continue;
        task_key(r, k, cond, t, sizeof t);
        if (!strcmp(t, mt->task)) return k;
    }
    return -1;
}

static double metric_value(const rf_run_result *r, const metric *mt)
{
    if (!r) return NAN;
    if (mt->kind == M_SECONDS) return r->status == RF_OK ? r->seconds : NAN;
    if (mt->kind == M_EPOCH) return r->status == RF_OK ? r->best_epoch : NAN;
    if (r->status != RF_OK) return NAN;
    if (lower_better(mt->kind)) return mt->kind == M_MSE ? r->mse : mt->kind == M_RMSE ? r->rmse : r->mae;
    int k = metric_task(r, mt);
    if (k < 0) return NAN;
    return mt->kind == M_AUC    ? r->auc[k]
           : mt->kind == M_COND ? r->cond_auc[k]
           : mt->kind == M_ES   ? r->es_auc[k]
                                : r->logloss[k];
}

/* The simulator's ceiling for a metric of dataset d (the oracle column), NaN when none. */
static double oracle_value(const rf_experiment *x, const rf_run_result *const *res, int d, const metric *mt)
{
    for (int m = 0; m < x->n_models; m++)
        for (int s = 0; s < x->n_seeds; s++) {
            const rf_run_result *r = RES(x, res, d, m, s);
            if (!r) continue;
            if (mt->kind == M_MSE && isfinite(r->oracle_mse)) return r->oracle_mse;
            int k = mt->kind == M_AUC || mt->kind == M_ES ? metric_task(r, mt) : -1;
            double v = k < 0 ? NAN : mt->kind == M_AUC ? r->oracle_auc[k] : r->es_oracle[k];
            if (isfinite(v)) return v;
        }
    return NAN;
}

typedef struct {
    rf_stat st;
    int runs, diverged; /* results present; of those diverged */
    double v[RF_EXP_MAX_SEEDS];
} cell;

static cell cell_of(const rf_experiment *x, const rf_run_result *const *res, int d, int m, const metric *mt)
{
    cell c;
    memset(&c, 0, sizeof c);
    for (int s = 0; s < x->n_seeds; s++) {
        const rf_run_result *r = RES(x, res, d, m, s);
        c.v[s] = metric_value(r, mt);
        if (r) c.runs++, c.diverged += r->status == RF_ENUMERIC;
    }
    c.st = rf_stat_of(c.v, x->n_seeds);
    return c;
}

/* "0.7236 ± 0.0011", with "(n/N)" when some seeds are missing; "NaN (k diverged)"; "-". */
static void fmt_cell(char *buf, size_t n, const cell *c, int n_seeds, int digits)
{
    if (!c->st.n) {
        if (c->diverged) snprintf(buf, n, "NaN (%d/%d diverged)", c->diverged, n_seeds);
        else snprintf(buf, n, "-");
        return;
    }
    int o = c->st.n >= 2 ? snprintf(buf, n, "%.*f ± %.*f", digits, c->st.mean, digits, c->st.std)
                         : snprintf(buf, n, "%.*f", digits, c->st.mean);
    if (c->st.n < n_seeds && o > 0 && (size_t)o < n) {
        if (c->diverged) snprintf(buf + o, n - (size_t)o, " (%d/%d; %d diverged)", c->st.n, n_seeds, c->diverged);
        else snprintf(buf + o, n - (size_t)o, " (%d/%d)", c->st.n, n_seeds);
    }
}

/* A Markdown table with padded columns: the first nc columns of cells[r * stride + c]. */
static void md_table(sbuf *b, char (*cells)[96], int nr, int nc, int stride)
{
    int w[RF_EXP_MAX_ITEMS + MAX_METRICS + 8] = {0};
    if (nc > RF_EXP_MAX_ITEMS + MAX_METRICS + 8) nc = RF_EXP_MAX_ITEMS + MAX_METRICS + 8;
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) {
            /* display width: count UTF-8 lead bytes */
            int len = 0;
            for (const unsigned char *p = (const unsigned char *)cells[r * stride + c]; *p; p++) len += (*p & 0xC0) != 0x80;
            if (len > w[c]) w[c] = len;
        }
    for (int r = 0; r < nr; r++) {
        sb_puts(b, "|");
        for (int c = 0; c < nc; c++) {
            const char *s = cells[r * stride + c];
            int len = 0;
            for (const unsigned char *p = (const unsigned char *)s; *p; p++) len += (*p & 0xC0) != 0x80;
            sb_printf(b, " %s%*s |", s, w[c] - len, "");
        }
        sb_puts(b, "\n");
        if (r == 0) {
            sb_puts(b, "|");
            for (int c = 0; c < nc; c++) {
                sb_puts(b, " ");
                for (int i = 0; i < (w[c] > 3 ? w[c] : 3); i++) sb_puts(b, "-");
                sb_puts(b, " |");
            }
            sb_puts(b, "\n");
        }
    }
}

/* Markdown cell text: escape the '|' of "ctcvr|ctr". */
static void md_escape(char *dst, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 2 < n; s++) {
        if (*s == '|') dst[o++] = '\\';
        dst[o++] = *s;
    }
    dst[o] = '\0';
}

static void csv_field(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') sb_puts(b, "\"");
        sb_add(b, s, 1);
    }
    sb_puts(b, "\"");
}

static rf_status write_text(const char *dir, const char *name, const char *text, rf_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return rf_errorf(err, RF_EIO, "path too long: %s", dir);
    return rf_write_atomic(path, text, strlen(text), err);
}

rf_status rf_experiment_write_tables(const rf_experiment *x, const rf_run_result *const *res, const char *dir, char **md,
                                     rf_error *err)
{
    const int nd = x->n_datasets, nm = x->n_models, ns = x->n_seeds;
    sbuf M = {0}, C = {0};
    json_t *J = json_object();
    rf_status st = RF_OK;
    /* the Table-4 view: one row per (dataset, AUC metric), one column per model */
    int nrow = 1;
    int has_oracle = 0;
    for (int d = 0; d < nd; d++) {
        metric mt[MAX_METRICS];
        int nmt = dataset_metrics(x, res, d, mt);
        nrow += nmt;
        for (int i = 0; i < nmt; i++) has_oracle |= isfinite(oracle_value(x, res, d, &mt[i]));
    }
    int ncol = 2 + nm + 1;
    char (*cells)[96] = calloc((size_t)(nrow > nm + 2 ? nrow : nm + 2) * (size_t)(ncol > MAX_METRICS + 8 ? ncol : MAX_METRICS + 8), 96);
    if (!cells) {
        json_decref(J);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    sb_printf(&M, "# %s\n\n", x->name[0] ? x->name : "Experiment results");
    sb_printf(&M, "Test-split metrics, mean ± sample standard deviation (n - 1) over the seeds ");
    for (int s = 0; s < ns; s++) sb_printf(&M, "%s%" PRIu64, s ? ", " : "", x->seeds[s]);
    sb_puts(&M, " (train.seed). `(n/N)` marks cells where only n of N runs have a result; a diverged run "
                "(non-finite loss) counts as no result and is reported. The best mean of each row is in bold.\n\n");
    sb_puts(&M, "## AUC (higher is better) and regression MSE (lower is better) by dataset and model\n\n");
    {
        int r = 0;
        snprintf(cells[0], 96, "dataset");
        snprintf(cells[1], 96, "metric");
        for (int m = 0; m < nm; m++) snprintf(cells[2 + m], 96, "%s", x->models[m].name);
        snprintf(cells[2 + nm], 96, "oracle");
        r = 1;
        for (int d = 0; d < nd; d++) {
            metric mt[MAX_METRICS];
            int nmt = dataset_metrics(x, res, d, mt);
            for (int i = 0; i < nmt; i++, r++) {
                char (*row)[96] = cells + (size_t)r * ncol;
                snprintf(row[0], 96, "%s", x->datasets[d].name);
                md_escape(row[1], 96, mt[i].label);
                int low = lower_better(mt[i].kind);
                double best = low ? INFINITY : -INFINITY;
                cell cs[RF_EXP_MAX_ITEMS];
                for (int m = 0; m < nm; m++) {
                    cs[m] = cell_of(x, res, d, m, &mt[i]);
                    if (cs[m].st.n && (low ? cs[m].st.mean < best : cs[m].st.mean > best)) best = cs[m].st.mean;
                }
                for (int m = 0; m < nm; m++) {
                    char t[80];
                    fmt_cell(t, sizeof t, &cs[m], ns, 4);
                    int bold = cs[m].st.n && nm > 1 && floor(cs[m].st.mean * 1e4 + 0.5) == floor(best * 1e4 + 0.5);
                    snprintf(row[2 + m], 96, bold ? "**%s**" : "%s", t);
                }
                double orc = oracle_value(x, res, d, &mt[i]);
                if (isfinite(orc)) snprintf(row[2 + nm], 96, "%.4f", orc);
                else snprintf(row[2 + nm], 96, "-");
            }
        }
        md_table(&M, cells, r, has_oracle ? ncol : ncol - 1, ncol);
        if (has_oracle)
            sb_puts(&M, "\n`oracle`: the simulator's true probabilities (for MSE: its expected target) on the same test rows "
                        "(the best any model can do).\n");
    }

    /* the paired differences to the baseline model, per seed */
    int base = 0;
    for (int m = 0; m < nm && x->baseline[0]; m++)
        if (!strcmp(x->models[m].name, x->baseline)) base = m;
    if (nm > 1) {
        sb_printf(&M, "\n## Difference to %s, paired by seed\n\n", x->models[base].name);
        sb_printf(&M, "Per seed s the difference d_s = model_s - %s_s (same data, same seed); mean and 95 %% "
                      "Student-t interval over the seeds; `*` = the interval excludes 0 (significant). With one seed "
                      "no interval: use `resflow compare` (DeLong / bootstrap over queries on the test rows).\n\n",
                  x->models[base].name);
        int r = 0, nc2 = 2 + nm - 1;
        snprintf(cells[0], 96, "dataset");
        snprintf(cells[1], 96, "metric");
        for (int m = 0, c = 2; m < nm; m++)
            if (m != base) snprintf(cells[c++], 96, "%s", x->models[m].name);
        r = 1;
        for (int d = 0; d < nd; d++) {
            metric mt[MAX_METRICS];
            int nmt = dataset_metrics(x, res, d, mt);
            for (int i = 0; i < nmt; i++) {
                if (!is_auc(mt[i].kind)) continue;
                char (*row)[96] = cells + (size_t)r * nc2;
                snprintf(row[0], 96, "%s", x->datasets[d].name);
                char lab[128];
                snprintf(lab, sizeof lab, "diff %s", mt[i].label);
                md_escape(row[1], 96, lab);
                cell cb = cell_of(x, res, d, base, &mt[i]);
                for (int m = 0, c = 2; m < nm; m++) {
                    if (m == base) continue;
                    cell cm = cell_of(x, res, d, m, &mt[i]);
                    rf_paired_diff pd = rf_paired_seed_diff(cm.v, cb.v, ns);
                    rf_paired_diff_format(row[c++], 96, &pd);
                }
                r++;
            }
        }
        md_table(&M, cells, r, nc2, nc2);
    }

    /* per dataset: one row per model */
    sb_puts(&C, "dataset,model,model_type,metric,task,mean,std,n,runs,diverged,values\n");
    json_t *jds = json_array();
    for (int d = 0; d < nd; d++) {
        const rf_run_result *r0 = first_result(x, res, d);
        json_t *jd = json_object();
        json_object_set_new(jd, "name", json_string(x->datasets[d].name));
        json_object_set_new(jd, "config", json_string(x->datasets[d].config));
        json_array_append_new(jds, jd);
        if (!r0) continue;
        metric mt[MAX_METRICS + 3];
        int nauc = dataset_metrics(x, res, d, mt), nmt = nauc, last_ll = -1;
        for (int i = 0; i < nauc; i++)
            if (mt[i].kind == M_MSE) {
                add_metric(mt, &nmt, M_RMSE, "", "RMSE");
                add_metric(mt, &nmt, M_MAE, "", "MAE");
            }
        int nshown = nmt; /* the Table-4 metrics, RMSE, MAE */
        for (int i = 0; i < nauc; i++) {
            if (mt[i].kind != M_AUC) continue;
            char l[2 * RF_NAME_MAX + 16];
            snprintf(l, sizeof l, "%s logloss", mt[i].task);
            last_ll = nmt;
            add_metric(mt, &nmt, M_LOGLOSS, mt[i].task, l);
        }
        mt[nmt++] = (metric){M_SECONDS, 0, "train s", ""};
        mt[nmt++] = (metric){M_EPOCH, 0, "best epoch", ""};
        json_t *jt = json_array(), *jo = json_object();
        for (int k = 0; k < r0->K; k++) {
            json_array_append_new(jt, json_pack("{s:s,s:o}", "name", r0->task[k], "parent",
                                                r0->parent[k] >= 0 ? json_string(r0->task[r0->parent[k]]) : json_null()));
            json_object_set_new(jo, r0->task[k], rf_exp_json_num_(r0->oracle_auc[k]));
        }
        json_object_set_new(jd, "tasks", jt);
        json_object_set_new(jd, "test_rows", json_integer((json_int_t)r0->test_rows));
        json_object_set_new(jd, "oracle_auc", jo);
        if (r0->target[0]) {
            metric mo = {M_MSE, 0, "", ""};
            json_object_set_new(jd, "regression_target", json_string(r0->target));
            json_object_set_new(jd, "oracle_mse", rf_exp_json_num_(oracle_value(x, res, d, &mo)));
        }
        sb_printf(&M, "\n## %s\n\n", x->datasets[d].name);
        sb_printf(&M, "Config: %s", x->datasets[d].config[0] ? x->datasets[d].config : "built-in defaults");
        for (int i = 0; i < x->datasets[d].n_sets; i++) sb_printf(&M, "%s`%s`", i ? ", " : " + ", x->datasets[d].sets[i].text);
        sb_printf(&M, ". Test rows: %zu.\n\n", r0->test_rows);
        /* the Markdown table: AUCs, logloss of the last task, params, time */
        int show[MAX_METRICS + 3], nshow = 0;
        for (int i = 0; i < nshown; i++) show[nshow++] = i;
        if (last_ll >= 0) show[nshow++] = last_ll; /* logloss of the last task */
        show[nshow++] = nmt - 2;          /* train s */
        show[nshow++] = nmt - 1;          /* best epoch */
        int nc = 1 + nshow + 2;
        snprintf(cells[0], 96, "model");
        for (int i = 0; i < nshow; i++) md_escape(cells[1 + i], 96, mt[show[i]].label);
        snprintf(cells[1 + nshow], 96, "dense params");
        snprintf(cells[2 + nshow], 96, "emb params");
        json_t *jms = json_array();
        for (int m = 0; m < nm; m++) {
            char (*row)[96] = cells + (size_t)(m + 1) * nc;
            snprintf(row[0], 96, "%s", x->models[m].name);
            size_t dp = 0, ep = 0;
            for (int s = 0; s < ns; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                if (r && r->dense_params) dp = r->dense_params, ep = r->emb_params;
            }
            json_t *jm = json_object(), *jsum = json_object(), *jruns = json_array();
            json_object_set_new(jm, "name", json_string(x->models[m].name));
            json_object_set_new(jm, "type", json_string(rf_model_type_name(x->models[m].type)));
            json_object_set_new(jm, "dense_params", json_integer((json_int_t)dp));
            json_object_set_new(jm, "emb_params", json_integer((json_int_t)ep));
            int diverged = 0, missing = 0;
            for (int i = 0; i < nmt; i++) {
                cell c = cell_of(x, res, d, m, &mt[i]);
                diverged = c.diverged;
                missing = ns - c.runs;
                for (int j = 0; j < nshow; j++)
                    if (show[j] == i) fmt_cell(row[1 + j], 96, &c, ns, mt[i].kind == M_SECONDS ? 1 : mt[i].kind == M_EPOCH ? 1 : 4);
                /* CSV row */
                csv_field(&C, x->datasets[d].name);
                sb_puts(&C, ",");
                csv_field(&C, x->models[m].name);
                sb_printf(&C, ",%s,%s,", rf_model_type_name(x->models[m].type), KIND_NAME[mt[i].kind]);
                csv_field(&C, mt[i].task);
                if (c.st.n) sb_printf(&C, ",%.17g", c.st.mean);
                else sb_puts(&C, ",");
                if (c.st.n >= 2) sb_printf(&C, ",%.17g", c.st.std);
                else sb_puts(&C, ",");
                sb_printf(&C, ",%d,%d,%d,", c.st.n, c.runs, c.diverged);
                for (int s = 0; s < ns; s++) {
                    if (s) sb_puts(&C, ";");
                    if (isfinite(c.v[s])) sb_printf(&C, "%.17g", c.v[s]);
                    else sb_puts(&C, "nan");
                }
                sb_puts(&C, "\n");
                /* JSON summary */
                json_t *sj = json_pack("{s:o,s:o,s:i}", "mean", rf_exp_json_num_(c.st.mean), "std", rf_exp_json_num_(c.st.std), "n", c.st.n);
                json_t *kj = json_object_get(jsum, KIND_NAME[mt[i].kind]);
                if (mt[i].task[0]) {
                    if (!kj) json_object_set_new(jsum, KIND_NAME[mt[i].kind], kj = json_object());
                    json_object_set_new(kj, mt[i].task, sj);
                } else {
                    json_object_set_new(jsum, KIND_NAME[mt[i].kind], sj);
                }
            }
            snprintf(row[1 + nshow], 96, "%zu", dp);
            snprintf(row[2 + nshow], 96, "%zu", ep);
            for (int s = 0; s < ns; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                if (!r) {
                    json_array_append_new(jruns, json_null());
                    continue;
                }
                char hash[32];
                snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
                json_t *rj = json_object(), *auc = json_object(), *cond = json_object(), *ll = json_object(),
                       *inc = json_object(), *es = json_object();
                json_object_set_new(rj, "seed", json_integer((json_int_t)x->seeds[s]));
                json_object_set_new(rj, "status", json_string(r->status == RF_OK ? "ok" : r->status == RF_ENUMERIC ? "diverged" : "failed"));
                if (r->status != RF_OK) json_object_set_new(rj, "error", json_string(r->error));
                json_object_set_new(rj, "config_hash", json_string(hash));
                for (int k = 0; k < r->K; k++) {
                    json_object_set_new(auc, r->task[k], rf_exp_json_num_(r->status == RF_OK ? r->auc[k] : NAN));
                    json_object_set_new(ll, r->task[k], rf_exp_json_num_(r->status == RF_OK ? r->logloss[k] : NAN));
                    if (r->parent[k] >= 0) {
                        char nmk[2 * RF_NAME_MAX + 2];
                        snprintf(nmk, sizeof nmk, "%s|%s", r->task[k], r->task[r->parent[k]]);
                        json_object_set_new(cond, nmk, rf_exp_json_num_(r->status == RF_OK ? r->cond_auc[k] : NAN));
                        json_object_set_new(inc, nmk, rf_exp_json_num_(r->status == RF_OK ? r->increase[k] : NAN));
                        if (isfinite(r->es_auc[k])) json_object_set_new(es, nmk, rf_exp_json_num_(r->status == RF_OK ? r->es_auc[k] : NAN));
                    }
                }
                json_object_set_new(rj, "auc", auc);
                json_object_set_new(rj, "cond_auc", cond);
                json_object_set_new(rj, "increase_share", inc);
                if (json_object_size(es)) json_object_set_new(rj, "es_auc", es);
                else json_decref(es);
                json_object_set_new(rj, "logloss", ll);
                if (r->target[0]) {
                    json_object_set_new(rj, "mse", rf_exp_json_num_(r->status == RF_OK ? r->mse : NAN));
                    json_object_set_new(rj, "rmse", rf_exp_json_num_(r->status == RF_OK ? r->rmse : NAN));
                    json_object_set_new(rj, "mae", rf_exp_json_num_(r->status == RF_OK ? r->mae : NAN));
                }
                json_object_set_new(rj, "train_seconds", rf_exp_json_num_(r->status == RF_OK ? r->seconds : NAN));
                json_object_set_new(rj, "best_epoch", json_integer(r->best_epoch));
                json_array_append_new(jruns, rj);
            }
            json_object_set_new(jm, "runs", jruns);
            json_object_set_new(jm, "summary", jsum);
            json_object_set_new(jm, "diverged", json_integer(diverged));
            json_object_set_new(jm, "missing", json_integer(missing));
            json_array_append_new(jms, jm);
        }
        json_object_set_new(jd, "models", jms);
        md_table(&M, cells, nm + 1, nc, nc);
    }
    free(cells);
    json_t *jseeds = json_array();
    for (int s = 0; s < ns; s++) json_array_append_new(jseeds, json_integer((json_int_t)x->seeds[s]));
    json_object_set_new(J, "format", json_string("resflow-experiment-1"));
    json_object_set_new(J, "name", json_string(x->name));
    json_object_set_new(J, "source", json_string(x->source));
    json_object_set_new(J, "seeds", jseeds);
    json_object_set_new(J, "std", json_string("sample standard deviation (n - 1) over the finished runs"));
    json_object_set_new(J, "datasets", jds);
    char *js = json_dumps(J, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(J);
    if (M.oom || C.oom || !js) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    if (!st) st = write_text(dir, "results.md", M.p, err);
    if (!st) st = write_text(dir, "results.csv", C.p, err);
    if (!st) {
        size_t n = strlen(js);
        char *js2 = malloc(n + 2);
        if (!js2) st = rf_errorf(err, RF_ENOMEM, "out of memory");
        else {
            memcpy(js2, js, n);
            js2[n] = '\n';
            js2[n + 1] = '\0';
            st = write_text(dir, "results.json", js2, err);
            free(js2);
        }
    }
    free(js);
    free(C.p);
    if (!st && md) *md = M.p;
    else free(M.p);
    return st;
}
