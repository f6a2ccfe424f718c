/* test_config.c - configuration: defaults, YAML files, --set overrides, tasks, error
 * locations and suggestions, validation (parents, cycles, monitor), dump/load round trip,
 * list and res_layers syntax, and that configs/default.yaml spells out the defaults. */
#include <unistd.h>

#include "test_util.h"

#include "resflow/config.h"

/* Defaults into a zeroed struct (so padding compares equal under memcmp). */
static void fresh(rf_config *c)
{
    memset(c, 0, sizeof *c);
    rf_config_default(c);
}

static rf_status load(rf_config *c, const char *yaml, rf_error *e)
{
    rf_error_clear(e);
    return rf_config_load_string(c, yaml, strlen(yaml), "t.yaml", e);
}

static rf_status set(rf_config *c, const char *a, rf_error *e)
{
    rf_error_clear(e);
    return rf_config_set(c, a, e);
}

static void assert_ok(rf_status st, const rf_error *e)
{
    char buf[1600];
    if (st != RF_OK) fprintf(stderr, "  unexpected error: %s\n", rf_error_format(e, buf, sizeof buf));
    assert_int_equal(st, RF_OK);
}

/* Expect failure with RF_EUSAGE and a message containing want. */
static void assert_fails(rf_status st, const rf_error *e, const char *want)
{
    char buf[1600];
    rf_error_format(e, buf, sizeof buf);
    if (st != RF_EUSAGE || !strstr(e->msg, want))
        fprintf(stderr, "  status %d, message: %s\n  wanted: %s\n", st, buf, want);
    assert_int_equal(st, RF_EUSAGE);
    assert_non_null(strstr(e->msg, want));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_int_equal(c.model.type, RF_MODEL_RESFLOW);
    assert_int_equal(c.model.emb_dim, 16);
    assert_int_equal(c.model.n_hidden, 2);
    assert_int_equal(c.model.hidden[0], 128);
    assert_int_equal(c.model.hidden[1], 64);
    assert_int_equal(c.model.act, RF_ACT_PRELU);
    assert_true(c.model.prelu_init == 0.25f);
    assert_int_equal(c.model.bn, RF_BN_NONE);
    assert_true(c.model.bn_eps == 1e-5f);
    assert_int_equal(c.model.dense_mode, RF_DENSE_CONCAT);
    assert_int_equal(c.model.res_layers, (1u << RF_MAX_LAYERS) - 1);
    assert_int_equal(c.model.res_logit, 1);
    assert_true(c.model.emb_init == 0.05f);
    assert_int_equal(c.K, 2);
    assert_string_equal(c.tasks[0].name, "ctr");
    assert_string_equal(c.tasks[0].label, "click");
    assert_string_equal(c.tasks[0].parent, "");
    assert_string_equal(c.tasks[1].name, "ctcvr");
    assert_string_equal(c.tasks[1].label, "order");
    assert_string_equal(c.tasks[1].parent, "ctr");
    assert_true(c.tasks[1].weight == 1.0f && c.tasks[1].pos_weight == 1.0f);
    assert_int_equal(c.train.epochs, 5);
    assert_int_equal(c.train.batch_size, 2048);
    assert_true(c.train.lr == 1e-3f);
    assert_true(c.train.emb_lr == 0.0f);
    assert_true(c.train.beta1 == 0.9f && c.train.beta2 == 0.999f && c.train.eps == 1e-8f);
    assert_true(c.train.seed == 42);
    assert_int_equal(c.train.patience, 2);
    assert_string_equal(c.train.monitor, "mean_auc");
    assert_int_equal(c.train.log_every, 200);
    assert_int_equal(c.train.skip_bad_rows, 0);
    assert_string_equal(c.data.source, "synth");
    assert_true(c.data.valid_frac == 0.1f && c.data.test_frac == 0.5f);
    assert_true(c.data.split_seed == 7);
    assert_int_equal(c.data.schema.F, 0);
    assert_int_equal(c.data.schema.D, 0);
    assert_int_equal(c.data.schema.delim, ',');
    assert_int_equal(c.data.schema.min_count, 1);
    assert_int_equal(c.data.schema.K, 2);
    assert_string_equal(c.data.schema.label[1], "order");
    assert_true(c.data.synth.rows == 5000000);
    assert_int_equal(c.data.synth.preset, RF_SYNTH_ECOM);
    assert_true(c.data.synth.seed == 1);
    assert_int_equal(c.data.synth.tasks, 2);
    assert_int_equal(c.data.synth.n_users, 50000);
    assert_int_equal(c.data.synth.n_items, 100000);
    assert_int_equal(c.data.synth.n_queries, 20000);
    assert_true(c.data.synth.ctr == 0.03f && c.data.synth.cvr == 0.03f && c.data.synth.cart_rate == 0.15f);
    assert_int_equal(c.data.synth.list_len, 20);
    assert_ok(rf_config_validate(&c, &e), &e);
    assert_int_equal(rf_config_task_index(&c, "ctcvr"), 1);
    assert_int_equal(rf_config_task_index(&c, "nope"), -1);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/resflow_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path,
               "# experiment\n"
               "model:\n"
               "  type: nse\n"
               "  emb_dim: 8\n"
               "  hidden:\n"
               "    - 256\n"
               "    - 128\n"
               "    - 64\n"
               "  bn: batch\n"
               "train:\n"
               "  lr: 0.002\n"
               "  seed: 18446744073709551615\n"
               "  skip_bad_rows: yes\n"
               "data:\n"
               "  source: /data/x.tsv\n"
               "  delim: tab\n"
               "  categorical: [user, item, \"genres:|:mean\"]\n"
               "  dense: [price]\n"
               "synth: {rows: 5000, ctr: 0.1}\n");
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(rf_config_load_file(&c, path, &e), &e);
    unlink(path);
    assert_int_equal(c.model.type, RF_MODEL_NSE);
    assert_int_equal(c.model.emb_dim, 8);
    assert_int_equal(c.model.n_hidden, 3);
    assert_int_equal(c.model.hidden[2], 64);
    assert_int_equal(c.model.bn, RF_BN_BATCH);
    assert_true(c.train.lr == 0.002f);
    assert_true(c.train.seed == UINT64_MAX);
    assert_int_equal(c.train.skip_bad_rows, 1);
    assert_string_equal(c.data.source, "/data/x.tsv");
    assert_int_equal(c.data.schema.delim, '\t');
    assert_int_equal(c.data.schema.F, 3);
    assert_string_equal(c.data.schema.cat[0].name, "user");
    assert_int_equal(c.data.schema.cat[0].multi, 0);
    assert_string_equal(c.data.schema.cat[2].name, "genres");
    assert_int_equal(c.data.schema.cat[2].multi, 1);
    assert_int_equal(c.data.schema.cat[2].sep, '|');
    assert_int_equal(c.data.schema.cat[2].pooling, RF_POOL_MEAN);
    assert_int_equal(c.data.schema.D, 1);
    assert_string_equal(c.data.schema.dense[0], "price");
    assert_true(c.data.synth.rows == 5000 && c.data.synth.ctr == 0.1f);
    assert_int_equal(c.K, 2); /* untouched keys keep their defaults */
    assert_int_equal(c.train.epochs, 5);

    assert_int_equal(rf_config_load_file(&c, "/nonexistent/resflow.yaml", &e), RF_EIO);
    assert_string_equal(e.file, "/nonexistent/resflow.yaml");
}

static void test_nested_and_dotted_keys(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(load(&c, "model.emb_dim: 4\nmodel: {act: relu}\ntrain: {epochs: 0}\n", &e), &e);
    assert_int_equal(c.model.emb_dim, 4);
    assert_int_equal(c.model.act, RF_ACT_RELU);
    assert_int_equal(c.train.epochs, 0);
    /* unquoted empty/~/null strings are "", quoted ones are literal */
    assert_ok(load(&c, "data: {weight: \"null\", group: ~, test: '', valid: null}\n", &e), &e);
    assert_string_equal(c.data.schema.weight, "null");
    assert_string_equal(c.data.schema.group, "");
    assert_ok(load(&c, "data:\n  weight: w\n  source:\n", &e), &e);
    assert_string_equal(c.data.schema.weight, "w");
    assert_string_equal(c.data.source, "");
    /* empty files and comment-only files change nothing */
    rf_config d;
    fresh(&d);
    assert_ok(load(&d, "", &e), &e);
    assert_ok(load(&d, "# nothing\n", &e), &e);
    rf_config z;
    fresh(&z);
    assert_memory_equal(&d, &z, sizeof d);
    /* a scalar key given a mapping, and a section given a scalar */
    assert_fails(load(&c, "model:\n  emb_dim: {x: 1}\n", &e), &e, "model.emb_dim: expected int, got a mapping");
    assert_fails(load(&c, "model: 3\n", &e), &e, "\"model\" is a section");
    assert_fails(load(&c, "- 1\n- 2\n", &e), &e, "expected a mapping");
    assert_fails(load(&c, "model: {emb_dim: 8}\n---\nmodel: {emb_dim: 4}\n", &e), &e, "only one YAML document");
}

static void test_tasks_replace(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(load(&c,
                   "tasks:\n"
                   "  - {name: ctr, label: click, weight: 2.0}\n"
                   "  - name: cart\n"
                   "    parent: ctr\n"
                   "  - {name: ctcvr, label: \"click*order\", parent: cart, pos_weight: 50}\n",
                   &e),
              &e);
    assert_int_equal(c.K, 3);
    assert_true(c.tasks[0].weight == 2.0f && c.tasks[0].pos_weight == 1.0f);
    assert_string_equal(c.tasks[1].name, "cart");
    assert_string_equal(c.tasks[1].label, "cart"); /* label defaults to the name */
    assert_string_equal(c.tasks[1].parent, "ctr");
    assert_true(c.tasks[1].weight == 1.0f);
    assert_string_equal(c.tasks[2].label, "click*order");
    assert_true(c.tasks[2].pos_weight == 50.0f);
    assert_int_equal(c.data.schema.K, 3);
    assert_string_equal(c.data.schema.label[2], "click*order");
    assert_ok(rf_config_validate(&c, &e), &e);

    /* a shorter list replaces (no stale tasks left) */
    assert_ok(load(&c, "tasks: [{name: only}]\n", &e), &e);
    assert_int_equal(c.K, 1);
    assert_string_equal(c.tasks[0].label, "only");
    assert_string_equal(c.tasks[1].name, "");
    assert_int_equal(c.data.schema.K, 1);
    assert_string_equal(c.data.schema.label[1], "");
    /* entries must be mappings; fields are checked */
    assert_fails(load(&c, "tasks: [ctr, ctcvr]\n", &e), &e, "each entry must be a mapping");
    assert_fails(load(&c, "tasks:\n  - {name: a, pos_weigth: 3}\n", &e), &e,
                 "unknown key \"tasks.0.pos_weigth\" (did you mean \"tasks.0.pos_weight\"?)");
    assert_int_equal(e.line, 2);
    assert_int_equal(e.col, 15);
    /* tasks as a mapping edits instead of replacing */
    fresh(&c);
    assert_ok(load(&c, "tasks: {ctcvr: {pos_weight: 7}}\n", &e), &e);
    assert_int_equal(c.K, 2);
    assert_true(c.tasks[1].pos_weight == 7.0f);
}

static void test_set_overrides_file(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(load(&c, "model: {emb_dim: 8, hidden: [32]}\ntrain: {lr: 0.01}\n", &e), &e);
    assert_ok(set(&c, "model.emb_dim=32", &e), &e);
    assert_ok(set(&c, " train.lr = 5e-4 ", &e), &e);
    assert_int_equal(c.model.emb_dim, 32);
    assert_int_equal(c.model.n_hidden, 1); /* not overridden: the file's value */
    assert_true(c.train.lr == 5e-4f);
    assert_ok(set(&c, "train.monitor=auc:ctcvr", &e), &e);
    assert_string_equal(c.train.monitor, "auc:ctcvr");
    assert_ok(set(&c, "data.valid=", &e), &e);
    assert_string_equal(c.data.valid, "");
    assert_ok(set(&c, "data.source=\"a b.csv\"", &e), &e);
    assert_string_equal(c.data.source, "a b.csv");
    assert_ok(set(&c, "data.delim=|", &e), &e);
    assert_int_equal(c.data.schema.delim, '|');
    assert_ok(set(&c, "data.delim=\\t", &e), &e);
    assert_int_equal(c.data.schema.delim, '\t');
    /* unquoted values split at commas, so a ',' separator needs the quoted list form */
    assert_fails(set(&c, "data.categorical=user,genres:,:sum", &e), &e, "\"genres:\": expected name or name:SEP:POOL");
    assert_ok(set(&c, "data.categorical=[user, \"genres:,:sum\"]", &e), &e);
    assert_int_equal(c.data.schema.F, 2);
    assert_int_equal(c.data.schema.cat[1].sep, ',');
    assert_int_equal(c.data.schema.cat[1].pooling, RF_POOL_SUM);
    assert_ok(set(&c, "model={act: relu, bn: batch}", &e), &e);
    assert_int_equal(c.model.act, RF_ACT_RELU);
    assert_int_equal(c.model.bn, RF_BN_BATCH);
    /* bools */
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE"}, *const no[] = {"false", "no", "off", "0", "Off"};
    for (int i = 0; i < 5; i++) {
        char a[64];
        snprintf(a, sizeof a, "model.res_logit=%s", no[i]);
        assert_ok(set(&c, a, &e), &e);
        assert_int_equal(c.model.res_logit, 0);
        snprintf(a, sizeof a, "model.res_logit=%s", yes[i]);
        assert_ok(set(&c, a, &e), &e);
        assert_int_equal(c.model.res_logit, 1);
    }
    /* errors name the assignment and carry no line */
    assert_fails(set(&c, "model.emb_dim=abc", &e), &e, "\"model.emb_dim=abc\": model.emb_dim: expected an integer");
    assert_string_equal(e.file, "--set");
    assert_int_equal(e.line, 0);
    assert_fails(set(&c, "model.emb_dim", &e), &e, "expected key=value");
    assert_fails(set(&c, "model.hiden=1", &e), &e, "did you mean \"model.hidden\"?");
    assert_fails(set(&c, "tasks=ctr", &e), &e, "expected a list of mappings");
    /* a failed --set leaves the configuration unchanged */
    rf_config before = c;
    assert_fails(set(&c, "model={emb_dim: 3, act: nope}", &e), &e, "unknown value \"nope\"");
    assert_memory_equal(&before, &c, sizeof c);
    /* tasks replaced from --set */
    assert_ok(set(&c, "tasks=[{name: a}, {name: b, parent: a}]", &e), &e);
    assert_int_equal(c.K, 2);
    assert_string_equal(c.tasks[1].parent, "a");
}

static void test_set_task_by_name_and_append(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(set(&c, "tasks.ctcvr.pos_weight=500", &e), &e);
    assert_true(c.tasks[1].pos_weight == 500.0f);
    assert_ok(set(&c, "tasks.1.weight=0.5", &e), &e);
    assert_true(c.tasks[1].weight == 0.5f);
    assert_ok(set(&c, "tasks.2.name=cart", &e), &e); /* index K appends */
    assert_int_equal(c.K, 3);
    assert_string_equal(c.tasks[2].name, "cart");
    assert_string_equal(c.tasks[2].label, "cart");
    assert_true(c.tasks[2].weight == 1.0f && c.tasks[2].pos_weight == 1.0f);
    assert_ok(set(&c, "tasks.cart.parent=ctr", &e), &e);
    assert_ok(set(&c, "tasks.cart.label=add_to_cart", &e), &e);
    assert_string_equal(c.data.schema.label[2], "add_to_cart");
    assert_ok(rf_config_validate(&c, &e), &e);
    assert_fails(set(&c, "tasks.5.name=x", &e), &e, "task index 5 out of range (3 tasks; index 3 appends");
    assert_fails(set(&c, "tasks.cvr.weight=2", &e), &e, "no task named \"cvr\" (tasks: ctr, ctcvr, cart)");
    assert_fails(set(&c, "tasks.ctr.pos_weight=0", &e), &e, "out of range (must be > 0)");
    assert_fails(set(&c, "tasks.0=x", &e), &e, "is a section");
    assert_int_equal(c.K, 3);
}

static void test_unknown_key_location(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    char buf[1600];
    fresh(&c);
    assert_fails(load(&c, "model:\n  emb_dim: 8\n  hiden: [1, 2]\n", &e), &e,
                 "unknown key \"model.hiden\" (did you mean \"model.hidden\"?)");
    assert_string_equal(e.file, "t.yaml");
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 3);
    assert_string_equal(rf_error_format(&e, buf, sizeof buf),
                        "t.yaml:3:3: unknown key \"model.hiden\" (did you mean \"model.hidden\"?)");
    assert_fails(load(&c, "modle:\n  emb_dim: 8\n", &e), &e, "unknown key \"modle\" (did you mean \"model\"?)");
    assert_int_equal(e.line, 1);
    assert_int_equal(e.col, 1);
    /* a key placed in the wrong section is found by its leaf name */
    assert_fails(load(&c, "train: {emb_dim: 8}\n", &e), &e, "did you mean \"model.emb_dim\"?");
    assert_int_equal(e.col, 9);
    assert_fails(load(&c, "zzzzzzzzzz: 1\n", &e), &e, "unknown key \"zzzzzzzzzz\"");
    assert_null(strstr(e.msg, "did you mean"));
    /* an unknown key leaves the configuration unchanged (atomic load) */
    rf_config d;
    fresh(&d);
    assert_fails(load(&c, "model: {emb_dim: 99}\nbogus: 1\n", &e), &e, "unknown key");
    assert_memory_equal(&c, &d, sizeof c);
    /* YAML syntax errors carry a location too */
    assert_fails(load(&c, "model:\n  emb_dim: [1, 2\n", &e), &e, "invalid YAML");
    assert_true(e.line >= 2);
}

static void test_type_errors(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_fails(load(&c, "model:\n  emb_dim: abc\n", &e), &e, "model.emb_dim: expected an integer, got \"abc\"");
    assert_int_equal(e.line, 2);
    assert_int_equal(e.col, 12); /* the value */
    assert_fails(load(&c, "model: {emb_dim: 0}\n", &e), &e, "model.emb_dim: 0 is out of range (must be in [1, 65536])");
    assert_fails(load(&c, "train: {epochs: 99999999999}\n", &e), &e, "out of range");
    assert_fails(load(&c, "train: {epochs: 2.5}\n", &e), &e, "expected an integer");
    assert_fails(load(&c, "train: {seed: -1}\n", &e), &e, "expected a non-negative integer");
    assert_fails(load(&c, "train: {lr: 0}\n", &e), &e, "train.lr: 0 is out of range (must be > 0)");
    assert_fails(load(&c, "train: {lr: fast}\n", &e), &e, "expected a number");
    assert_fails(load(&c, "train: {lr: 1e99}\n", &e), &e, "not a finite float");
    assert_fails(load(&c, "train: {lr: nan}\n", &e), &e, "not a finite float");
    assert_fails(load(&c, "data: {valid_frac: 1.5}\n", &e), &e, "must be in [0, 1)");
    assert_fails(load(&c, "model: {type: mmoee}\n", &e), &e,
                 "model.type: unknown value \"mmoee\" (allowed: resflow, nse, esmm, single, shared_bottom, moe, mmoe, ple, aitm, escm2_ipw, escm2_dr, dcmt, stem, twin)");
    assert_fails(load(&c, "model: {res_logit: maybe}\n", &e), &e, "expected true/false");
    assert_fails(load(&c, "model: {emb_dim: [1]}\n", &e), &e, "model.emb_dim: expected int, got a list");
    assert_fails(load(&c, "model: {hidden: [1,2,3,4,5,6,7,8,9]}\n", &e), &e, "expected 1 to 8 layer widths, got 9");
    assert_fails(load(&c, "model: {hidden: []}\n", &e), &e, "expected 1 to 8 layer widths, got 0");
    assert_fails(load(&c, "model: {hidden: [64, 0]}\n", &e), &e, "0 is out of range");
    assert_fails(load(&c, "model: {hidden: [[1]]}\n", &e), &e, "list items must be scalars");
    assert_fails(load(&c, "data: {delim: abcdefgh}\n", &e), &e, "expected 1..7 characters");
    assert_fails(load(&c, "data: {delim: \"a\\\"b\"}\n", &e), &e, "expected 1..7 characters");
    assert_fails(load(&c, "data: {categorical: [\"x:|:max\"]}\n", &e), &e, "POOL sum|mean");
    assert_fails(load(&c, "synth: {tasks: 4}\n", &e), &e, "must be in [2, 3]");
    assert_fails(load(&c, "synth: {users: -1}\n", &e), &e, "out of range");
    char big[700];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: {source: ", 15);
    strcpy(big + 600, "}\n");
    assert_fails(load(&c, big, &e), &e, "value too long");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_fails(load(&c, "model:\n  emb_dim: 8\n  act: relu\n  emb_dim: 4\n", &e), &e,
                 "duplicate key \"model.emb_dim\" (first at line 2)");
    assert_int_equal(e.line, 4);
    assert_int_equal(e.col, 3);
    assert_fails(load(&c, "tasks:\n  - {name: a, name: b}\n", &e), &e, "duplicate key \"tasks.0.name\"");
    assert_int_equal(c.model.emb_dim, 16);
}

static void test_validate_tasks(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(load(&c, "tasks: [{name: a, parent: c}, {name: b, parent: a}, {name: c, parent: b}, {name: d}]\n", &e),
              &e);
    assert_int_equal(rf_config_validate(&c, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "parent cycle a -> c -> b -> a"));
    assert_ok(set(&c, "tasks.a.parent=d", &e), &e);
    assert_ok(rf_config_validate(&c, &e), &e);

    assert_ok(set(&c, "tasks.a.parent=zz", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "tasks.a.parent: no task named \"zz\"");
    assert_ok(set(&c, "tasks.a.parent=a", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "cannot be its own parent");
    assert_ok(set(&c, "tasks.a.parent=", &e), &e);
    assert_ok(set(&c, "tasks.3.name=a", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "duplicate task name \"a\"");
    assert_ok(set(&c, "tasks.3.name=7", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "must not be a number");
    assert_ok(set(&c, "tasks.3.name=", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "tasks.3.name is empty");

    fresh(&c);
    assert_ok(set(&c, "train.monitor=auc:ctcvr", &e), &e);
    assert_ok(rf_config_validate(&c, &e), &e);
    assert_ok(set(&c, "train.monitor=loss", &e), &e);
    assert_ok(rf_config_validate(&c, &e), &e);
    assert_ok(set(&c, "train.monitor=auc:cvr", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "no task named \"cvr\"");
    assert_ok(set(&c, "train.monitor=auc", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "expected mean_auc, loss or auc:<task>");

    fresh(&c);
    assert_ok(set(&c, "data.valid_frac=0.5", &e), &e);
    assert_ok(set(&c, "data.test_frac=0.5", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "data.valid_frac + data.test_frac must be < 1");
    assert_ok(set(&c, "data.test=t.csv", &e), &e); /* fraction unused with a test file */
    assert_ok(rf_config_validate(&c, &e), &e);

    fresh(&c);
    assert_ok(set(&c, "data.categorical=a,b", &e), &e);
    assert_ok(set(&c, "data.dense=b", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "column \"b\" is listed twice");

    fresh(&c); /* structs filled by code are checked too */
    c.model.emb_dim = 0;
    assert_fails(rf_config_validate(&c, &e), &e, "model.emb_dim");
    fresh(&c);
    c.train.batch_size = -1;
    assert_fails(rf_config_validate(&c, &e), &e, "train.batch_size");
    fresh(&c);
    c.K = 0;
    assert_fails(rf_config_validate(&c, &e), &e, "tasks: 0 tasks");
    fresh(&c);
    c.model.type = (rf_model_type)77;
    assert_fails(rf_config_validate(&c, &e), &e, "model.type: invalid value 77");
}

static void test_lists(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    static const char *const forms[] = {"model.hidden=128,64,32", "model.hidden=[128, 64, 32]",
                                        "model.hidden= 128 , 64 ,32 ", "model.hidden=[128,64,32]"};
    for (int i = 0; i < 4; i++) {
        fresh(&c);
        assert_ok(set(&c, forms[i], &e), &e);
        assert_int_equal(c.model.n_hidden, 3);
        assert_int_equal(c.model.hidden[0], 128);
        assert_int_equal(c.model.hidden[1], 64);
        assert_int_equal(c.model.hidden[2], 32);
    }
    assert_ok(set(&c, "model.hidden=16", &e), &e);
    assert_int_equal(c.model.n_hidden, 1);
    assert_int_equal(c.model.hidden[1], 0); /* stale widths cleared */
    fresh(&c);
    assert_ok(load(&c, "model:\n  hidden: \"256,8\"\n", &e), &e);
    assert_int_equal(c.model.n_hidden, 2);
    assert_int_equal(c.model.hidden[0], 256);
    assert_fails(set(&c, "model.hidden=128,", &e), &e, "expected an integer, got \"\"");
    assert_ok(set(&c, "data.dense=[a, b, c]", &e), &e);
    assert_int_equal(c.data.schema.D, 3);
    assert_ok(set(&c, "data.dense=", &e), &e);
    assert_int_equal(c.data.schema.D, 0);
    assert_string_equal(c.data.schema.dense[0], "");
    assert_ok(set(&c, "data.dense=[]", &e), &e);
    assert_int_equal(c.data.schema.D, 0);
}

static void test_res_layers(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    fresh(&c);
    assert_ok(set(&c, "model.res_layers=none", &e), &e);
    assert_int_equal(c.model.res_layers, 0);
    assert_ok(set(&c, "model.res_layers=all", &e), &e);
    assert_int_equal(c.model.res_layers, (1u << RF_MAX_LAYERS) - 1);
    assert_ok(set(&c, "model.res_layers=1", &e), &e);
    assert_int_equal(c.model.res_layers, 2u);
    assert_ok(set(&c, "model.hidden=64,32,16", &e), &e);
    assert_ok(set(&c, "model.res_layers=0,2", &e), &e);
    assert_int_equal(c.model.res_layers, 5u);
    assert_ok(load(&c, "model: {res_layers: [2, 1]}\n", &e), &e);
    assert_int_equal(c.model.res_layers, 6u);
    assert_ok(load(&c, "model: {res_layers: []}\n", &e), &e);
    assert_int_equal(c.model.res_layers, 0u);
    assert_ok(rf_config_validate(&c, &e), &e);
    assert_fails(set(&c, "model.res_layers=8", &e), &e, "must be in [0, 7]");
    assert_fails(set(&c, "model.res_layers=some", &e), &e, "expected all, none or a list");
    assert_ok(set(&c, "model.res_layers=[0, 3]", &e), &e);
    assert_fails(rf_config_validate(&c, &e), &e, "model.res_layers: lists a layer >= 3");
    assert_ok(set(&c, "model.hidden=8,8,8,8", &e), &e);
    assert_ok(rf_config_validate(&c, &e), &e);
}

static void test_round_trip(void **state)
{
    (void)state;
    rf_config a, b;
    rf_error e;
    fresh(&a);
    static const char *const edits[] = {
        "model.type=esmm", "model.hidden=[300, 7, 1]", "model.res_layers=0,2", "model.res_logit=no",
        "model.prelu_init=-0.1", "model.bn_eps=3.3e-7", "model.emb_init=0.0123456789", "model.dense_mode=project",
        "train.lr=0.1", "train.beta2=0.99999", "train.seed=18446744073709551615", "train.monitor=auc:cart",
        "data.source=dir/with \"quotes\" and: colons #x.csv", "data.delim=tab", "data.weight=w",
        "data.categorical=[u, \"g:|:mean\", \"h:,:sum\", \"k:::sum\"]", "data.dense=yes,null,1.5",
        "synth.rows=123456789012", "synth.ctr=0.3333333", "tasks.2.name=cart", "tasks.cart.parent=ctr",
        "tasks.cart.label=a*b", "tasks.cart.pos_weight=123.456", "tasks.ctr.weight=1e-30",
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) assert_ok(set(&a, edits[i], &e), &e);
    assert_ok(rf_config_validate(&a, &e), &e);
    char *text = rf_config_dump(&a);
    assert_non_null(text);
    assert_true(strncmp(text, "# resflow resolved configuration\n", 33) == 0);
    fresh(&b);
    rf_status st = load(&b, text, &e);
    if (st) fprintf(stderr, "%s\n", text);
    assert_ok(st, &e);
    assert_memory_equal(&a, &b, sizeof a);
    /* dump of the reloaded config is identical text */
    char *text2 = rf_config_dump(&b);
    assert_string_equal(text, text2);
    free(text);
    free(text2);

    /* defaults round trip, and loading on top of a modified config restores them */
    fresh(&b);
    text = rf_config_dump(&b);
    assert_non_null(text);
    assert_ok(load(&a, text, &e), &e);
    assert_memory_equal(&a, &b, sizeof a);
    assert_non_null(strstr(text, "\n  hidden: [128, 64]\n"));
    assert_non_null(strstr(text, "\n  lr: 0.001\n"));
    free(text);
}

/* configs/default.yaml spells out every key with the built-in default. */
static void test_default_yaml(void **state)
{
    (void)state;
    const char *path = "configs/default.yaml";
    FILE *f = fopen(path, "r");
    if (!f) f = fopen(path = "../configs/default.yaml", "r");
    if (!f) f = fopen(path = "../../configs/default.yaml", "r");
    assert_non_null(f); /* run from the repository root */
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    rf_config zero, def;
    rf_error e;
    memset(&zero, 0, sizeof zero);
    assert_ok(rf_config_load_file(&zero, path, &e), &e); /* on an all-zero struct */
    fresh(&def);
    assert_memory_equal(&zero, &def, sizeof def);
    /* every key of the table is written in the file */
    char *keys = rf_config_describe();
    assert_non_null(keys);
    int checked = 0;
    for (char *line = keys; *line;) {
        char *nl = strchr(line, '\n');
        char name[128];
        assert_non_null(nl);
        assert_int_equal(sscanf(line, "%127s", name), 1);
        char *dot = strchr(name, '.');
        if (dot && strncmp(name, "tasks.", 6) && strncmp(name, "data.join.N.", 12)) {
            char want[160], sec[64], body[8192] = "";
            snprintf(sec, sizeof sec, "\n%.*s:", (int)(dot - name), name);
            snprintf(want, sizeof want, "\n  %s:", dot + 1);
            char *s = strstr(text, sec);
            if (s) { /* the section's text: up to the next unindented line */
                char *end = s + 1;
                while ((end = strchr(end, '\n')) && (end[1] == ' ' || end[1] == '#' || end[1] == '\n')) end++;
                snprintf(body, sizeof body, "%.*s", end ? (int)(end - s) : (int)strlen(s), s);
            }
            if (!strstr(body, want)) fprintf(stderr, "  default.yaml lacks %s\n", name);
            assert_non_null(strstr(body, want));
            checked++;
        }
        line = nl + 1;
    }
    assert_true(checked > 40);
    assert_non_null(strstr(keys, "model.hidden"));
    assert_non_null(strstr(keys, "tasks.N.pos_weight"));
    free(keys);
}

/* A field's own vocabulary min count: "name:min:N" (also after SEP:POOL), dumped and reloaded;
 * bad values and hashed/bucketized fields are errors at the value's file:line:column. */
static void test_cat_min_count(void **state)
{
    (void)state;
    rf_config c, d;
    rf_error e;
    fresh(&c);
    assert_ok(load(&c, "data:\n  min_count: 2\n  categorical: [\"u:min:5\", \"g:|:mean:min:3\", \"h:,:min:4\", i]\n", &e), &e);
    assert_int_equal(c.data.schema.cat[0].min_count, 5);
    assert_int_equal(c.data.schema.cat[1].min_count, 3);
    assert_int_equal(c.data.schema.cat[1].pooling, RF_POOL_MEAN);
    assert_int_equal(c.data.schema.cat[2].min_count, 4);
    assert_int_equal(c.data.schema.cat[2].sep, ',');
    assert_int_equal(c.data.schema.cat[3].min_count, 0);
    assert_string_equal(c.data.schema.cat[0].name, "u");
    char *text = rf_config_dump(&c);
    assert_non_null(strstr(text, "u:min:5"));
    fresh(&d);
    assert_ok(load(&d, text, &e), &e);
    assert_memory_equal(&c.data.schema.cat, &d.data.schema.cat, sizeof c.data.schema.cat);
    free(text);
    fresh(&c);
    assert_fails(load(&c, "data:\n  categorical:\n    - user\n    - \"item:min:0\"\n", &e), &e,
                 "\"item:min:0\": expected :min:N with N in 1..1000000000");
    assert_int_equal(e.line, 3); /* the list (as for every data.categorical item error) */
    assert_int_equal(e.col, 5);
    assert_fails(load(&c, "data: {categorical: [\"u:min:x\"]}\n", &e), &e, "expected :min:N");
    assert_fails(load(&c, "data: {categorical: [\"u:min:2:min:3\"]}\n", &e), &e, "expected :min:N");
    assert_fails(load(&c, "data: {categorical: [\"u:hash:100:min:2\"]}\n", &e), &e, "a hashed field has no vocabulary");
    assert_fails(load(&c, "data: {categorical: [\"p:bucket:8:min:2\"]}\n", &e), &e, "a bucketized field has no vocabulary");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cat_min_count),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_nested_and_dotted_keys),
        cmocka_unit_test(test_tasks_replace),
        cmocka_unit_test(test_set_overrides_file),
        cmocka_unit_test(test_set_task_by_name_and_append),
        cmocka_unit_test(test_unknown_key_location),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_validate_tasks),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_res_layers),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_default_yaml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
