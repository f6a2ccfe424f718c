/* cmd_probe.c - resflow probe: the learned residuals of a trained tower model (paper §4.4,
 * Fig. 4): rows grouped A/B/C along the task chain, their hidden features, residuals and
 * residual logits as JSON and SVG heatmaps, and per-group means. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "resflow/afile.h"
#include "cli.h"
#include "resflow/lab/probe.h"

static const char *probe_help =
    "usage: resflow probe -m MODEL [--data FILE] [--task NAME] [--rows N] [--seed S] [--per-key]\n"
    "                     [--show N] [--units N] [--limit X] [--init] [--label TEXT] -o DIR\n"
    "\n"
    "Probe what a ResFlow/NSE/ESMM model learned (paper §4.4, Fig. 4). Rows are grouped along the\n"
    "task path root -> TASK: A = every path task positive (click and order), B = all but the last\n"
    "(click, no order), C = none (no click); deeper chains give A, B, C, D ... Rows whose labels are\n"
    "not monotone along the path are left out. N rows per group are drawn from the seed and run\n"
    "through the model (inference mode). Dumped per tower k and hidden layer l:\n"
    "  f_k^l  the tower's own block output (BN(act(W o + b)), before the link): with a link behind\n"
    "         layer l this is the residual the child learns on top of its parent\n"
    "  o_k^l  the layer output, = f_k^l + o_parent^l where the link is on\n"
    "and per task the logit s_k, the residual logit r_k (what tower k adds to its parent's logit;\n"
    "without a logit link the tower's whole logit) and the probability.\n"
    "\n"
    "Writes DIR/probe.json (every sampled row: labels, logits, residual logits, probabilities,\n"
    "f and o of every tower and layer; the per-group summary), DIR/layerL.svg (heatmaps of\n"
    "hidden layer L: the root's features, each child's residual and recovered output, or for\n"
    "NSE each tower's features) and DIR/logits.svg; prints the mean ± std residual logit of TASK\n"
    "per group, the mean |hidden feature| per group and how well the features separate the\n"
    "groups (Calinski-Harabasz index: between-group over within-group variance).\n"
    "Without --data the test split of the model's own data source is used.\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train' (resflow, nse or esmm)\n"
    "  -d, --data FILE       CSV/TSV file with the model's columns and labels\n"
    "  -o, --out DIR         output directory (created)\n"
    "      --task NAME       the path's last task (default: the model's last task)\n"
    "      --rows N          rows per group (default 10); with --per-key, keys\n"
    "      --seed S          sampling seed (default 1)\n"
    "      --per-key         draw N group keys (data.group: queries/users) that have a row of every\n"
    "                        group, and one row of each group per key (the paper's users x items)\n"
    "      --show N          rows per group in the heatmaps (default min(N, 10))\n"
    "      --units N         units per tower in the heatmaps (default 64; 0 = all)\n"
    "      --limit X[,X2..]  colour scale of the hidden-layer heatmaps, [-X, X], one per layer (the\n"
    "                        last repeats; default: the largest |value| shown)\n"
    "      --init            probe the same network at its initial weights (train.seed), untrained\n"
    "      --label TEXT      model name in the figure titles (default: the model type)\n"
    "      --no-features     leave the per-unit features out of probe.json (summary and logits only)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

enum { P_TASK = 2000, P_ROWS, P_SEED, P_PERKEY, P_SHOW, P_UNITS, P_LIMIT, P_INIT, P_LABEL, P_NOFEAT, P_SKIP, P_THREADS };

static const struct option probe_opts[] = {
    {"model", required_argument, 0, 'm'},    {"data", required_argument, 0, 'd'},
    {"out", required_argument, 0, 'o'},      {"task", required_argument, 0, P_TASK},
    {"rows", required_argument, 0, P_ROWS},  {"seed", required_argument, 0, P_SEED},
    {"per-key", no_argument, 0, P_PERKEY},   {"show", required_argument, 0, P_SHOW},
    {"units", required_argument, 0, P_UNITS}, {"limit", required_argument, 0, P_LIMIT},
    {"init", no_argument, 0, P_INIT},        {"label", required_argument, 0, P_LABEL},
    {"no-features", no_argument, 0, P_NOFEAT}, {"skip-bad-rows", no_argument, 0, P_SKIP},
    {"threads", required_argument, 0, P_THREADS}, {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};

static int parse_long(const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *stat_json(rf_probe_stat s)
{
    json_t *o = json_object();
    json_object_set_new(o, "mean", num(s.mean));
    json_object_set_new(o, "std", num(s.std));
    json_object_set_new(o, "n", json_integer((json_int_t)s.n));
    return o;
}

static json_t *floats(const float *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, num(v[i]));
    return a;
}

/* {"layer", "tower", "kind"} of path task d's features at hidden layer l */
static json_t *feature_key(const rf_probe *p, const rf_model *m, int l, int d, int kind)
{
    json_t *f = json_object();
    json_object_set_new(f, "layer", json_integer(l + 1));
    json_object_set_new(f, "tower", json_string(rf_model_spec_of(m)->tasks[p->path[d]].name));
    json_object_set_new(f, "kind", json_string(kind ? "block" : "out"));
    return f;
}

static int save_text(const char *path, const char *text)
{
    rf_error e;
    if (rf_write_atomic(path, text, strlen(text), &e) == RF_OK) return 0;
    fprintf(stderr, "resflow: error: %s\n", e.msg);
    return RF_EIO;
}

static json_t *probe_json(const rf_probe *p, const rf_model *m, const char *label, const rf_probe_opts *po,
                          int features)
{
    int K = p->K, G = p->n_groups, leaf = p->leaf;
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(label));
    json_object_set_new(j, "type", json_string(rf_model_type_name(rf_model_spec_of(m)->model.type)));
    json_object_set_new(j, "task", json_string(rf_model_spec_of(m)->tasks[leaf].name));
    json_t *path = json_array();
    for (int d = 0; d < p->depth; d++) json_array_append_new(path, json_string(rf_model_spec_of(m)->tasks[p->path[d]].name));
    json_object_set_new(j, "path", path);
    json_object_set_new(j, "rows_per_group", json_integer(p->per_group));
    json_object_set_new(j, "seed", json_integer((json_int_t)po->seed));
    json_object_set_new(j, "per_key", json_boolean(po->per_key));
    json_t *links = json_array();
    for (int l = 0; l < p->L; l++) json_array_append_new(links, json_boolean(p->link[l]));
    json_object_set_new(j, "feature_links", links);
    json_object_set_new(j, "logit_link", json_boolean(p->link[p->L]));
    json_t *hid = json_array();
    for (int l = 0; l < p->L; l++) json_array_append_new(hid, json_integer(p->H[l]));
    json_object_set_new(j, "hidden", hid);
    json_object_set_new(j, "inconsistent_rows", json_integer((json_int_t)p->inconsistent));
    if (po->per_key) json_object_set_new(j, "eligible_keys", json_integer((json_int_t)p->eligible_keys));

    json_t *groups = json_array();
    for (int g = 0; g < G; g++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(p->group_name[g]));
        json_object_set_new(o, "labels", json_string(p->group_desc[g]));
        json_object_set_new(o, po->per_key ? "available_keys" : "available_rows",
                            json_integer((json_int_t)p->available[g]));
        json_object_set_new(o, "residual_logit", stat_json(p->res[g]));
        if (p->gap[g].n) json_object_set_new(o, "logit_minus_parent", stat_json(p->gap[g]));
        json_object_set_new(o, "prob", stat_json(p->p[g]));
        json_t *feat = json_array();
        for (int l = 0; l < p->L; l++)
            for (int d = 0; d < p->depth; d++)
                for (int kind = 0; kind < 2; kind++) {
                    json_t *f = feature_key(p, m, l, d, kind);
                    json_object_set_new(f, "mean_abs",
                                        stat_json(p->mag[((size_t)(l * p->depth + d) * 2 + kind) * G + g]));
                    json_array_append_new(feat, f);
                }
        json_object_set_new(o, "features", feat);
        json_array_append_new(groups, o);
    }
    json_object_set_new(j, "groups", groups);
    json_t *sep = json_array();
    for (int l = 0; l < p->L; l++)
        for (int d = 0; d < p->depth; d++)
            for (int kind = 0; kind < 2; kind++) {
                json_t *f = feature_key(p, m, l, d, kind);
                json_object_set_new(f, "calinski_harabasz", num(p->sep[(size_t)(l * p->depth + d) * 2 + kind]));
                json_array_append_new(sep, f);
            }
    json_object_set_new(j, "separation", sep);

    json_t *rows = json_array();
    for (size_t i = 0; i < p->n; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "row", json_integer((json_int_t)p->row[i]));
        json_object_set_new(r, "group", json_string(p->group_name[p->group[i]]));
        if (p->key) json_object_set_new(r, "key", json_integer((json_int_t)p->key[i]));
        json_t *lab = json_object(), *lg = json_object(), *res = json_object(), *pr = json_object();
        for (int k = 0; k < K; k++) {
            const char *kn = rf_model_spec_of(m)->tasks[k].name;
            json_object_set_new(lab, kn, num(p->label[i * K + k]));
            json_object_set_new(lg, kn, num(p->logit[i * K + k]));
            json_object_set_new(res, kn, num(p->residual[i * K + k]));
            json_object_set_new(pr, kn, num(p->prob[i * K + k]));
        }
        json_object_set_new(r, "labels", lab);
        json_object_set_new(r, "logit", lg);
        json_object_set_new(r, "residual_logit", res);
        json_object_set_new(r, "prob", pr);
        if (features) {
            json_t *layers = json_array();
            for (int l = 0; l < p->L; l++) {
                int H = p->H[l];
                json_t *towers = json_object();
                for (int k = 0; k < K; k++) {
                    json_t *t = json_object();
                    size_t at = i * (size_t)K * H + (size_t)k * H;
                    json_object_set_new(t, "block", floats(p->block[l] + at, H));
                    json_object_set_new(t, "out", floats(p->out[l] + at, H));
                    json_object_set_new(towers, rf_model_spec_of(m)->tasks[k].name, t);
                }
                json_array_append_new(layers, towers);
            }
            json_object_set_new(r, "layers", layers);
        }
        json_array_append_new(rows, r);
    }
    json_object_set_new(j, "rows", rows);
    return j;
}

static void print_summary(FILE *fp, const rf_probe *p, const rf_model *m, const char *label)
{
    int G = p->n_groups, leaf = p->leaf, par = rf_model_info_of(m)->parent[leaf];
    const char *ln = rf_model_spec_of(m)->tasks[leaf].name;
    fprintf(fp, "%s, task %s, %d rows per group\n\n", label, ln, p->per_group);
    if (par >= 0 && p->link[p->L])
        fprintf(fp, "residual logit r_%s = s_%s - s_%s (what the %s tower adds to the %s logit), per group:\n", ln, ln,
                rf_model_spec_of(m)->tasks[par].name, ln, rf_model_spec_of(m)->tasks[par].name);
    else
        fprintf(fp, "own logit r_%s of the %s tower (no logit link: its whole logit), per group:\n", ln, ln);
    fprintf(fp, "%-5s %-28s %10s  %-17s  %-17s  %10s\n", "group", "labels", "available", "r mean ± std",
            par >= 0 ? "s - s_parent" : "", "p mean");
    for (int g = 0; g < G; g++) {
        char r[40], d[40] = "";
        snprintf(r, sizeof r, "%7.3f ± %.3f", p->res[g].mean, p->res[g].std);
        if (p->gap[g].n) snprintf(d, sizeof d, "%7.3f ± %.3f", p->gap[g].mean, p->gap[g].std);
        fprintf(fp, "%-5s %-28s %10zu  %-17s  %-17s  %10.5f\n", p->group_name[g], p->group_desc[g], p->available[g], r,
                d, p->p[g].mean);
    }
    fprintf(fp, "\nhidden features: mean |x| per group (± std over rows); CH = Calinski-Harabasz index of the groups\n");
    fprintf(fp, "%-5s %-12s %-10s", "layer", "tower", "feature");
    for (int g = 0; g < G; g++) fprintf(fp, "  %-15s", p->group_name[g]);
    fprintf(fp, " %9s\n", "CH");
    for (int l = 0; l < p->L; l++)
        for (int d = 0; d < p->depth; d++) {
            int k = p->path[d], linked = p->link[l] && rf_model_info_of(m)->parent[k] >= 0;
            for (int kind = linked ? 1 : 0; kind >= 0; kind--) {
                size_t s = (size_t)(l * p->depth + d) * 2 + kind;
                fprintf(fp, "%-5d %-12s %-10s", l + 1, rf_model_spec_of(m)->tasks[k].name,
                        kind ? "f residual" : linked ? "o = o_p+f" : "o");
                for (int g = 0; g < G; g++) {
                    char c[40];
                    snprintf(c, sizeof c, "%.3f ± %.3f", p->mag[s * G + g].mean, p->mag[s * G + g].std);
                    fprintf(fp, "  %-15s", c);
                }
                fprintf(fp, " %9.2f\n", p->sep[s]);
            }
        }
}

int cmd_probe(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    rf_probe_opts po = rf_probe_default();
    const char *task = NULL, *label = NULL;
    long show = -1, units = 64, v;
    float limit[RF_MAX_LAYERS] = {0};
    int init = 0, features = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:d:o:qh", probe_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'd': o.data = optarg; break;
        case 'o': o.out = optarg; break;
        case 'q': g_quiet = 1; break;
        case 'h': fputs(probe_help, stdout); return 0;
        case P_TASK: task = optarg; break;
        case P_ROWS:
            if (parse_long(optarg, 1, 100000, &v)) return usage_error("probe", "--rows wants 1..100000, got '%s'", optarg);
            po.rows = (int)v;
            break;
        case P_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("probe", "--seed wants a non-negative integer, got '%s'", optarg);
            po.seed = s;
            break;
        }
        case P_PERKEY: po.per_key = 1; break;
        case P_SHOW:
            if (parse_long(optarg, 1, 100000, &show)) return usage_error("probe", "--show wants 1..100000, got '%s'", optarg);
            break;
        case P_UNITS:
            if (parse_long(optarg, 0, 1 << 20, &units)) return usage_error("probe", "--units wants 0 or more, got '%s'", optarg);
            break;
        case P_LIMIT: { /* X or X1,X2,... per hidden layer (the last one repeats) */
            const char *q = optarg;
            for (int l = 0; l < RF_MAX_LAYERS; l++) {
                char *end;
                limit[l] = strtof(q, &end);
                if (end == q || (*end && *end != ',') || !(limit[l] > 0) || !isfinite(limit[l]))
                    return usage_error("probe", "--limit wants positive numbers X or X1,X2,..., got '%s'", optarg);
                if (*end) q = end + 1;
                else {
                    for (int r = l + 1; r < RF_MAX_LAYERS; r++) limit[r] = limit[l];
                    break;
                }
            }
            break;
        }
        case P_INIT: init = 1; break;
        case P_LABEL: label = optarg; break;
        case P_NOFEAT: features = 0; break;
        case P_SKIP: o.skip_bad = 1; break;
        case P_THREADS:
            if (parse_long(optarg, 0, 1024, &v)) return usage_error("probe", "--threads wants a number, got '%s'", optarg);
            o.threads = (int)v;
            break;
        default: return usage_error("probe", "unknown option");
        }
    }
    if (optind < argc) return usage_error("probe", "unexpected argument '%s'", argv[optind]);
    if (!o.model) return usage_error("probe", "--model is required");
    if (!o.out) return usage_error("probe", "--out DIR is required");
    if (show < 0) show = po.rows < 10 ? po.rows : 10;
    if (show > po.rows) show = po.rows;

    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    int rc = model_and_data(&o, &lm, &ds, 1);
    if (rc) {
        rf_loaded_model_free(&lm);
        return rc;
    }
    rf_model *m = lm.model, *fresh = NULL;
    rf_error e;
    rf_error_clear(&e);
    rf_probe *p = NULL;
    char lab[160];
    if (task) {
        po.leaf = rf_spec_task_index(rf_model_spec_of(m), task);
        if (po.leaf < 0) {
            char have[512] = "";
            for (int k = 0; k < rf_model_info_of(m)->K; k++) {
                size_t l = strlen(have);
                snprintf(have + l, sizeof have - l, "%s%s", k ? ", " : "", rf_model_spec_of(m)->tasks[k].name);
            }
            rc = usage_error("probe", "--task %s: the model has no such task (tasks: %s)", task, have);
            goto done;
        }
    }
    if (init) { /* the same architecture at its initial weights (same train.seed as training) */
        if (rf_config_create_model(&lm.cfg, lm.F, lm.fields, lm.D, &fresh, &e)) {
            rc = die(&e);
            goto done;
        }
        m = fresh;
    }
    snprintf(lab, sizeof lab, "%s%s", label ? label : type_name(rf_model_spec_of(m)->model.type), init && !label ? " (initial weights)" : "");
    if (rf_probe_run(m, ds, &po, &p, &e)) {
        rc = die(&e);
        goto done;
    }
    if (mkdirs(o.out)) {
        fprintf(stderr, "resflow: error: cannot create %s: %s\n", o.out, strerror(errno));
        rc = RF_EIO;
        goto done;
    }
    char path[4096];
    for (int l = 0; l < p->L && !rc; l++) {
        char *svg = NULL;
        if (rf_probe_svg_layer(p, m, l, (int)show, (int)units, limit[l], lab, &svg, &e)) {
            rc = die(&e);
            break;
        }
        snprintf(path, sizeof path, "%s/layer%d.svg", o.out, l + 1);
        rc = save_text(path, svg);
        free(svg);
    }
    if (!rc) {
        char *svg = NULL;
        if (rf_probe_svg_logits(p, m, (int)show, 0, lab, &svg, &e)) {
            rc = die(&e);
        } else {
            snprintf(path, sizeof path, "%s/logits.svg", o.out);
            rc = save_text(path, svg);
            free(svg);
        }
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/probe.json", o.out);
        /* compact: thousands of numbers */
        rc = write_json_as(probe_json(p, m, lab, &po, features), path, JSON_COMPACT | JSON_REAL_PRECISION(7));
    }
    if (!rc) {
        print_summary(stdout, p, m, lab);
        note("wrote %s/probe.json, %s/layer1..%d.svg, %s/logits.svg", o.out, o.out, p->L, o.out);
    }
done:
    rf_probe_free(p);
    rf_model_free(fresh);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}
