/* test_experiment.c - the experiment runner's library part: experiment files, the order in
 * which overrides apply, run hashes, run result files, mean ± std and the tables. */
#include "test_util.h"

#include <inttypes.h>
#include <unistd.h>

#include "resflow/lab/experiment.h"

static const char *EXP =
    "name: unit\n"
    "out: some/dir\n"
    "seeds: [3, 1]\n"
    "models:\n"
    "  - nse\n"
    "  - {name: wide-mmoe, type: mmoe, set: {model.experts: 6, model: {act: relu}}}\n"
    "datasets:\n"
    "  - plain\n"
    "  - name: three\n"
    "    set:\n"
    "      synth.tasks: 3\n"
    "      tasks: [{name: click}, {name: cart, parent: click}, {name: order, parent: cart, pos_weight: 4}]\n"
    "      train.epochs: 2\n"
    "      data.categorical: []\n"
    "set: {train.epochs: 3, train.lr: 0.002}\n"
    "backbone: {hidden: [32, 16], experts: 3, emb_dim: 8}\n";

static rf_experiment *load(const char *text, rf_status want, rf_error *err)
{
    rf_experiment *x = rf_experiment_new();
    assert_non_null(x);
    rf_status st = rf_experiment_load_string(x, text, strlen(text), "exp.yaml", err);
    if (st != want) fail_msg("load: status %d, want %d (%s)", st, want, err->msg);
    return x;
}

static void test_load_and_resolve(void **state)
{
    (void)state;
    rf_error err;
    rf_experiment *x = load(EXP, RF_OK, &err);
    assert_string_equal(x->name, "unit");
    assert_string_equal(x->out, "some/dir");
    assert_int_equal(x->n_seeds, 2);
    assert_true(x->seeds[0] == 3 && x->seeds[1] == 1);
    assert_int_equal(x->n_models, 2);
    assert_string_equal(x->models[0].name, "nse");
    assert_int_equal(x->models[0].type, RF_MODEL_NSE);
    assert_string_equal(x->models[1].name, "wide-mmoe");
    assert_int_equal(x->models[1].type, RF_MODEL_MMOE);
    /* nested mappings flatten to dotted keys; collections become flow text */
    assert_int_equal(x->models[1].n_sets, 2);
    assert_string_equal(x->models[1].sets[0].text, "model.experts=6");
    assert_string_equal(x->models[1].sets[1].text, "model.act=relu");
    assert_int_equal(x->models[1].sets[0].line, 6);
    assert_int_equal(x->n_datasets, 2);
    assert_string_equal(x->datasets[1].sets[1].text,
                        "tasks=[{name: click}, {name: cart, parent: click}, {name: order, parent: cart, pos_weight: 4}]");
    assert_string_equal(x->datasets[1].sets[3].text, "data.categorical=[]");
    assert_string_equal(x->backbone[0].text, "model.hidden=[32, 16]");
    assert_int_equal(rf_experiment_validate(x, &err), RF_OK);

    rf_config c;
    /* dataset "three", model wide-mmoe, seed index 0 */
    assert_int_equal(rf_experiment_config(x, 1, 1, 0, &c, &err), RF_OK);
    assert_int_equal(c.K, 3);
    assert_string_equal(c.tasks[2].parent, "cart");
    assert_float_equal(c.tasks[2].pos_weight, 4.0f, 0);
    assert_int_equal(c.data.synth.tasks, 3);
    assert_int_equal(c.model.type, RF_MODEL_MMOE);
    assert_true(c.train.seed == 3);
    assert_int_equal(c.train.epochs, 3); /* experiment set wins over the dataset's */
    assert_float_equal(c.train.lr, 0.002f, 0);
    assert_int_equal(c.model.experts, 6); /* model set wins over the backbone */
    assert_int_equal(c.model.act, RF_ACT_RELU);
    assert_int_equal(c.model.n_hidden, 2);
    assert_int_equal(c.model.hidden[0], 32);
    assert_int_equal(c.model.emb_dim, 8);
    /* dataset "plain", model nse, seed index 1: the backbone, not the other model's set */
    assert_int_equal(rf_experiment_config(x, 0, 0, 1, &c, &err), RF_OK);
    assert_int_equal(c.K, 2);
    assert_int_equal(c.model.experts, 3);
    assert_int_equal(c.model.act, RF_ACT_PRELU);
    assert_true(c.train.seed == 1);
    /* caller overrides (the command line) win over everything but type and seed */
    assert_int_equal(rf_experiment_add_override(x, "model.experts=2", &err), RF_OK);
    assert_int_equal(rf_experiment_config(x, 1, 1, 0, &c, &err), RF_OK);
    assert_int_equal(c.model.experts, 2);
    assert_int_equal(rf_experiment_add_override(x, "model.type=ple", &err), RF_EUSAGE);
    assert_int_equal(rf_experiment_add_override(x, "train.seed=5", &err), RF_EUSAGE);
    rf_experiment_free(x);
}

static void test_pick_and_seeds(void **state)
{
    (void)state;
    rf_error err;
    rf_experiment *x = load(EXP, RF_OK, &err);
    /* a model of the file keeps its overrides; a type adds a model */
    assert_int_equal(rf_experiment_pick_models(x, "wide-mmoe,ple,x=esmm", &err), RF_OK);
    assert_int_equal(x->n_models, 3);
    assert_string_equal(x->models[0].name, "wide-mmoe");
    assert_int_equal(x->models[0].n_sets, 2);
    assert_int_equal(x->models[1].type, RF_MODEL_PLE);
    assert_string_equal(x->models[2].name, "x");
    assert_int_equal(x->models[2].type, RF_MODEL_ESMM);
    assert_int_equal(rf_experiment_pick_models(x, "nosuchtype", &err), RF_EUSAGE);
    /* datasets: names from the file, or NAME=CONFIG; a bare unknown name is an error here */
    assert_int_equal(rf_experiment_pick_datasets(x, "three,c=configs/default.yaml", &err), RF_OK);
    assert_int_equal(x->n_datasets, 2);
    assert_string_equal(x->datasets[0].name, "three");
    assert_int_equal(x->datasets[0].n_sets, 4);
    assert_string_equal(x->datasets[1].config, "configs/default.yaml");
    assert_int_equal(rf_experiment_pick_datasets(x, "plain", &err), RF_EUSAGE);
    assert_int_equal(rf_experiment_set_seeds(x, "4", &err), RF_OK);
    assert_int_equal(x->n_seeds, 4);
    assert_true(x->seeds[0] == 1 && x->seeds[3] == 4);
    assert_int_equal(rf_experiment_set_seeds(x, "7,2", &err), RF_OK);
    assert_true(x->n_seeds == 2 && x->seeds[0] == 7 && x->seeds[1] == 2);
    assert_int_equal(rf_experiment_set_seeds(x, "1,1", &err), RF_EUSAGE);
    assert_int_equal(rf_experiment_set_seeds(x, "0", &err), RF_EUSAGE);
    assert_int_equal(rf_experiment_set_seeds(x, "a", &err), RF_EUSAGE);
    rf_experiment_free(x);
    /* without a file a bare dataset name is the built-in defaults */
    x = rf_experiment_new();
    assert_int_equal(rf_experiment_pick_datasets(x, "sim", &err), RF_OK);
    assert_int_equal(x->n_datasets, 1);
    assert_string_equal(x->datasets[0].config, "");
    assert_int_equal(rf_experiment_validate(x, &err), RF_EUSAGE); /* no models, no seeds */
    rf_experiment_free(x);
}

/* Each bad file fails with the expected place and message. */
static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
        long line, col;
    } cases[] = {
        {"seeds: 2\nmodelz: [nse]\n", "unknown key \"modelz\"", 2, 1},
        {"models: [nse, mmoe, nse]\n", "listed twice", 1, 21},
        {"models: [nope]\n", "unknown model type", 1, 10},
        {"models:\n  - {name: a, type: mmoe, set: {tasks.0.weight: 2}}\n", "belong to a dataset", 2, 33},
        {"models:\n  - {type: mmoe, set: {model.type: ple}}\n", "models: list", 2, 24},
        {"datasets:\n  - {name: 'a b'}\n", "bad dataset name", 2, 12},
        {"datasets:\n  - {config: x.yaml}\n", "\"name\" is required", 2, 5},
        {"seeds: [1, x]\n", "not a non-negative integer", 1, 8},
        {"backbone: [1]\n", "expected a mapping", 1, 11},
        {"set: {train.epochs: [1\n", "YAML", 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rf_error err;
        rf_experiment *x = rf_experiment_new();
        rf_status st = rf_experiment_load_string(x, cases[i].text, strlen(cases[i].text), "exp.yaml", &err);
        char buf[1600];
        rf_error_format(&err, buf, sizeof buf);
        if (st != RF_EUSAGE || !strstr(err.msg, cases[i].msg) || err.line != cases[i].line || err.col != cases[i].col)
            fail_msg("case %zu: got status %d, \"%s\"; want \"%s\" at %ld:%ld", i, st, buf, cases[i].msg, cases[i].line,
                     cases[i].col);
        assert_string_equal(err.file, "exp.yaml");
        rf_experiment_free(x);
    }
    /* a bad value is found when runs are resolved, at the place of the value */
    rf_error err;
    rf_experiment *x = load("seeds: 1\nmodels: [nse]\ndatasets: [d]\nbackbone:\n  hidden: abc\n", RF_OK, &err);
    assert_int_equal(rf_experiment_validate(x, &err), RF_EUSAGE);
    assert_int_equal(err.line, 5);
    assert_int_equal(err.col, 11);
    assert_non_null(strstr(err.msg, "model.hidden"));
    rf_experiment_free(x);
    /* a dataset config that does not exist: an I/O error naming it */
    x = load("seeds: 1\nmodels: [nse]\ndatasets: [{name: d, config: /nonexistent/c.yaml}]\n", RF_OK, &err);
    assert_int_equal(rf_experiment_validate(x, &err), RF_EIO);
    rf_experiment_free(x);
}

static void test_hash(void **state)
{
    (void)state;
    rf_config a, b;
    rf_config_default(&a);
    rf_config_default(&b);
    uint64_t h = rf_run_hash(&a);
    assert_true(h != 0);
    assert_true(rf_run_hash(&b) == h);
    b.train.threads = 7; /* how a run executes is not part of its identity */
    b.train.log_every = 3;
    assert_true(rf_run_hash(&b) == h);
    b.train.lr = 0.002f;
    assert_true(rf_run_hash(&b) != h);
    rf_config_default(&b);
    b.train.seed = 43;
    assert_true(rf_run_hash(&b) != h);
    rf_config_default(&b);
    b.model.type = RF_MODEL_MMOE;
    assert_true(rf_run_hash(&b) != h);
    /* only what differs from the defaults counts, but the task list always counts whole: a
     * list that keeps the first default task and drops the second is another run */
    rf_error err;
    rf_config_default(&b);
    assert_int_equal(rf_config_set(&b, "train.lr=0.001", &err), RF_OK); /* the default value */
    assert_true(rf_run_hash(&b) == h);
    assert_int_equal(rf_config_set(&b, "tasks=[{name: ctr, label: click}]", &err), RF_OK);
    assert_int_equal(b.K, 1);
    assert_true(rf_run_hash(&b) != h);
    /* the same change in two sections is two different runs */
    rf_config_default(&a);
    rf_config_default(&b);
    assert_int_equal(rf_config_set(&a, "train.epochs=3", &err), RF_OK);
    assert_int_equal(rf_config_set(&b, "train.patience=3", &err), RF_OK);
    assert_true(rf_run_hash(&a) != rf_run_hash(&b) && rf_run_hash(&a) != h);
}

static rf_run_result result(double auc0, double auc1, double cond1, rf_status st)
{
    rf_run_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.config_hash = 0x0123456789abcdefULL;
    snprintf(r.model_type, sizeof r.model_type, "nse");
    r.seed = 1;
    r.K = 2;
    snprintf(r.task[0], RF_NAME_MAX, "ctr");
    snprintf(r.task[1], RF_NAME_MAX, "ctcvr");
    r.parent[0] = -1;
    r.parent[1] = 0;
    r.auc[0] = auc0;
    r.auc[1] = auc1;
    r.cond_auc[0] = NAN;
    r.cond_auc[1] = cond1;
    r.increase[0] = NAN;
    r.increase[1] = 0.125;
    r.logloss[0] = 0.2;
    r.logloss[1] = 0.02;
    r.oracle_auc[0] = 0.79;
    r.oracle_auc[1] = NAN;
    r.es_auc[0] = r.es_oracle[0] = NAN; /* a root has no entire-space CVR AUC */
    r.es_auc[1] = cond1 - 0.05;
    r.es_oracle[1] = 0.83;
    r.seconds = 1.5;
    r.best_epoch = 2;
    r.dense_params = 1234;
    r.emb_params = 5678;
    r.test_rows = 100;
    if (st) snprintf(r.error, sizeof r.error, "non-finite loss at step 3");
    return r;
}

static void test_result_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/rf-exp-test.XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.json", dir);
    rf_run_result a = result(0.7234, 0.8012, 0.6345, RF_OK), b;
    rf_error err;
    assert_int_equal(rf_run_result_write(&a, path, &err), RF_OK);
    assert_int_equal(rf_run_result_read(&b, path, &err), RF_OK);
    assert_true(b.config_hash == a.config_hash);
    assert_int_equal(b.status, RF_OK);
    assert_int_equal(b.K, 2);
    assert_string_equal(b.task[1], "ctcvr");
    assert_int_equal(b.parent[1], 0);
    assert_int_equal(b.parent[0], -1);
    assert_true(b.auc[0] == a.auc[0] && b.auc[1] == a.auc[1] && b.cond_auc[1] == a.cond_auc[1]); /* exact */
    assert_true(isnan(b.cond_auc[0]) && isnan(b.oracle_auc[1]));
    assert_true(b.increase[1] == 0.125 && isnan(b.increase[0]));
    assert_true(b.es_auc[1] == a.es_auc[1] && b.es_oracle[1] == 0.83 && isnan(b.es_auc[0]) && isnan(b.es_oracle[0]));
    assert_true(b.dense_params == 1234 && b.emb_params == 5678 && b.best_epoch == 2);
    rf_run_result d = result(NAN, NAN, NAN, RF_ENUMERIC);
    assert_int_equal(rf_run_result_write(&d, path, &err), RF_OK);
    assert_int_equal(rf_run_result_read(&b, path, &err), RF_OK);
    assert_int_equal(b.status, RF_ENUMERIC);
    assert_string_equal(b.error, "non-finite loss at step 3");
    /* not a result file */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"format\": \"something-else\"}", fp);
    fclose(fp);
    assert_int_equal(rf_run_result_read(&b, path, &err), RF_EFORMAT);
    fp = fopen(path, "w");
    fputs("{\"format\": \"resflow-run-1\", \"config_hash\": \"zz\"", fp);
    fclose(fp);
    assert_int_equal(rf_run_result_read(&b, path, &err), RF_EFORMAT);
    remove(path);
    rmdir(dir);
}

static void test_stat(void **state)
{
    (void)state;
    double v[] = {0.70, 0.72, 0.74, NAN};
    rf_stat s = rf_stat_of(v, 4);
    assert_int_equal(s.n, 3);
    assert_float_equal(s.mean, 0.72, 1e-12);
    assert_float_equal(s.std, 0.02, 1e-12); /* sample std: sqrt((0.0004 + 0 + 0.0004) / 2) */
    double w[] = {1, 2, 3, 4};
    s = rf_stat_of(w, 4);
    assert_float_equal(s.mean, 2.5, 1e-12);
    assert_float_equal(s.std, sqrt(5.0 / 3.0), 1e-12);
    s = rf_stat_of(w, 1);
    assert_int_equal(s.n, 1);
    assert_float_equal(s.mean, 1, 0);
    assert_true(isnan(s.std));
    double z[] = {NAN, INFINITY};
    s = rf_stat_of(z, 2);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean) && isnan(s.std));
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = 0;
    fclose(fp);
    return s;
}

static void test_tables(void **state)
{
    (void)state;
    rf_error err;
    rf_experiment *x = load("name: T\nseeds: 3\nmodels: [nse, mmoe]\ndatasets: [sim]\n", RF_OK, &err);
    /* nse: three finished seeds; mmoe: two finished + one diverged */
    rf_run_result r[6] = {result(0.70, 0.80, 0.60, RF_OK), result(0.72, 0.82, 0.62, RF_OK),
                          result(0.74, 0.84, 0.64, RF_OK), result(0.75, 0.90, 0.70, RF_OK),
                          result(0.77, 0.91, 0.72, RF_OK), result(NAN, NAN, NAN, RF_ENUMERIC)};
    const rf_run_result *res[6];
    for (int i = 0; i < 6; i++) res[i] = &r[i];
    char dir[] = "/tmp/rf-exp-test.XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    char *md = NULL;
    assert_int_equal(rf_experiment_write_tables(x, res, dir, &md, &err), RF_OK);
    assert_non_null(md);

    /* Markdown: mean ± sample std, best in bold, the partial cell marked, the oracle column */
    assert_non_null(strstr(md, "| sim     | ctr AUC           | 0.7200 ± 0.0200 | **0.7600 ± 0.0141 (2/3; 1 diverged)** | 0.7900 |"));
    assert_non_null(strstr(md, "ctcvr\\|ctr AUC"));
    /* the entire-space CVR AUC: mean ± std, its oracle, and its paired difference */
    assert_non_null(strstr(md, "| sim     | es ctcvr\\|ctr AUC | 0.5700 ± 0.0200 | **0.6600 ± 0.0141 (2/3; 1 diverged)** | 0.8300 |"));
    assert_non_null(strstr(md, "| sim     | diff es ctcvr\\|ctr AUC |"));
    assert_non_null(strstr(md, "| 1234 "));
    snprintf(path, sizeof path, "%s/results.md", dir);
    char *f = slurp(path);
    assert_string_equal(f, md);
    free(f);
    snprintf(path, sizeof path, "%s/results.csv", dir);
    f = slurp(path);
    assert_non_null(strstr(f, "dataset,model,model_type,metric,task,mean,std,n,runs,diverged,values\n"));
    assert_non_null(strstr(f, "sim,nse,nse,auc,ctr,0.72000000000000008,0.020000000000000018,3,3,0,0.69999999999999996;"
                              "0.71999999999999997;0.73999999999999999\n"));
    assert_non_null(strstr(f, "sim,mmoe,mmoe,cond_auc,ctcvr|ctr,0.70999999999999996,"));
    assert_non_null(strstr(f, ",2,3,1,0.69999999999999996;0.71999999999999997;nan\n"));
    free(f);
    snprintf(path, sizeof path, "%s/results.json", dir);
    f = slurp(path);
    assert_non_null(strstr(f, "\"diverged\": 1"));
    assert_non_null(strstr(f, "\"status\": \"diverged\""));
    free(f);
    free(md);
    /* a missing run and a model with no result at all */
    res[2] = NULL;
    res[3] = res[4] = NULL;
    assert_int_equal(rf_experiment_write_tables(x, res, dir, &md, &err), RF_OK);
    assert_non_null(strstr(md, "0.7100 ± 0.0141 (2/3)"));
    assert_non_null(strstr(md, "NaN (1/3 diverged)"));
    free(md);
    static const char *files[] = {"results.md", "results.csv", "results.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        assert_int_equal(remove(path), 0);
    }
    assert_int_equal(rmdir(dir), 0); /* no temporary files left */
    rf_experiment_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_resolve), cmocka_unit_test(test_pick_and_seeds), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hash),            cmocka_unit_test(test_result_file),    cmocka_unit_test(test_stat),
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
