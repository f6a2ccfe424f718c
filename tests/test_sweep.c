/* test_sweep.c - sweeps: value parsing, expansion of models or datasets, conflicts, collecting
 * curves from run results, and the files written (no training: results are made up). */
#include <unistd.h>

#include "test_util.h"

#include "resflow/lab/sweep.h"

static void test_init(void **state)
{
    (void)state;
    rf_sweep sw;
    rf_error e;
    assert_int_equal(rf_sweep_init(&sw, " model.emb_dim ", "4, 8,16", &e), RF_OK);
    assert_string_equal(sw.key, "model.emb_dim");
    assert_int_equal(sw.n_values, 3);
    assert_string_equal(sw.value[1], "8");
    assert_true(sw.numeric && !sw.data_level);
    assert_true(sw.x[2] == 16);
    assert_int_equal(rf_sweep_init(&sw, "train.lr", "1e-4,3e-4", &e), RF_OK);
    assert_true(fabs(sw.x[0] - 1e-4) < 1e-18);
    assert_int_equal(rf_sweep_init(&sw, "model.act", "relu,prelu", &e), RF_OK);
    assert_false(sw.numeric);
    assert_true(isnan(sw.x[0]));
    assert_int_equal(rf_sweep_init(&sw, "tasks.ctcvr.pos_weight", "1,500", &e), RF_OK);
    assert_true(sw.data_level);
    assert_int_equal(rf_sweep_init(&sw, "synth.rows", "1000", &e), RF_OK);
    assert_true(sw.data_level);
    /* errors */
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,,8", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,8,4", &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "listed twice"));
    assert_int_equal(rf_sweep_init(&sw, "model.type", "nse,esmm", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_init(&sw, "train.seed", "1,2", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_init(&sw, "", "1,2", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_init(&sw, "model.emb dim", "1,2", &e), RF_EUSAGE);
    char many[512] = "0";
    for (int i = 1; i <= RF_SWEEP_MAX_VALUES; i++) snprintf(many + strlen(many), sizeof many - strlen(many), ",%d", i);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", many, &e), RF_EUSAGE);
    /* metrics */
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4", &e), RF_OK);
    assert_int_equal(rf_sweep_set_metric(&sw, "cond_auc:ctcvr", &e), RF_OK);
    assert_int_equal(sw.metric, RF_SWEEP_COND_AUC);
    assert_string_equal(sw.task, "ctcvr");
    assert_int_equal(rf_sweep_set_metric(&sw, "auc", &e), RF_OK);
    assert_string_equal(sw.task, "");
    assert_int_equal(rf_sweep_set_metric(&sw, "aucc:ctr", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_set_metric(&sw, "mse", &e), RF_OK);
    assert_int_equal(sw.metric, RF_SWEEP_MSE);
    assert_int_equal(rf_sweep_set_metric(&sw, "mse:ctr", &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_check_log_x(&sw, &e), RF_OK);
    assert_int_equal(rf_sweep_init(&sw, "model.act", "relu,prelu", &e), RF_OK);
    assert_int_equal(rf_sweep_check_log_x(&sw, &e), RF_EUSAGE);
    assert_int_equal(rf_sweep_init(&sw, "train.weight_decay", "0,1e-5", &e), RF_OK);
    assert_int_equal(rf_sweep_check_log_x(&sw, &e), RF_EUSAGE);
}

static rf_experiment *two_models(void)
{
    rf_experiment *x = rf_experiment_new();
    rf_error e;
    assert_non_null(x);
    assert_int_equal(rf_experiment_add_model(x, "resflow", &e), RF_OK);
    assert_int_equal(rf_experiment_add_model(x, "flat=nse", &e), RF_OK);
    assert_int_equal(rf_experiment_add_dataset(x, "synth", NULL, &e), RF_OK);
    assert_int_equal(rf_experiment_set_seeds(x, "2", &e), RF_OK);
    return x;
}

static void test_expand_models(void **state)
{
    (void)state;
    rf_experiment *x = two_models();
    rf_sweep sw;
    rf_error e;
    rf_config cfg;
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,8,16", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_OK);
    assert_string_equal(sw.task, "ctcvr"); /* the default metric: the last task's AUC */
    assert_int_equal(x->n_models, 6);
    assert_int_equal(x->n_datasets, 1);
    assert_int_equal(sw.n_base, 2);
    assert_string_equal(x->models[0].name, "resflow+model.emb_dim_4");
    assert_string_equal(x->models[5].name, "flat+model.emb_dim_16");
    assert_int_equal(x->models[5].type, RF_MODEL_NSE);
    assert_int_equal(rf_experiment_config(x, 0, 4, 1, &cfg, &e), RF_OK);
    assert_int_equal(cfg.model.emb_dim, 8);
    assert_int_equal(cfg.train.seed, 2);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EINTERNAL); /* once */
    rf_experiment_free(x);
}

static void test_expand_datasets(void **state)
{
    (void)state;
    rf_experiment *x = two_models();
    rf_sweep sw;
    rf_error e;
    rf_config cfg;
    assert_int_equal(rf_sweep_init(&sw, "tasks.ctcvr.pos_weight", "1,500", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_OK);
    assert_int_equal(x->n_models, 2);
    assert_int_equal(x->n_datasets, 2);
    assert_string_equal(x->datasets[1].name, "synth+tasks.ctcvr.pos_weight_500");
    assert_int_equal(rf_experiment_config(x, 1, 1, 0, &cfg, &e), RF_OK);
    assert_true(cfg.tasks[1].pos_weight == 500.0f);
    assert_true(cfg.tasks[0].pos_weight == 1.0f);
    rf_experiment_free(x);
}

static void test_expand_errors(void **state)
{
    (void)state;
    rf_sweep sw;
    rf_error e;
    /* a later layer setting the swept key */
    rf_experiment *x = two_models();
    assert_int_equal(rf_experiment_add_override(x, "model.emb_dim=32", &e), RF_OK);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,8", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "later layer"));
    rf_experiment_free(x);
    /* another key on the command line is fine */
    x = two_models();
    assert_int_equal(rf_experiment_add_override(x, "train.lr=0.002", &e), RF_OK);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,8", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_OK);
    rf_experiment_free(x);
    /* a bad value or an unknown key: found before the experiment changes */
    x = two_models();
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4,0", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "model.emb_dim=0"));
    assert_int_equal(x->n_models, 2);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dimm", "4", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "unknown key"));
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4", &e), RF_OK);
    assert_int_equal(rf_sweep_set_metric(&sw, "logloss:order", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "no task \"order\""));
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", "4", &e), RF_OK);
    assert_int_equal(rf_sweep_set_metric(&sw, "mse", &e), RF_OK); /* no regression target */
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "no regression target"));
    rf_experiment_free(x);
    /* too many copies: 3 models x 32 values */
    x = two_models();
    assert_int_equal(rf_experiment_add_model(x, "esmm", &e), RF_OK);
    char vals[256] = "1";
    for (int i = 2; i <= 32; i++) snprintf(vals + strlen(vals), sizeof vals - strlen(vals), ",%d", i);
    assert_int_equal(rf_sweep_init(&sw, "model.emb_dim", vals, &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "more than"));
    rf_experiment_free(x);
}

static rf_run_result fake(double ctcvr_auc, rf_status st)
{
    rf_run_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.K = 2;
    snprintf(r.task[0], sizeof r.task[0], "ctr");
    snprintf(r.task[1], sizeof r.task[1], "ctcvr");
    r.parent[0] = -1;
    r.parent[1] = 0;
    r.auc[0] = 0.7;
    r.auc[1] = ctcvr_auc;
    r.cond_auc[0] = NAN;
    r.cond_auc[1] = 0.6;
    return r;
}

static void test_collect_and_write(void **state)
{
    (void)state;
    rf_experiment *x = two_models();
    rf_sweep sw;
    rf_error e;
    assert_int_equal(rf_sweep_init(&sw, "train.lr", "1e-4,1e-3", &e), RF_OK);
    assert_int_equal(rf_sweep_expand(x, &sw, &e), RF_OK);
    /* models: resflow@1e-4, resflow@1e-3, flat@1e-4, flat@1e-3; 2 seeds each */
    rf_run_result r[8];
    const rf_run_result *res[8];
    double auc[8] = {0.80, 0.82, 0.85, 0.85, 0.70, 0.72, 0.75, NAN};
    for (int i = 0; i < 8; i++) r[i] = fake(auc[i], RF_OK), res[i] = &r[i];
    r[7] = fake(NAN, RF_ENUMERIC); /* flat@1e-3 seed 2 diverged */
    res[5] = NULL;                  /* flat@1e-4 seed 2 missing */
    rf_sweep_series *s = NULL;
    int n = 0;
    assert_int_equal(rf_sweep_collect(x, &sw, res, &s, &n, &e), RF_OK);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].label, "resflow");
    assert_string_equal(s[1].label, "flat");
    assert_true(fabs(s[0].stat[0].mean - 0.81) < 1e-12);
    assert_true(fabs(s[0].stat[0].std - sqrt(0.0002)) < 1e-12);
    assert_int_equal(s[0].stat[1].n, 2);
    assert_int_equal(s[1].stat[0].n, 1);
    assert_int_equal(s[1].runs[0], 1);
    assert_int_equal(s[1].diverged[1], 1);
    assert_int_equal(s[1].stat[1].n, 1);

    char dir[] = "/tmp/rf-sweep-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *md = NULL;
    assert_int_equal(rf_sweep_write(x, &sw, s, n, dir, 1, &md, &e), RF_OK);
    assert_non_null(strstr(md, "| train.lr | resflow | flat |"));
    assert_non_null(strstr(md, "| 1e-3 | **0.8500 ± 0.0000** | **0.7500** (1/2) |"));
    assert_non_null(strstr(md, "| 1e-4 | 0.8100 ± 0.0141 | 0.7000 (1/2) |"));
    free(md);
    char path[256], line[512];
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int rows = 0;
    while (fgets(line, sizeof line, fp)) rows++;
    fclose(fp);
    assert_int_equal(rows, 5);
    snprintf(path, sizeof path, "%s/sweep.svg", dir);
    assert_int_equal(access(path, R_OK), 0);
    const char *names[] = {"sweep.csv", "sweep.md", "sweep.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
    free(s);
    /* the regression MSE: lower is better */
    sw.metric = RF_SWEEP_MSE;
    sw.task[0] = '\0';
    double mse[8] = {0.90, 0.92, 0.85, 0.87, 0.95, 0.97, 0.99, 1.01};
    for (int i = 0; i < 8; i++) r[i] = fake(0.8, RF_OK), r[i].mse = mse[i], res[i] = &r[i];
    assert_int_equal(rf_sweep_collect(x, &sw, res, &s, &n, &e), RF_OK);
    assert_true(fabs(s[0].stat[0].mean - 0.91) < 1e-12);
    assert_true(fabs(s[1].stat[1].mean - 1.00) < 1e-12);
    char label[128];
    rf_sweep_metric_label(&sw, label, sizeof label);
    assert_non_null(strstr(label, "MSE"));
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/rf-sweep-XXXXXX")));
    assert_int_equal(rf_sweep_write(x, &sw, s, n, dir, 1, &md, &e), RF_OK);
    assert_non_null(strstr(md, "| 1e-3 | **0.8600 ± 0.0141** | 1.0000 ± 0.0141 |")); /* the lower is bold */
    free(md);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
    free(s);
    rf_experiment_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_expand_models),
        cmocka_unit_test(test_expand_datasets),
        cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_collect_and_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
