/* cmd_eval.c - resflow eval / predict: score a saved model on data; ranking metrics per query
 * (WR@K and variants, Recall@K, NDCG@K, List AUC, GAUC) on a model or on a predictions file. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli.h"
#include "resflow/afile.h"
#include "keep_cols.h"
#include "rank_cli.h"
#include "resflow/evalreport.h"
#include "resflow/handles.h"

/* ---- eval / predict ----------------------------------------------------------------------- */

static const char *eval_help =
    "usage: resflow eval -m MODEL [--data FILE] [ranking options] [--json[=FILE]] [--skip-bad-rows]\n"
    "       resflow eval --predictions FILE --label COL --scores LIST [ranking options] [--json[=FILE]]\n"
    "\n"
    "Evaluate a trained model: per task AUC (exact, over the whole set), logloss, mean\n"
    "prediction, observed rate, calibration; for child tasks also the conditional AUC on rows\n"
    "whose parent label is positive (e.g. CVR AUC on clicked rows). On the simulator also the\n"
    "oracle AUC of every task and, where the log has counterfactual labels (cf_<label>, preset\n"
    "ecom), the entire-space conditional AUC: CVR over all exposed rows, clicked or not.\n"
    "Without --data the model's own test rows are used (its data.test file, else the test split of\n"
    "its data source), encoded with the model's stored vocabularies and normalisers.\n"
    "When the data have a group (query/list) key, also the ranking metrics per group: Weighted\n"
    "Recall@K (W, log(1+W), sqrt(W), W^2), Recall@K, NDCG@K, List AUC and GAUC of every task score,\n"
    "of the model's stored fusion formula and of --fusion formulas (and of the simulator's true\n"
    "probabilities, the 'oracle' rows). With --predictions, the same metrics for the score columns\n"
    "of an existing predictions file (scores from any tool; format in docs/ranking.md).\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train'\n"
    "  -d, --data FILE       CSV/TSV file with the model's columns and labels\n"
    "      --predictions F   CSV/TSV predictions file (header; plain or .gz) instead of a model\n"
    "      --scores LIST     predictions: score columns to rank by ('a|b' = the ratio a/b)\n"
    "      --group COL       predictions: group (query/list) column (default 'group'; a file\n"
    "                        without one gets AUC and logloss per score over all rows)\n"
    "      --label NAME      relevance label: positives are > 0.5 (default: the deepest task's\n"
    "                        label, e.g. order; required with --predictions)\n"
    "      --weight NAME     W for WR@K: a label/column (default: the relevance label itself)\n"
    "      --weight-by LIST  W = sum of the label (or --weight) over the rows with the same values\n"
    "                        of these categorical fields/columns, e.g. query_id,item_id: the item's\n"
    "                        order count under the query in this set (the paper's W)\n"
    "      --k LIST          cut-offs K (default 5,10)\n"
    "      --fusion SPEC     also rank by a formula, e.g. add:ctr=1,ctcvr=20 or\n"
    "                        mul:ctr=0.9,ctcvr|ctr=1.1 (repeatable)\n"
    "      --no-oracle       no rows for the simulator's true probabilities (nor its oracle AUCs\n"
    "                        and the entire-space conditional AUC against cf_<label>)\n"
    "      --json[=FILE]     print metrics as JSON (to FILE if given)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "      --precision P     fp32 (default), bf16 or int8: the model's GEMMs in bfloat16 with fp32\n"
    "                        sums (AVX512-BF16 CPUs; any model), or the tower models' (resflow,\n"
    "                        nse, esmm) in int8 (weights per column, activations per row;\n"
    "                        AVX512-VNNI CPUs): more rows per second, AUCs within 0.002 of\n"
    "                        fp32's (docs/performance.md)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -h, --help            this help\n";

static const char *predict_help =
    "usage: resflow predict -m MODEL [--data FILE|-] [-o OUT.tsv|-] [--keep COLS] [--with-labels]\n"
    "\n"
    "Write per-row scores: a header line, then one line per input row with the row index and\n"
    "one probability per task (tab-separated, %.9g; ESMM/chain tasks are entire-space\n"
    "probabilities). If the model has a stored fusion formula ('resflow fusion'), a column\n"
    "'score' holds the fused ranking score; a regression model (regression.target) adds the\n"
    "column 'expected': E(v) of its threshold tasks, or the traditional head's output.\n"
    "With --with-labels the group key (when the data have one: its value as typed with --data,\n"
    "else its 64-bit hash) and the label columns follow, so the file can be read by\n"
    "'resflow eval --predictions'. Without --data the model's own test rows are used (as for\n"
    "eval); without -o, stdout.\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train'\n"
    "  -d, --data FILE       CSV/TSV file with the model's feature columns (labels not needed);\n"
    "                        '-' reads the standard input\n"
    "  -o, --out FILE        output file (written to a temporary file beside it, then renamed);\n"
    "                        '-' is the standard output (the default)\n"
    "      --keep COLS       pass these input columns through as typed (comma-separated, e.g.\n"
    "                        user_id,item_id), after 'row'; needs --data, a plain text file and\n"
    "                        every row scored (no --skip-bad-rows skips, no data.filter drops)\n"
    "      --with-labels     also write the group and label columns (the data must have labels)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "      --precision P     fp32 (default), bf16 or int8, as for 'resflow eval'\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

/* Load a model and the dataset to score (--data or the model's own test split). */
int model_and_data(const opts *o, rf_loaded_model *lm, rf_dataset **ds, int with_labels)
{
    rf_error e;
    rf_error_clear(&e);
    if (!o->model) return RF_EUSAGE;
    if (rf_model_load(o->model, lm, &e)) return die(&e);
    if (o->threads) lm->cfg.train.threads = o->threads;
    rf_config cfg = lm->cfg;
    note_threads(&cfg);
    if (o->data) {
        rf_load_opts lo = {.skip_bad_rows = o->skip_bad || cfg.train.skip_bad_rows};
        char msg[1024];
        if (rf_data_load_for_model_ex(lm, o->data, with_labels, &lo, ds, &e)) return die(&e);
        if (lo.bad_rows) note("%s", rf_load_bad_summary(&lo, o->data, msg, sizeof msg));
        note("data: %s, %zu rows", o->data, (*ds)->n);
    } else if (!strcmp(cfg.data.source, "synth")) { /* regenerated: no encoders to re-fit */
        rf_splits sp;
        if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
        *ds = sp.test;
        sp.test = NULL;
        rf_splits_free(&sp);
        note("data: test split of %s, %zu rows", cfg.data.source, (*ds)->n);
    } else { /* the model's own test rows, with its stored encoders (vocabularies, normalisers) */
        rf_load_opts lo = {.skip_bad_rows = o->skip_bad || cfg.train.skip_bad_rows};
        char msg[1024];
        if (rf_data_load_test_for_model_ex(lm, with_labels, &lo, ds, &e)) return die(&e);
        if (lo.bad_rows)
            note("%s", rf_load_bad_summary(&lo, cfg.data.test[0] ? cfg.data.test : cfg.data.source, msg, sizeof msg));
        note("data: %s of %s, %zu rows (the model's encoders)", cfg.data.test[0] ? "test file" : "test split",
             cfg.data.test[0] ? cfg.data.test : cfg.data.source, (*ds)->n);
    }
    return 0;
}

/* eval --predictions FILE without a group column: each score column against the label over all rows */
static int plain_scores(const opts *o, const rank_opts *ro, const rank_set *rs)
{
    json_t *j = o->json ? json_object() : NULL, *sj = o->json ? json_object() : NULL;
    if (!o->json)
        printf("%-24s %8s %9s %10s %10s %8s %10s\n", "score", "AUC", "logloss", "mean pred", "observed", "calib",
               "positives");
    for (int c = 0; c < rs->ncols; c++) {
        const rf_score_col *sc = &rs->cols[c];
        rf_task_metrics t = rf_task_eval(sc->x, sc->stride, rs->label, rs->lstride, NULL, 0, rs->n);
        if (!o->json) {
            printf("%-24s %8.4f %9.5f %10.5f %10.5f %8.3f %10zu\n", sc->name, t.auc, t.logloss, t.mean_pred,
                   t.mean_label, t.calib, t.positives);
            continue;
        }
        json_t *m = json_object();
        json_object_set_new(m, "auc", isfinite(t.auc) ? json_real(t.auc) : json_null());
        json_object_set_new(m, "logloss", isfinite(t.logloss) ? json_real(t.logloss) : json_null());
        json_object_set_new(m, "mean_pred", isfinite(t.mean_pred) ? json_real(t.mean_pred) : json_null());
        json_object_set_new(m, "observed", isfinite(t.mean_label) ? json_real(t.mean_label) : json_null());
        json_object_set_new(m, "n", json_integer((json_int_t)t.n));
        json_object_set_new(m, "positives", json_integer((json_int_t)t.positives));
        json_object_set_new(sj, sc->name, m);
    }
    if (!o->json) {
        printf("label %s, %zu rows; no group column: no ranking metrics\n", ro->label, rs->n);
        return 0;
    }
    json_object_set_new(j, "predictions", json_string(ro->predictions));
    json_object_set_new(j, "label", json_string(ro->label));
    json_object_set_new(j, "rows", json_integer((json_int_t)rs->n));
    json_object_set_new(j, "scores", sj);
    return write_json(j, o->json_path);
}

/* eval --predictions FILE */
static int eval_predictions(const opts *o, const rank_opts *ro)
{
    rf_config cfg;
    rf_config_default(&cfg);
    if (o->threads) cfg.train.threads = o->threads;
    note_threads(&cfg);
    rank_set rs;
    int rc = rank_set_from_file(ro, ro->predictions, o->skip_bad, &rs);
    if (rc) {
        rank_set_free(&rs);
        return rc;
    }
    if (!rs.groups) {
        rc = plain_scores(o, ro, &rs);
        rank_set_free(&rs);
        return rc;
    }
    rank_row *rows = calloc(RCLI_MAX_ROWS, sizeof *rows);
    int nrows = 0;
    if (!rows) {
        rank_set_free(&rs);
        fprintf(stderr, "resflow: error: out of memory\n");
        return RF_ENOMEM;
    }
    rc = rank_default_rows(ro, &rs, rows, &nrows);
    for (int i = 0; i < nrows && !rc; i++) rc = rank_eval_row(ro, &rs, &rows[i]);
    if (!rc) {
        if (o->json) {
            json_t *j = json_object();
            json_object_set_new(j, "predictions", json_string(ro->predictions));
            json_object_set_new(j, "ranking", rank_json(ro, &rs, rows, nrows));
            rc = write_json(j, o->json_path);
        } else {
            rank_print(stdout, ro, &rs, rows, nrows);
        }
    }
    free(rows);
    rank_set_free(&rs);
    return rc;
}

/* The text report of `resflow eval -m MODEL` (the JSON one is rf_eval_report_json's). */
static void print_report(const rank_opts *ro, const rf_loaded_model *lm, const rf_eval_report *r)
{
    const rf_model_spec *sp = rf_model_spec_of(lm->model);
    const int K = r->K, *parent = rf_model_info_of(lm->model)->parent;
    printf("%zu rows%s\n", r->rows, r->precision == RF_PREC_BF16 ? " (scored in bf16)" : r->precision == RF_PREC_INT8 ? " (scored in int8)" : "");
    print_metrics(stdout, sp, parent, &r->metrics);
    if (r->has_truth) {
        printf("oracle AUC (the simulator's true probabilities):");
        for (int k = 0; k < K; k++)
            if (r->oracle_set[k]) printf("  %s %.4f", sp->tasks[k].name, r->oracle_auc[k]);
        printf("\n");
        for (int k = 0; k < K; k++)
            if (r->es_set[k])
                printf("entire-space %s|%s AUC (conditional score vs %s on all %zu rows): %.4f, oracle %.4f\n",
                       sp->tasks[k].name, sp->tasks[parent[k]].name, r->es_label[k], r->rows, r->es_auc[k],
                       r->es_oracle[k]);
    }
    if (!r->ranked) return;
    printf("GAUC per task (its score vs its own label; groups with both classes):");
    for (int k = 0; k < K; k++)
        printf("  %s %.4f (%zu of %zu groups)", sp->tasks[k].name, r->task_gauc[k], r->gauc_used[k],
               r->gauc_used[k] + r->gauc_skipped[k]);
    printf("\n");
    rank_set *rs = calloc(1, sizeof *rs); /* rank_print reads the row count, the label, W's description */
    rank_row *rows = calloc(RF_EVAL_MAX_ROWS, sizeof *rows);
    if (rs && rows) {
        rs->n = r->rows;
        snprintf(rs->label_name, sizeof rs->label_name, "%s", r->label);
        snprintf(rs->wdesc, sizeof rs->wdesc, "%s", r->weight);
        for (int i = 0; i < r->nrows; i++) {
            memcpy(rows[i].title, r->row[i].title, sizeof rows[i].title);
            rows[i].f = r->row[i].f;
            rows[i].oracle = r->row[i].oracle;
            rows[i].r = r->row[i].r;
        }
        rank_print(stdout, ro, rs, rows, r->nrows);
    } else {
        fprintf(stderr, "resflow: error: out of memory\n");
    }
    free(rs);
    free(rows);
}

int cmd_eval(int argc, char **argv)
{
    rank_opts ro;
    int rc = rank_extract_opts("eval", &argc, argv, &ro,
                               "k label weight weight-by predictions group scores fusion no-oracle");
    if (rc) return rc;
    opts o;
    if ((rc = parse_opts("eval", argc, argv, &o, eval_help))) return rc;
    ro.cuts.threads = o.threads; /* the ranking metrics' threads (with a model: its train.threads) */
    if (ro.predictions) {
        if (o.model || o.data) return usage_error("eval", "--predictions replaces --model/--data");
        ro.allow_no_group = 1;
        return eval_predictions(&o, &ro);
    }
    if (!o.model) return usage_error("eval", "--model (or --predictions) is required");
    if (ro.scores || ro.group) return usage_error("eval", "--scores and --group apply to --predictions files");
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    if ((rc = model_and_data(&o, &lm, &ds, 1))) {
        rf_loaded_model_free(&lm);
        return rc;
    }
    rf_eval_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.n_cuts = ro.cuts.n_cuts;
    memcpy(eo.cut, ro.cuts.cut, sizeof eo.cut);
    eo.label = ro.label;
    eo.weight = ro.weight;
    eo.weight_by = ro.weight_by;
    for (int i = 0; i < ro.n_fusions; i++) eo.fusions[i] = ro.fusions[i];
    eo.n_fusions = ro.n_fusions;
    eo.no_oracle = ro.no_oracle;
    eo.threads = lm.cfg.train.threads;
    eo.precision = o.precision;
    rf_error e;
    rf_eval_report *r = NULL;
    if (rf_eval_report_run(&lm, ds, &eo, &r, &e)) {
        rc = die(&e);
    } else {
        if (!ds->group) note("no group key in the data: ranking metrics skipped (set data.group)");
        if (o.json) { /* the library's JSON, written as every --json of the tool is */
            char *text = rf_eval_report_json(r, &lm, 17);
            json_t *j = text ? json_loads(text, 0, NULL) : NULL;
            free(text);
            if (j) rc = write_json(j, o.json_path);
            else rc = die(&(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
        } else {
            print_report(&ro, &lm, r);
        }
    }
    rf_eval_report_free(r);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}

/* The standard input copied to a new temporary file (its name in path); 0 or an exit code. */
static int stdin_to_file(char *path, size_t n)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, n, "%s/resflow-stdin.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "resflow: error: cannot create a temporary file for the standard input\n");
        path[0] = 0;
        return RF_EIO;
    }
    char buf[1 << 16];
    size_t r;
    int rc = 0;
    while ((r = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (write(fd, buf, r) != (ssize_t)r) rc = RF_EIO;
    if (ferror(stdin)) rc = RF_EIO;
    if (close(fd)) rc = RF_EIO;
    if (rc) {
        fprintf(stderr, "resflow: error: cannot copy the standard input to %s\n", path);
        unlink(path);
        path[0] = 0;
    }
    return rc;
}

/* name is one of the comma-separated list */
static int kept_in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, name, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

int cmd_predict(int argc, char **argv)
{
    rank_opts ro;
    int rc = rank_extract_opts("predict", &argc, argv, &ro, "with-labels");
    if (rc) return rc;
    opts o;
    if ((rc = parse_opts("predict", argc, argv, &o, predict_help))) return rc;
    if (!o.model) return usage_error("predict", "--model is required");
    if (o.out && !strcmp(o.out, "-")) o.out = NULL; /* stdout */
    if (o.keep && !o.data) return usage_error("predict", "--keep needs --data (the file whose columns are kept)");
    char stdin_copy[64] = "";
    if (o.data && !strcmp(o.data, "-")) { /* the loader reads files: the standard input is copied to one */
        if ((rc = stdin_to_file(stdin_copy, sizeof stdin_copy))) return rc;
        o.data = stdin_copy;
    }
    if (o.out && (rc = check_output("predict", o.out, (const char *[]){o.model, o.data}, 2))) {
        if (stdin_copy[0]) unlink(stdin_copy);
        return rc;
    }
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    kept_cols kc = {0};
    rc = model_and_data(&o, &lm, &ds, ro.with_labels);
    const char *gcol = ro.with_labels && !rc && ds->group ? lm.cfg.data.schema.group : NULL;
    if (!rc && o.data && (o.keep || gcol)) rc = kept_read(o.data, &lm.cfg.data.schema, o.keep, gcol, ds->n, &kc);
    if (stdin_copy[0]) unlink(stdin_copy);
    if (rc) {
        rf_dataset_free(ds);
        rf_loaded_model_free(&lm);
        return rc;
    }
    int graw = gcol ? kept_index(&kc, gcol) : -1; /* the group's value as typed */
    int nkeep = kc.ncols - (graw >= 0 && !(o.keep && kept_in_list(o.keep, gcol)));
    rf_model *m = lm.model;
    int K = rf_model_info_of(m)->K;
    size_t n = ds->n;
    float *P = malloc((n ? n : 1) * K * sizeof *P);
    int fused = lm.fusion.kind != RF_FUSION_NONE, reg = rf_model_spec_of(m)->regression.target[0] != '\0';
    float *S = fused ? malloc((n ? n : 1) * sizeof *S) : NULL;
    float *EV = reg ? malloc((n ? n : 1) * sizeof *EV) : NULL; /* regression: the prediction */
    rf_error e;
    rf_error_clear(&e);
    if (!P || (fused && !S) || (reg && !EV)) {
        rc = RF_ENOMEM;
        fprintf(stderr, "resflow: error: out of memory\n");
    } else if (rf_model_predict_all(&lm, ds, lm.cfg.train.threads, o.precision, P, NULL, S, EV, &e)) {
        /* the probabilities, E(v) and the stored formula's score, as the bindings get them */
        rc = die(&e);
    } else if (fused) {
        char pretty[256];
        note("score = %s", rf_fusion_pretty(&lm.fusion, pretty, sizeof pretty));
    }
    if (!rc) {
        FILE *fp = stdout;
        rf_afile *af = NULL;
        if (o.out && rf_afile_open(o.out, 0, &af, &e) == RF_OK) fp = rf_afile_fp(af);
        if (o.out && !af) {
            rc = die(&e);
        } else {
            int with_group = ro.with_labels && ds->group;
            int nl = ro.with_labels ? ds->K : 0;
            fprintf(fp, "row");
            for (int j = 0; j < nkeep; j++) fprintf(fp, "\t%s", kc.name[j]);
            if (with_group) fprintf(fp, "\tgroup");
            for (int k = 0; k < K; k++) fprintf(fp, "\t%s", rf_model_spec_of(m)->tasks[k].name);
            if (fused) fprintf(fp, "\tscore");
            if (reg) fprintf(fp, "\texpected");
            for (int j = 0; j < nl; j++) {
                int clash = !strcmp(ds->label_names[j], "score") || !strcmp(ds->label_names[j], "group") ||
                            !strcmp(ds->label_names[j], "row") || (reg && !strcmp(ds->label_names[j], "expected"));
                for (int k = 0; k < K; k++) clash |= !strcmp(ds->label_names[j], rf_model_spec_of(m)->tasks[k].name);
                fprintf(fp, "\t%s%s", ds->label_names[j], clash ? "_label" : "");
            }
            fputc('\n', fp);
            for (size_t i = 0; i < n; i++) {
                fprintf(fp, "%zu", i);
                for (int j = 0; j < nkeep; j++) fprintf(fp, "\t%s", kc.val[i * (size_t)kc.ncols + j]);
                if (with_group && graw >= 0) fprintf(fp, "\t%s", kc.val[i * (size_t)kc.ncols + graw]);
                else if (with_group) fprintf(fp, "\t%llu", (unsigned long long)ds->group[i]);
                for (int k = 0; k < K; k++) fprintf(fp, "\t%.9g", P[i * K + k]);
                if (fused) fprintf(fp, "\t%.9g", (double)S[i]);
                if (reg) fprintf(fp, "\t%.9g", (double)EV[i]);
                for (int j = 0; j < nl; j++) fprintf(fp, "\t%.9g", ds->labels[i * (size_t)ds->K + j]);
                fputc('\n', fp);
            }
            if (af) {
                if (rf_afile_commit(af, 0, &e)) {
                    rc = die(&e);
                } else {
                    note("wrote %zu rows x %d tasks%s to %s", n, K, fused ? " + fused score" : "", o.out);
                }
            }
        }
    }
    free(P);
    free(S);
    free(EV);
    kept_free(&kc);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}
