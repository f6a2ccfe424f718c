/* cmd_fusion.c - resflow fusion (search the score-fusion weights that maximise WR@K on the
 * validation set, report a Table-9 style comparison, store the chosen formula in the model), and
 * the ranking pieces shared with eval/predict (rank_cli.h): options, scored sets from a model or
 * a predictions file, report rows, tables and JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "rank_cli.h"
#include "resflow/evalreport.h"

/* ---- options ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int has_arg;
} ropt;

static const ropt rank_opt_table[] = {
    {"k", 1},      {"label", 1},     {"weight", 1},      {"weight-by", 1}, {"predictions", 1},
    {"group", 1},  {"scores", 1},    {"fusion", 1},      {"objective", 1}, {"kind", 1},
    {"ctr", 1},    {"ctcvr", 1},     {"extra", 1},       {"test", 1},      {"no-save", 0},
    {"with-labels", 0}, {"no-oracle", 0}, {NULL, 0}};

static int parse_cuts(const char *cmd, const char *s, rf_rank_opts *o)
{
    o->n_cuts = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000000L || (*end && *end != ','))
            return usage_error(cmd, "--k wants cut-offs like 5,10 (each >= 1), got '%s'", s);
        if (o->n_cuts == RF_RANK_MAX_CUTS)
            return usage_error(cmd, "--k: at most %d cut-offs", RF_RANK_MAX_CUTS);
        o->cut[o->n_cuts++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!o->n_cuts) return usage_error(cmd, "--k: no cut-off given");
    return 0;
}

int rank_extract_opts(const char *cmd, int *argc, char **argv, rank_opts *ro, const char *allowed)
{
    memset(ro, 0, sizeof *ro);
    ro->cuts.n_cuts = 2;
    ro->cuts.cut[0] = 5;
    ro->cuts.cut[1] = 10;
    ro->objective = "wr";
    ro->kind = "both";
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) { /* keep the rest as is */
            while (i < *argc) argv[out++] = argv[i++];
            break;
        }
        const ropt *hit = NULL;
        const char *val = NULL;
        char name[64];
        if (!strncmp(a, "--", 2)) {
            const char *eq = strchr(a + 2, '=');
            size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (nl < sizeof name) {
                memcpy(name, a + 2, nl);
                name[nl] = '\0';
                /* allowed is a space-separated list of names */
                const char *p = allowed;
                int ok = 0;
                while (p && *p) {
                    const char *e = strchr(p, ' ');
                    size_t l = e ? (size_t)(e - p) : strlen(p);
                    if (l == nl && !strncmp(p, name, nl)) ok = 1;
                    p = e ? e + 1 : NULL;
                }
                for (const ropt *t = rank_opt_table; ok && t->name; t++)
                    if (!strcmp(t->name, name)) hit = t;
                if (hit && eq) val = eq + 1;
            }
        }
        if (!hit) {
            argv[out++] = a;
            continue;
        }
        if (hit->has_arg && !val) {
            if (i + 1 >= *argc) return usage_error(cmd, "--%s needs a value", hit->name);
            val = argv[++i];
        } else if (!hit->has_arg && val) {
            return usage_error(cmd, "--%s takes no value", hit->name);
        }
        int rc = 0;
        if (!strcmp(name, "k")) rc = parse_cuts(cmd, val, &ro->cuts);
        else if (!strcmp(name, "label")) ro->label = val;
        else if (!strcmp(name, "weight")) ro->weight = val;
        else if (!strcmp(name, "weight-by")) ro->weight_by = val;
        else if (!strcmp(name, "predictions")) ro->predictions = val;
        else if (!strcmp(name, "group")) ro->group = val;
        else if (!strcmp(name, "scores")) ro->scores = val;
        else if (!strcmp(name, "fusion")) {
            if (ro->n_fusions == 16) return usage_error(cmd, "too many --fusion options");
            ro->fusions[ro->n_fusions++] = val;
        } else if (!strcmp(name, "objective")) ro->objective = val;
        else if (!strcmp(name, "kind")) ro->kind = val;
        else if (!strcmp(name, "ctr")) ro->ctr = val;
        else if (!strcmp(name, "ctcvr")) ro->ctcvr = val;
        else if (!strcmp(name, "extra")) {
            if (ro->n_extra == 2) return usage_error(cmd, "at most 2 --extra terms");
            ro->extra[ro->n_extra++] = val;
        } else if (!strcmp(name, "test")) ro->test = val;
        else if (!strcmp(name, "no-save")) ro->no_save = 1;
        else if (!strcmp(name, "with-labels")) ro->with_labels = 1;
        else if (!strcmp(name, "no-oracle")) ro->no_oracle = 1;
        if (rc) return rc;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

/* ---- scored sets -------------------------------------------------------------------------- */

static int add_col(rank_set *rs, const char *name, const float *x, size_t stride)
{
    if (rs->ncols == RCLI_MAX_COLS) return -1;
    snprintf(rs->col_names[rs->ncols], RF_NAME_MAX, "%s", name);
    rs->cols[rs->ncols].name = rs->col_names[rs->ncols];
    rs->cols[rs->ncols].x = x;
    rs->cols[rs->ncols].stride = stride;
    rs->ncols++;
    return 0;
}

static int err_exit(rf_status st, const char *fmt, const char *a)
{
    rf_error e;
    rf_errorf(&e, st, fmt, a);
    return die(&e);
}

/* W from the --weight column and/or --weight-by fields of ds. wcol: the weight source column
 * (NULL: W is the label). Keys hash the ids of the named categorical fields. */
static int make_weights(const rank_opts *ro, rank_set *rs, const float *wcol, size_t wstride,
                        const char *wname)
{
    rf_dataset *ds = rs->ds;
    size_t n = rs->n;
    if (!ro->weight_by) {
        if (!wcol) {
            snprintf(rs->wdesc, sizeof rs->wdesc, "the row's %s label", rs->label_name);
            return 0;
        }
        rs->W = malloc((n ? n : 1) * sizeof *rs->W);
        if (!rs->W) return err_exit(RF_ENOMEM, "%s", "out of memory");
        for (size_t i = 0; i < n; i++) rs->W[i] = wcol[i * wstride];
        rs->wstride = 1;
        snprintf(rs->wdesc, sizeof rs->wdesc, "column %s", wname);
        return 0;
    }
    rs->W = malloc((n ? n : 1) * sizeof *rs->W);
    if (!rs->W) return err_exit(RF_ENOMEM, "%s", "out of memory");
    rf_error e;
    if (rf_eval_weight_by(ds, ro->weight_by, wcol ? wcol : rs->label, wcol ? wstride : rs->lstride, rs->W, &e))
        return die(&e);
    rs->wstride = 1;
    snprintf(rs->wdesc, sizeof rs->wdesc, "sum of %s over the rows with the same %s in this set",
             wcol ? wname : rs->label_name, ro->weight_by);
    return 0;
}

int rank_set_from_model(const rank_opts *ro, rf_loaded_model *lm, rf_dataset *ds, rank_set *rs,
                        int *skip)
{
    memset(rs, 0, sizeof *rs);
    rs->ds = ds;
    rs->n = ds->n;
    *skip = 0;
    rf_model *m = lm->model;
    int K = rf_model_info_of(m)->K;
    if (!ds->group) {
        *skip = 1;
        return 0;
    }
    rf_error e;
    rf_error_clear(&e);
    int lc[RF_MAX_TASKS];
    if (rf_resolve_labels(m, ds, lc, &e)) return die(&e);
    size_t n = ds->n;
    rs->P = malloc((n ? n : 1) * (size_t)K * sizeof *rs->P);
    rs->C = malloc((n ? n : 1) * (size_t)K * sizeof *rs->C);
    if (!rs->P || !rs->C) return err_exit(RF_ENOMEM, "%s", "out of memory");
    if (rf_predict(m, ds, lm->cfg.train.threads, rs->P, rs->C, &e)) return die(&e);
    for (int k = 0; k < K; k++) add_col(rs, rf_model_spec_of(m)->tasks[k].name, rs->P + k, (size_t)K);
    for (int k = 0; k < K; k++) {
        if (rf_model_info_of(m)->parent[k] < 0) continue;
        char nm[2 * RF_NAME_MAX + 2];
        snprintf(nm, sizeof nm, "%s|%s", rf_model_spec_of(m)->tasks[k].name, rf_model_spec_of(m)->tasks[rf_model_info_of(m)->parent[k]].name);
        if (strlen(nm) < RF_NAME_MAX) add_col(rs, nm, rs->C + k, (size_t)K);
    }
    int truth = ds->truth && n > 0; /* labels derived from expressions have none (NaN) */
    for (int k = 0; truth && k < K; k++) truth = !isnan(ds->truth[lc[k]]);
    if (truth && !ro->no_oracle)
        for (int k = 0; k < K; k++) {
            rs->oracle[k].name = rs->col_names[k];
            rs->oracle[k].x = ds->truth + lc[k];
            rs->oracle[k].stride = (size_t)ds->K;
            rs->n_oracle = k + 1;
        }
    /* target label: --label, else the deepest task (the last of equals) */
    int target, col;
    if (rf_eval_target(m, ds, lc, "--label", ro->label, &target, &col, &e)) return die(&e);
    snprintf(rs->label_name, sizeof rs->label_name, "%s", ds->label_names[col]);
    rs->label = ds->labels + col;
    rs->lstride = (size_t)ds->K;
    /* default fusion terms: the root of the target's chain and the target */
    int root = target;
    while (rf_model_info_of(m)->parent[root] >= 0) root = rf_model_info_of(m)->parent[root];
    snprintf(rs->ctr, sizeof rs->ctr, "%s", rf_model_spec_of(m)->tasks[root].name);
    snprintf(rs->ctcvr, sizeof rs->ctcvr, "%s", rf_model_spec_of(m)->tasks[target].name);
    if (lm->fusion.kind != RF_FUSION_NONE) {
        rs->has_fusion = 1;
        rs->fusion = lm->fusion;
    }
    const float *wcol = NULL;
    if (ro->weight) {
        int wtask, wc;
        if (rf_eval_target(m, ds, lc, "--weight", ro->weight, &wtask, &wc, &e)) return die(&e);
        wcol = ds->labels + wc;
    }
    int rc = make_weights(ro, rs, wcol, (size_t)ds->K, ro->weight);
    if (rc) return rc;
    if (rf_groups_create(ds->group, n, &rs->groups, &e)) return die(&e);
    return 0;
}

/* Does the header have this column? */
static int has_col(char **names, int nc, const char *name)
{
    for (int i = 0; i < nc; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* Add the columns a score name needs to the dense list. */
static int need_score(const char *path, char **names, int nc, const char *name, rf_schema *sc)
{
    const char *parts[2] = {name, NULL};
    char a[RF_NAME_MAX], b[RF_NAME_MAX];
    int np = 1;
    if (!has_col(names, nc, name)) {
        const char *bar = strchr(name, '|');
        if (bar && (size_t)(bar - name) < RF_NAME_MAX) {
            snprintf(a, sizeof a, "%.*s", (int)(bar - name), name);
            snprintf(b, sizeof b, "%s", bar + 1);
        }
        if (!bar || !has_col(names, nc, a) || !has_col(names, nc, b)) {
            char have[1024] = "";
            for (int i = 0; i < nc; i++) {
                size_t l = strlen(have);
                snprintf(have + l, sizeof have - l, "%s%s", i ? ", " : "", names[i]);
            }
            rf_error e;
            rf_error_at(&e, RF_EUSAGE, path, 1, 0, "no column '%s'%s (columns: %s)", name,
                        bar ? " and not a ratio of two columns" : "", have);
            return die(&e);
        }
        parts[0] = a;
        parts[1] = b;
        np = 2;
    }
    for (int p = 0; p < np; p++) {
        int dup = 0;
        for (int d = 0; d < sc->D; d++) dup |= !strcmp(sc->dense[d], parts[p]);
        if (dup) continue;
        if (sc->D == 128) return err_exit(RF_EUSAGE, "%s", "more than 128 score columns");
        snprintf(sc->dense[sc->D++], RF_NAME_MAX, "%s", parts[p]);
    }
    return 0;
}

static int add_report(char (*report)[RF_NAME_MAX], int *nrep, const char *name)
{
    if (*nrep == RCLI_MAX_COLS) return err_exit(RF_EUSAGE, "%s", "too many scores");
    snprintf(report[(*nrep)++], RF_NAME_MAX, "%s", name);
    return 0;
}

static char g_report[RCLI_MAX_COLS][RF_NAME_MAX]; /* tool state: --scores of the predictions file */
static int g_nreport;

int rank_set_from_file(const rank_opts *ro, const char *path, int skip_bad, rank_set *rs)
{
    memset(rs, 0, sizeof *rs);
    rf_error e;
    rf_error_clear(&e);
    if (!ro->label) return usage_error("eval", "--predictions needs --label COLUMN (the relevance label)");
    char delim, **names = NULL;
    int nc;
    if (rf_table_header(path, &delim, &names, &nc, &e)) return die(&e);
    rf_schema sc;
    memset(&sc, 0, sizeof sc);
    sc.delim = delim;
    sc.min_count = 1;
    const char *group = ro->group ? ro->group : "group";
    /* no --group and no column "group": plain per-row metrics where the caller allows it */
    if (ro->group || !ro->allow_no_group || has_col(names, nc, group)) snprintf(sc.group, sizeof sc.group, "%s", group);
    snprintf(sc.label[0], sizeof sc.label[0], "%s", ro->label);
    sc.K = 1;
    if (ro->weight) snprintf(sc.weight, sizeof sc.weight, "%s", ro->weight);
    int rc = 0;
    g_nreport = 0;
    if (ro->scores) {
        char list[4096];
        snprintf(list, sizeof list, "%s", ro->scores);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && !rc;
             tok = strtok_r(NULL, ",", &save)) {
            if (strlen(tok) >= RF_NAME_MAX) rc = err_exit(RF_EUSAGE, "score name '%s' too long", tok);
            else if (!(rc = need_score(path, names, nc, tok, &sc)))
                rc = add_report(g_report, &g_nreport, tok);
        }
    }
    for (int i = 0; i < ro->n_fusions && !rc; i++) {
        rf_fusion f;
        if (rf_fusion_parse(ro->fusions[i], &f, &e)) rc = die(&e);
        for (int j = 0; !rc && j < f.n; j++) rc = need_score(path, names, nc, f.name[j], &sc);
    }
    const char *terms[4] = {ro->ctr, ro->ctcvr, ro->extra[0], ro->extra[1]};
    for (int j = 0; j < 4 && !rc; j++) {
        if (!terms[j]) continue;
        rc = need_score(path, names, nc, terms[j], &sc);
        if (!rc && j == 1 && ro->ctr) { /* the multiplicative search's CVR term */
            char cvr[2 * RF_NAME_MAX + 2];
            snprintf(cvr, sizeof cvr, "%s|%s", ro->ctcvr, ro->ctr);
            if (strlen(cvr) < RF_NAME_MAX && has_col(names, nc, cvr))
                rc = need_score(path, names, nc, cvr, &sc);
        }
    }
    if (ro->weight_by && !rc) {
        char list[1024];
        snprintf(list, sizeof list, "%s", ro->weight_by);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && !rc;
             tok = strtok_r(NULL, ",", &save)) {
            if (sc.F == 64) rc = err_exit(RF_EUSAGE, "%s", "--weight-by: too many columns");
            else snprintf(sc.cat[sc.F++].name, RF_NAME_MAX, "%s", tok);
        }
    }
    free(names);
    if (rc) return rc;
    if (!sc.D) return usage_error("eval", "--predictions needs --scores LIST (or --fusion SPEC)");
    rf_encoders *enc = NULL;
    rf_load_opts lo = {0};
    lo.skip_bad_rows = skip_bad;
    rf_dataset *ds = NULL;
    if (rf_load_csv(path, &sc, &enc, &lo, &ds, &e)) return die(&e);
    rf_encoders_free(enc);
    if (lo.bad_rows) note("skipped %zu bad rows", lo.bad_rows);
    rs->ds = ds;
    rs->n = ds->n;
    for (int d = 0; d < ds->D; d++) add_col(rs, sc.dense[d], ds->dense + d, (size_t)ds->D);
    snprintf(rs->label_name, sizeof rs->label_name, "%s", ro->label);
    rs->label = ds->labels;
    rs->lstride = 1;
    if (ro->ctr) snprintf(rs->ctr, sizeof rs->ctr, "%s", ro->ctr);
    if (ro->ctcvr) snprintf(rs->ctcvr, sizeof rs->ctcvr, "%s", ro->ctcvr);
    rc = make_weights(ro, rs, ds->weight, 1, ro->weight);
    if (rc) return rc;
    if (!ds->group) {
        note("predictions: %s, %zu rows, no group column: AUC and logloss per score over all rows (no ranking "
             "metrics; --group COL names one)", path, ds->n);
        return 0;
    }
    if (rf_groups_create(ds->group, ds->n, &rs->groups, &e)) return die(&e);
    note("predictions: %s, %zu rows, %zu groups", path, ds->n, rf_groups_count(rs->groups));
    return 0;
}

void rank_set_free(rank_set *rs)
{
    if (!rs) return;
    rf_dataset_free(rs->ds);
    rf_groups_free(rs->groups);
    free(rs->W);
    free(rs->P);
    free(rs->C);
    memset(rs, 0, sizeof *rs);
}

/* ---- rows, tables, JSON ------------------------------------------------------------------- */

static int push_row(rank_row *rows, int *n, const char *title, const rf_fusion *f, int oracle)
{
    if (*n == RCLI_MAX_ROWS) return 0;
    rank_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->title, sizeof r->title, "%s%.150s", oracle ? "oracle " : "", title);
    r->f = *f;
    r->oracle = oracle;
    return 0;
}

int rank_default_rows(const rank_opts *ro, const rank_set *rs, rank_row *rows, int *nrows)
{
    *nrows = 0;
    rf_fusion extra[16];
    for (int i = 0; i < ro->n_fusions; i++) {
        rf_error e;
        if (rf_fusion_parse(ro->fusions[i], &extra[i], &e)) return die(&e);
    }
    for (int o = 0; o < (rs->n_oracle ? 2 : 1); o++) {
        int nrep = ro->predictions ? g_nreport : (o ? rs->n_oracle : rs->ncols);
        for (int i = 0; i < nrep; i++) {
            const char *name = ro->predictions ? g_report[i] : rs->col_names[i];
            rf_fusion f;
            rf_fusion_single(&f, name);
            push_row(rows, nrows, name, &f, o);
        }
        if (o && rs->n_oracle) { /* the model's conditional scores as ratios of true probabilities */
            for (int i = rs->n_oracle; i < rs->ncols; i++) {
                rf_fusion f;
                rf_fusion_single(&f, rs->col_names[i]);
                push_row(rows, nrows, rs->col_names[i], &f, o);
            }
        }
        char buf[300], pretty[256];
        if (rs->has_fusion) {
            snprintf(buf, sizeof buf, "fusion: %s", rf_fusion_pretty(&rs->fusion, pretty, sizeof pretty));
            push_row(rows, nrows, buf, &rs->fusion, o);
        }
        for (int i = 0; i < ro->n_fusions; i++)
            push_row(rows, nrows, rf_fusion_pretty(&extra[i], pretty, sizeof pretty), &extra[i], o);
    }
    return 0;
}

int rank_eval_row(const rank_opts *ro, const rank_set *rs, rank_row *row)
{
    float *buf = malloc((rs->n ? rs->n : 1) * sizeof *buf);
    if (!buf) return err_exit(RF_ENOMEM, "%s", "out of memory");
    rf_error e;
    rf_error_clear(&e);
    const rf_score_col *cols = row->oracle ? rs->oracle : rs->cols;
    int nc = row->oracle ? rs->n_oracle : rs->ncols;
    rf_status st = rf_fusion_apply(&row->f, cols, nc, rs->n, buf, &e);
    if (!st)
        st = rf_rank_eval(rs->groups, buf, 1, rs->label, rs->lstride, rs->W, rs->W ? rs->wstride : 0,
                          &ro->cuts, &row->r, &e);
    free(buf);
    return st ? die(&e) : 0;
}

static void groups_line(FILE *fp, const rf_rank_result *r)
{
    fprintf(fp,
            "groups: %zu | WR@K uses %zu (%zu with total W = 0 skipped) | Recall/NDCG use %zu (%zu "
            "without a positive skipped) | List AUC/GAUC use %zu (%zu single-class skipped)\n",
            r->groups, r->wr_groups, r->zero_weight_groups, r->pos_groups, r->no_pos_groups,
            r->auc_groups, r->single_class_groups);
}

static void fmt_val(char *b, size_t n, double v)
{
    if (isnan(v)) snprintf(b, n, "%8s", "-");
    else snprintf(b, n, "%8.4f", v);
}

void rank_print(FILE *fp, const rank_opts *ro, const rank_set *rs, const rank_row *rows, int n)
{
    fprintf(fp, "\nranking: %zu rows | label %s | W = %s\n", rs->n, rs->label_name, rs->wdesc);
    if (n) groups_line(fp, &rows[0].r);
    for (int c = 0; c < ro->cuts.n_cuts; c++) {
        int K = ro->cuts.cut[c];
        char h[8][24];
        snprintf(h[0], sizeof h[0], "WR@%d", K);
        snprintf(h[1], sizeof h[1], "WRlog@%d", K);
        snprintf(h[2], sizeof h[2], "WRsqrt@%d", K);
        snprintf(h[3], sizeof h[3], "WRsq@%d", K);
        snprintf(h[4], sizeof h[4], "Rec@%d", K);
        snprintf(h[5], sizeof h[5], "NDCG@%d", K);
        fprintf(fp, "\n%-44s %8s %8s %8s %8s %8s %8s %8s %8s\n", "score", h[0], h[1], h[2], h[3],
                h[4], h[5], "ListAUC", "GAUC");
        for (int i = 0; i < n; i++) {
            const rf_rank_result *r = &rows[i].r;
            double v[8] = {r->wr[RF_WR_W][c], r->wr[RF_WR_LOG][c], r->wr[RF_WR_SQRT][c],
                           r->wr[RF_WR_SQUARE][c], r->recall[c], r->ndcg[c], r->list_auc, r->gauc};
            fprintf(fp, "%-44.44s", rows[i].title);
            for (int j = 0; j < 8; j++) {
                char b[32];
                fmt_val(b, sizeof b, v[j]);
                fprintf(fp, " %s", b);
            }
            fputc('\n', fp);
        }
    }
}

static json_t *num(double v) { return isnan(v) ? json_null() : json_real(v); }

json_t *rank_result_json(const rank_opts *ro, const rf_rank_result *r)
{
    json_t *m = json_object();
    for (int c = 0; c < ro->cuts.n_cuts; c++) {
        char key[64];
        for (int v = 0; v < RF_WR_VARIANTS; v++) {
            snprintf(key, sizeof key, "%s@%d", rf_wr_variant_name(v), ro->cuts.cut[c]);
            json_object_set_new(m, key, num(r->wr[v][c]));
        }
        snprintf(key, sizeof key, "recall@%d", ro->cuts.cut[c]);
        json_object_set_new(m, key, num(r->recall[c]));
        snprintf(key, sizeof key, "ndcg@%d", ro->cuts.cut[c]);
        json_object_set_new(m, key, num(r->ndcg[c]));
    }
    json_object_set_new(m, "list_auc", num(r->list_auc));
    json_object_set_new(m, "gauc", num(r->gauc));
    return m;
}

static json_t *groups_json(const rf_rank_result *r)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)r->groups, "wr_used",
                     (json_int_t)r->wr_groups, "zero_weight_skipped", (json_int_t)r->zero_weight_groups,
                     "positive_used", (json_int_t)r->pos_groups, "no_positive_skipped",
                     (json_int_t)r->no_pos_groups, "auc_used", (json_int_t)r->auc_groups,
                     "single_class_skipped", (json_int_t)r->single_class_groups);
}

json_t *rank_json(const rank_opts *ro, const rank_set *rs, const rank_row *rows, int n)
{
    json_t *j = json_object();
    json_object_set_new(j, "rows", json_integer((json_int_t)rs->n));
    json_object_set_new(j, "label", json_string(rs->label_name));
    json_object_set_new(j, "weight", json_string(rs->wdesc));
    json_t *cuts = json_array();
    for (int c = 0; c < ro->cuts.n_cuts; c++) json_array_append_new(cuts, json_integer(ro->cuts.cut[c]));
    json_object_set_new(j, "cutoffs", cuts);
    if (n) json_object_set_new(j, "groups", groups_json(&rows[0].r));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char spec[600];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(rows[i].title));
        json_object_set_new(o, "formula", json_string(rf_fusion_spec(&rows[i].f, spec, sizeof spec)));
        json_object_set_new(o, "oracle", json_boolean(rows[i].oracle));
        json_object_set_new(o, "metrics", rank_result_json(ro, &rows[i].r));
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "scores", arr);
    return j;
}

/* ---- resflow fusion ----------------------------------------------------------------------- */

static const char *fusion_help =
    "usage: resflow fusion -m MODEL [--data VALID] [--test TEST] [options]\n"
    "       resflow fusion --predictions FILE --label COL --ctr COL --ctcvr COL [--test FILE] [options]\n"
    "\n"
    "Search the score-fusion weights that maximise a ranking objective (default WR@K at the first\n"
    "--k) on the validation set, compare the formulas on the validation and test sets (like the\n"
    "paper's Table 9, offline part) and store the best formula in the model file, where\n"
    "'resflow predict' and 'resflow eval' use it.\n"
    "  multiplicative: ctr^a * cvr^(2-a), cvr = ctcvr|ctr (a on [0, 2]; a = 1 is ctcvr itself)\n"
    "  additive:       ctr + b*ctcvr (+ c*extra ...)\n"
    "Without --data the model's own validation and test splits are used. Rows are grouped by the\n"
    "data's group key (the simulator: one group per result list). See docs/ranking.md.\n"
    "\n"
    "  -m, --model FILE      model file; the formula is stored in it (atomically) unless -o/--no-save\n"
    "  -d, --data FILE       validation data (the search set) with the model's columns and labels\n"
    "      --test FILE       test data to report on (default: the model's test split without --data)\n"
    "      --predictions F   search on a predictions file instead of a model (nothing is stored)\n"
    "      --kind KIND       mul, add or both (default both; the better on validation is stored)\n"
    "      --objective M     wr, wr_log, wr_sqrt, wr_square, recall, ndcg, list_auc, gauc (default wr)\n"
    "      --k LIST          cut-offs K; the first is the objective's (default 5,10)\n"
    "      --label NAME      relevance label (default: the deepest task's label, e.g. order)\n"
    "      --weight NAME     W column (default: the label)\n"
    "      --weight-by LIST  W = sum of the label (or --weight) over rows with the same values of\n"
    "                        these categorical fields, e.g. query_id,item_id (orders per item and query)\n"
    "      --ctr NAME        first term (default: the root task of the label's chain)\n"
    "      --ctcvr NAME      second term (default: the label's task)\n"
    "      --extra NAME      an extra additive term (repeatable, up to 2)\n"
    "      --group COL       group column of a predictions file (default 'group')\n"
    "      --no-oracle       no rows for the simulator's true probabilities\n"
    "  -o, --out FILE        store the formula in a copy of the model at FILE\n"
    "      --no-save         do not store the formula\n"
    "      --json[=FILE]     write the comparison as JSON\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -h, --help            this help\n";

/* Fewer usable validation groups than this: a warning (the search overfits small sets). */
#define FUSION_MIN_GROUPS 100

typedef struct {
    char title[160];
    rf_fusion f;
    int oracle;
    rf_rank_result rv, rt; /* validation, test */
    int has_test;
    int searched;          /* a searched formula (a candidate to store) */
} cand;

static int eval_on(const rank_opts *ro, const rank_set *rs, const rf_fusion *f, int oracle,
                   rf_rank_result *r)
{
    rank_row row;
    memset(&row, 0, sizeof row);
    row.f = *f;
    row.oracle = oracle;
    int rc = rank_eval_row(ro, rs, &row);
    *r = row.r;
    return rc;
}

static int do_search(const rank_opts *ro, const rank_set *rs, rf_fusion_kind kind, rf_rank_objective obj,
                     int oracle, rf_fusion *best)
{
    rf_fusion_search_opts so;
    memset(&so, 0, sizeof so);
    so.kind = kind;
    so.objective = obj;
    so.cut = ro->cuts.cut[0];
    so.threads = ro->cuts.threads;
    snprintf(so.term[0], RF_NAME_MAX, "%s", rs->ctr);
    if (kind == RF_FUSION_MUL) {
        char cvr[2 * RF_NAME_MAX + 2];
        snprintf(cvr, sizeof cvr, "%s|%s", rs->ctcvr, rs->ctr);
        if (strlen(cvr) >= RF_NAME_MAX) return err_exit(RF_EUSAGE, "term name '%s' too long", cvr);
        snprintf(so.term[1], RF_NAME_MAX, "%.63s", cvr);
        so.n_terms = 2;
    } else {
        snprintf(so.term[1], RF_NAME_MAX, "%s", rs->ctcvr);
        so.n_terms = 2;
        for (int i = 0; i < ro->n_extra; i++) snprintf(so.term[so.n_terms++], RF_NAME_MAX, "%s", ro->extra[i]);
    }
    rf_error e;
    rf_error_clear(&e);
    int evals = 0;
    if (rf_fusion_search(&so, oracle ? rs->oracle : rs->cols, oracle ? rs->n_oracle : rs->ncols, rs->groups,
                         rs->label, rs->lstride, rs->W, rs->W ? rs->wstride : 0, best, &evals, &e))
        return die(&e);
    char pretty[256];
    note("%s%s search: %d evaluations, best %s = %.5f: %s", oracle ? "oracle " : "",
         kind == RF_FUSION_MUL ? "multiplicative" : "additive", evals, best->objective, best->value,
         rf_fusion_pretty(best, pretty, sizeof pretty));
    return 0;
}

static void print_cands(const rank_opts *ro, rf_rank_objective obj, const cand *cs, int n, int base)
{
    int K = ro->cuts.cut[0];
    char on[48];
    if (obj == RF_OBJ_LIST_AUC || obj == RF_OBJ_GAUC) snprintf(on, sizeof on, "%s", rf_rank_objective_name(obj));
    else snprintf(on, sizeof on, "%s@%d", rf_rank_objective_name(obj), K);
    printf("\n%-44s %9s %9s %9s %9s %8s %8s %8s %8s\n", "formula", "valid", "test", "test vs", "WR@K", "Rec@K",
           "NDCG@K", "ListAUC", "GAUC");
    printf("%-44s %9s %9s %9s %9s %8s %8s %8s %8s\n", "", on, on, "base", "(test)", "(test)", "(test)",
           "(test)", "(test)");
    double bt = cs[base].has_test ? rf_rank_value(&cs[base].rt, obj, 0) : NAN;
    for (int i = 0; i < n; i++) {
        const cand *c = &cs[i];
        double v = rf_rank_value(&c->rv, obj, 0), t = c->has_test ? rf_rank_value(&c->rt, obj, 0) : NAN;
        char b[9][32];
        fmt_val(b[0], sizeof b[0], v);
        fmt_val(b[1], sizeof b[1], t);
        if (isnan(t) || isnan(bt) || bt == 0 || c->oracle) snprintf(b[2], sizeof b[2], "%8s", "");
        else snprintf(b[2], sizeof b[2], "%+7.2f%%", 100.0 * (t - bt) / bt);
        const rf_rank_result *r = c->has_test ? &c->rt : &c->rv;
        fmt_val(b[3], sizeof b[3], c->has_test ? r->wr[RF_WR_W][0] : NAN);
        fmt_val(b[4], sizeof b[4], c->has_test ? r->recall[0] : NAN);
        fmt_val(b[5], sizeof b[5], c->has_test ? r->ndcg[0] : NAN);
        fmt_val(b[6], sizeof b[6], c->has_test ? r->list_auc : NAN);
        fmt_val(b[7], sizeof b[7], c->has_test ? r->gauc : NAN);
        printf("%-44.44s %9s %9s %9s %9s %8s %8s %8s %8s\n", c->title, b[0], b[1], b[2], b[3], b[4], b[5],
               b[6], b[7]);
    }
}

int cmd_fusion(int argc, char **argv)
{
    rank_opts ro;
    int rc = rank_extract_opts("fusion", &argc, argv, &ro,
                               "k label weight weight-by predictions group objective kind ctr ctcvr "
                               "extra test no-save no-oracle");
    if (rc) return rc;
    opts o;
    if ((rc = parse_opts("fusion", argc, argv, &o, fusion_help))) return rc;
    if (!o.model == !ro.predictions)
        return usage_error("fusion", "give either --model or --predictions");
    if (ro.predictions && o.out) return usage_error("fusion", "-o needs --model (a predictions file has no model)");
    if (o.out && ro.no_save) return usage_error("fusion", "-o and --no-save contradict each other");
    rf_rank_objective obj;
    rf_error e;
    rf_error_clear(&e);
    if (rf_rank_objective_parse(ro.objective, &obj, &e)) return die(&e);
    int do_mul = !strcmp(ro.kind, "mul") || !strcmp(ro.kind, "both");
    int do_add = !strcmp(ro.kind, "add") || !strcmp(ro.kind, "both");
    if (!do_mul && !do_add) return usage_error("fusion", "--kind is mul, add or both, got '%s'", ro.kind);
    if (ro.n_extra && !do_add) return usage_error("fusion", "--extra terms need the additive kind");

    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rank_set sv, st;
    memset(&sv, 0, sizeof sv);
    memset(&st, 0, sizeof st);
    int has_test = 0, skip = 0;
    const char *search_desc = "";
    if (o.model) {
        if (rf_model_load(o.model, &lm, &e)) return die(&e);
        if (o.threads) lm.cfg.train.threads = o.threads;
        ro.cuts.threads = lm.cfg.train.threads;
        rf_config cfg = lm.cfg;
        note_threads(&cfg);
        rf_dataset *dv = NULL, *dt = NULL;
        int sb = o.skip_bad || cfg.train.skip_bad_rows;
        size_t bad = 0;
        if (o.data) {
            if (rf_data_load_for_model(&lm, o.data, sb, 1, &dv, &bad, &e)) goto fail_die;
            if (ro.test && rf_data_load_for_model(&lm, ro.test, sb, 1, &dt, &bad, &e)) {
                rf_dataset_free(dv);
                goto fail_die;
            }
            search_desc = o.data;
        } else {
            if (ro.test) {
                rf_loaded_model_free(&lm);
                return usage_error("fusion", "--test needs --data (without --data the model's own splits are used)");
            }
            rf_splits sp;
            if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) goto fail_die;
            dv = sp.valid;
            dt = sp.test;
            sp.valid = sp.test = NULL;
            rf_splits_free(&sp);
            search_desc = "the validation split";
        }
        if ((rc = rank_set_from_model(&ro, &lm, dv, &sv, &skip))) {
            rf_dataset_free(dt);
            goto done;
        }
        if (skip) {
            rf_dataset_free(dt);
            rc = err_exit(RF_EUSAGE, "%s", "the data have no group key (set data.group): fusion search ranks within groups");
            goto done;
        }
        if (dt) {
            if ((rc = rank_set_from_model(&ro, &lm, dt, &st, &skip))) goto done;
            has_test = !skip;
        }
    } else {
        rf_config cfg;
        rf_config_default(&cfg);
        if (o.threads) cfg.train.threads = o.threads;
        ro.cuts.threads = cfg.train.threads;
        note_threads(&cfg);
        if (!ro.ctr || !ro.ctcvr) return usage_error("fusion", "--predictions needs --ctr and --ctcvr columns");
        if ((rc = rank_set_from_file(&ro, ro.predictions, o.skip_bad, &sv))) goto done;
        if (ro.test) {
            if ((rc = rank_set_from_file(&ro, ro.test, o.skip_bad, &st))) goto done;
            has_test = 1;
        }
        search_desc = ro.predictions;
    }
    if (ro.ctr) snprintf(sv.ctr, sizeof sv.ctr, "%s", ro.ctr);
    if (ro.ctcvr) snprintf(sv.ctcvr, sizeof sv.ctcvr, "%s", ro.ctcvr);
    if (!strcmp(sv.ctr, sv.ctcvr)) {
        rc = usage_error("fusion", "the two fusion terms are the same ('%s'); name them with --ctr/--ctcvr", sv.ctr);
        goto done;
    }
    note("fusion search on %s: %zu rows, %zu groups, objective %s@%d, W = %s", search_desc, sv.n,
         rf_groups_count(sv.groups), ro.objective, ro.cuts.cut[0], sv.wdesc);

    cand cs[16];
    int nc = 0;
    int with_oracle = sv.n_oracle > 0;
    for (int orc = 0; orc <= with_oracle; orc++) {
        rf_fusion f;
        rf_fusion_single(&f, sv.ctcvr);
        cs[nc] = (cand){.f = f, .oracle = orc};
        snprintf(cs[nc++].title, sizeof cs[0].title, "%s%s (baseline)", orc ? "oracle " : "", sv.ctcvr);
        rf_fusion_single(&f, sv.ctr);
        cs[nc] = (cand){.f = f, .oracle = orc};
        snprintf(cs[nc++].title, sizeof cs[0].title, "%s%s", orc ? "oracle " : "", sv.ctr);
        if (!orc && sv.has_fusion) {
            char pretty[256];
            cs[nc] = (cand){.f = sv.fusion, .oracle = 0};
            snprintf(cs[nc++].title, sizeof cs[0].title, "stored: %s",
                     rf_fusion_pretty(&sv.fusion, pretty, sizeof pretty));
        }
        for (int kind = RF_FUSION_MUL; kind <= RF_FUSION_ADD; kind++) {
            if ((kind == RF_FUSION_MUL && !do_mul) || (kind == RF_FUSION_ADD && !do_add)) continue;
            if ((rc = do_search(&ro, &sv, (rf_fusion_kind)kind, obj, orc, &f))) goto done;
            char pretty[256];
            cs[nc] = (cand){.f = f, .oracle = orc, .searched = 1};
            snprintf(cs[nc++].title, sizeof cs[0].title, "%s%s: %s", orc ? "oracle " : "",
                     kind == RF_FUSION_MUL ? "mul" : "add", rf_fusion_pretty(&f, pretty, sizeof pretty));
        }
    }
    for (int i = 0; i < nc; i++) {
        if ((rc = eval_on(&ro, &sv, &cs[i].f, cs[i].oracle, &cs[i].rv))) goto done;
        if (has_test) {
            if ((rc = eval_on(&ro, &st, &cs[i].f, cs[i].oracle, &cs[i].rt))) goto done;
            cs[i].has_test = 1;
        }
    }
    /* the chosen formula: the best searched (non-oracle) one on validation, with a finite value */
    int chosen = -1;
    for (int i = 0; i < nc; i++) {
        if (cs[i].oracle || !cs[i].searched || !isfinite(rf_rank_value(&cs[i].rv, obj, 0))) continue;
        if (chosen < 0 || rf_rank_value(&cs[i].rv, obj, 0) > rf_rank_value(&cs[chosen].rv, obj, 0)) chosen = i;
    }
    /* the groups the objective can use: few lists make weights that do not carry over */
    const rf_rank_result *g0 = &cs[0].rv;
    size_t used = obj == RF_OBJ_LIST_AUC || obj == RF_OBJ_GAUC ? g0->auc_groups
                  : obj == RF_OBJ_RECALL || obj == RF_OBJ_NDCG ? g0->pos_groups
                                                                : g0->wr_groups;
    const char *usable = obj == RF_OBJ_LIST_AUC || obj == RF_OBJ_GAUC ? "have both classes"
                         : obj == RF_OBJ_RECALL || obj == RF_OBJ_NDCG ? "have a positive"
                                                                       : "have weight W > 0";
    if (chosen < 0) {
        rf_errorf(&e, RF_ENUMERIC,
                      "the objective %s is NaN on %s: %zu of its %zu groups %s; no formula is stored. "
                      "Search on data with positives in the groups (--data, or a larger validation split)",
                      ro.objective, search_desc, used, g0->groups, usable);
        rc = die(&e);
        goto done;
    }
    if (used < FUSION_MIN_GROUPS)
        fprintf(stderr,
                "warning: only %zu groups of %s %s (the objective %s uses those); weights searched on fewer "
                "than %d groups rarely carry over to new data. Use more validation data (data.valid_frac, "
                "--data) and check the result on the test set.\n",
                used, search_desc, usable, ro.objective, FUSION_MIN_GROUPS);
    int text = !o.json || o.json_path; /* JSON on stdout replaces the text */
    if (text) {
        printf("fusion search on %s (%zu rows, %zu groups)%s\nlabel %s | W = %s\n", search_desc, sv.n,
               rf_groups_count(sv.groups), has_test ? ", reported on the test set too" : "", sv.label_name,
               sv.wdesc);
        groups_line(stdout, &cs[0].rv);
        if (has_test) {
            printf("test set: %zu rows; ", st.n);
            groups_line(stdout, &cs[0].rt);
        }
        print_cands(&ro, obj, cs, nc, 0);
    }
    char spec[600] = "";
    const char *saved = NULL;
    if (chosen >= 0) {
        rf_fusion_spec(&cs[chosen].f, spec, sizeof spec);
        if (o.model && !ro.no_save) {
            saved = o.out ? o.out : o.model;
            if (rf_model_set_fusion(o.model, saved, &cs[chosen].f, &e)) {
                rc = die(&e);
                goto done;
            }
        }
        if (text) {
            char pretty[256];
            printf("\nchosen (best %s on the search set): %s   [%s]\n", cs[chosen].f.objective,
                   rf_fusion_pretty(&cs[chosen].f, pretty, sizeof pretty), spec);
            if (saved) printf("stored in %s (used by 'resflow predict' and 'resflow eval')\n", saved);
        }
    }
    if (o.json) {
        json_t *j = json_object();
        char on[48];
        if (obj == RF_OBJ_LIST_AUC || obj == RF_OBJ_GAUC) snprintf(on, sizeof on, "%s", ro.objective);
        else snprintf(on, sizeof on, "%s@%d", ro.objective, ro.cuts.cut[0]);
        json_object_set_new(j, "objective", json_string(on));
        if (o.model) json_object_set_new(j, "model", json_string(type_name(rf_model_spec_of(lm.model)->model.type)));
        json_object_set_new(j, "label", json_string(sv.label_name));
        json_object_set_new(j, "weight", json_string(sv.wdesc));
        json_object_set_new(j, "search_rows", json_integer((json_int_t)sv.n));
        json_object_set_new(j, "search_groups", groups_json(&cs[0].rv));
        if (has_test) {
            json_object_set_new(j, "test_rows", json_integer((json_int_t)st.n));
            json_object_set_new(j, "test_groups", groups_json(&cs[0].rt));
        }
        json_t *arr = json_array();
        for (int i = 0; i < nc; i++) {
            json_t *c = json_object();
            char s2[600];
            json_object_set_new(c, "name", json_string(cs[i].title));
            json_object_set_new(c, "formula", json_string(rf_fusion_spec(&cs[i].f, s2, sizeof s2)));
            json_object_set_new(c, "oracle", json_boolean(cs[i].oracle));
            json_object_set_new(c, "valid", rank_result_json(&ro, &cs[i].rv));
            if (has_test) json_object_set_new(c, "test", rank_result_json(&ro, &cs[i].rt));
            json_array_append_new(arr, c);
        }
        json_object_set_new(j, "candidates", arr);
        json_object_set_new(j, "chosen", chosen >= 0 ? json_string(spec) : json_null());
        json_object_set_new(j, "stored_in", saved ? json_string(saved) : json_null());
        rc = write_json(j, o.json_path);
    }
done:
    rank_set_free(&sv);
    rank_set_free(&st);
    rf_loaded_model_free(&lm);
    return rc;
fail_die:
    rc = die(&e);
    goto done;
}
