/* config_keys.c - the configuration's key table and defaults (the files of the configuration:
 * config_int.h; contract in include/resflow/config.h; every key is documented in
 * docs/config.md).
 *
 * KEYS below declares every key once: dotted name, type, where it lives in rf_config, its
 * default (as text), allowed range/values and help. All values - defaults included - are
 * parsed from text by rf_cfg_set_value_() (config_value.c), so defaults, files and --set go
 * through the same code.
 * A YAML file is walked as a tree; nested mappings flatten to dotted keys; `tasks:` given
 * as a sequence replaces the task list. Loads and overrides are atomic: on error *cfg is
 * unchanged. Setters clear whole fields (strings, lists, unused tasks) so that the struct
 * is a function of the resolved configuration (load(dump(cfg)) == cfg bytewise).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/balance.h"
#include "run/config_int.h"

_Static_assert(sizeof(rf_model_type) == sizeof(int) && sizeof(rf_act) == sizeof(int) &&
                   sizeof(rf_bn) == sizeof(int) && sizeof(rf_dense_mode) == sizeof(int) &&
                   sizeof(rf_loss) == sizeof(int) && sizeof(rf_reg_head) == sizeof(int),
               "enum fields are stored as int");
_Static_assert(sizeof(((rf_task_cfg *)0)->label) == sizeof(((rf_schema *)0)->label[0]),
               "task label and schema label have the same size");
_Static_assert(sizeof(((rf_schema *)0)->label) / sizeof(((rf_schema *)0)->label[0]) >=
                   RF_MAX_TASKS, "schema holds every task label");

/* T_STRLIST keys name an int count immediately followed by its char[max][lo] array. */
#define STRLIST_FOLLOWS(s, n, a) (offsetof(s, a) == offsetof(s, n) + sizeof(int))
_Static_assert(STRLIST_FOLLOWS(rf_schema, ncols, cols) && STRLIST_FOLLOWS(rf_schema, nfilter, filter) &&
                   STRLIST_FOLLOWS(rf_schema, nna, na) && STRLIST_FOLLOWS(rf_schema, nnumeric, numeric) &&
                   STRLIST_FOLLOWS(rf_join_spec, ncols, cols) &&
                   STRLIST_FOLLOWS(rf_model_cfg, n_item_fields, item_fields) &&
                   STRLIST_FOLLOWS(rf_model_cfg, n_item_dense, item_dense),
               "string-list arrays follow their counts");

#define AT(s, f) offsetof(s, f), sizeof(((s *)0)->f)
#define C_(f) AT(rf_config, f)
#define INT_(n, f, d, lo, hi, h) {n, T_INT, C_(f), d, NULL, lo, hi, 0, h}
#define U32_(n, f, d, lo, h) {n, T_U32, C_(f), d, NULL, lo, INF, 0, h}
#define U64_(n, f, d, h) {n, T_U64, C_(f), d, NULL, 0, INF, 0, h}
#define FLT_(n, f, d, lo, hi, fl, h) {n, T_FLOAT, C_(f), d, NULL, lo, hi, fl, h}
#define BOOL_(n, f, d, h) {n, T_BOOL, C_(f), d, NULL, 0, 1, 0, h}
#define STR_(n, f, d, h) {n, T_STR, C_(f), d, NULL, 0, 0, 0, h}
#define ENUM_(n, f, d, ch, h) {n, T_ENUM, C_(f), d, ch, 0, 0, 0, h}
#define SPEC_(n, t, d, lo, hi, h) {n, t, 0, 0, d, NULL, lo, hi, 0, h}
#define WID_(n, f, d, h) {n, T_WIDTHS, C_(f), d, NULL, 1, 1 << 20, 0, h} /* rf_widths, 0..8 widths */
#define NBOOL_(n, f, d, h) {n, T_BOOL, C_(f), d, NULL, 0, 1, NEG, h}
#define STRL_(n, f, es, mx, d, h) {n, T_STRLIST, C_(f), d, NULL, es, mx, 0, h} /* count f, then char[mx][es] */

/* Every key, grouped by section (dump and describe follow this order). */
const key_def KEYS[] = {
    ENUM_("model.type", model.type, "resflow",
          "resflow|nse|esmm|single|shared_bottom|moe|mmoe|ple|aitm|escm2_ipw|escm2_dr|dcmt|stem|twin",
          "architecture: resflow (residual links between task towers), nse (independent towers), esmm (probabilities multiplied along the task tree), twin (user and item towers per task, score <u_k, v_k>), or a peer from the model zoo (docs/models.md)"),
    INT_("model.emb_dim", model.emb_dim, "16", 1, 65536, "embedding dimension E of every categorical field"),
    SPEC_("model.hidden", T_HIDDEN, "128,64", 1, 65536, "hidden-layer widths of each task tower (1..8 layers)"),
    ENUM_("model.act", model.act, "prelu", "relu|prelu", "hidden activation"),
    FLT_("model.prelu_init", model.prelu_init, "0.25", -INF, INF, 0, "initial PReLU slope"),
    ENUM_("model.bn", model.bn, "none", "none|batch", "BatchNorm after each hidden activation"),
    FLT_("model.bn_momentum", model.bn_momentum, "0.1", 0, 1, 0, "BatchNorm running-statistics momentum (PyTorch convention)"),
    FLT_("model.bn_eps", model.bn_eps, "1e-5", 0, INF, LO_OPEN, "BatchNorm epsilon"),
    ENUM_("model.dense_mode", model.dense_mode, "concat", "concat|project",
          "numeric features: concatenated to the tower input, or projected to one extra field"),
    SPEC_("model.res_layers", T_RESLAYERS, "all", 0, RF_MAX_LAYERS - 1,
          "ResFlow: hidden layers (0-based) followed by a residual link from the parent task: all, none or a list"),
    BOOL_("model.res_logit", model.res_logit, "true", "ResFlow: residual link on the logit"),
    FLT_("model.emb_init", model.emb_init, "0.05", 0, INF, 0, "embeddings initialised ~ U(-emb_init, emb_init)"),
    WID_("model.bottom", model.bottom, "256,128", "shared_bottom: widths of the shared bottom MLP"),
    WID_("model.expert_hidden", model.expert_hidden, "256,128",
         "moe/mmoe/stem: widths of each expert MLP; ple: the expert width of each level (one level per entry)"),
    INT_("model.experts", model.experts, "4", 1, 64, "moe/mmoe: number of experts"),
    INT_("model.shared_experts", model.shared_experts, "2", 0, 64, "ple/stem: shared experts per level"),
    INT_("model.specific_experts", model.specific_experts, "1", 1, 64, "ple/stem: task-specific experts per task and level"),
    FLT_("model.aitm_alpha", model.aitm_alpha, "0.6", 0, INF, 0, "aitm: weight of the calibrator mean(max(p_child - p_parent, 0))"),
    FLT_("model.cf_weight", model.cf_weight, "0.5", 0, INF, 0, "escm2: weight of the counterfactual CVR risk (lambda_c)"),
    FLT_("model.global_weight", model.global_weight, "0.5", 0, INF, 0, "escm2/dcmt: weight of the entire-space CTCVR loss (lambda_g)"),
    FLT_("model.ips_clip", model.ips_clip, "15", 1, INF, 0, "escm2/dcmt: inverse propensities are clipped to at most this"),
    BOOL_("model.esmm_links", model.esmm_links, "false",
          "esmm: also apply the links of model.res_layers / model.res_logit (the paper's ESMM + FR and ESMM + FR + LR)"),
    ENUM_("model.monotonic", model.monotonic, "none", "none|m1|m2|m3|m4",
          "resflow: keep probabilities non-increasing along the chain: m1 penalty on max(p_child - p_parent, 0), m2 penalty on max(residual logit, 0), m3 residual logit := min(r, 0), m4 p_child = p_parent * sigmoid(s_child) with feature links"),
    FLT_("model.monotonic_weight", model.monotonic_weight, "1", 0, INF, 0, "weight of the m1/m2 penalties"),
    {"model.twin_dim", T_INT, C_(model.twin_dim), "32", NULL, 1, 4096, TWIN,
     "twin: width d of the user and item vectors of every task"},
    {"model.twin_link", T_ENUM, C_(model.twin_link), "after", "none|before|after|both", 0, 0, TWIN,
     "twin: ResFlow link at the top: before the dot product (u_k += u_parent, v_k += v_parent), after it (z_k += z_parent), both or none (NSE twin: none with model.res_layers none)"},
    {"model.item_fields", T_STRLIST, C_(model.n_item_fields), "", NULL, RF_NAME_MAX, RF_MAX_FIELDS, TWIN,
     "twin: the categorical fields of the item tower (every other field is user/query/context side)"},
    {"model.item_dense", T_STRLIST, C_(model.n_item_dense), "", NULL, RF_NAME_MAX, RF_MAX_TWIN_DENSE, TWIN,
     "twin: the dense features of the item tower (every other one is user side)"},
    SPEC_("tasks", T_TASKS, "", 0, 0, "the tasks, a list of {name, label, parent, weight, pos_weight} (see tasks.N.*)"),
    INT_("train.epochs", train.epochs, "5", 0, INF, "training epochs"),
    INT_("train.batch_size", train.batch_size, "2048", 1, 1 << 24, "rows per mini-batch"),
    FLT_("train.lr", train.lr, "1e-3", 0, INF, LO_OPEN, "Adam learning rate of dense parameters"),
    FLT_("train.emb_lr", train.emb_lr, "0", 0, INF, 0, "learning rate of embeddings (0 = train.lr)"),
    FLT_("train.beta1", train.beta1, "0.9", 0, 1, HI_OPEN, "Adam beta1"),
    FLT_("train.beta2", train.beta2, "0.999", 0, 1, HI_OPEN, "Adam beta2"),
    FLT_("train.eps", train.eps, "1e-8", 0, INF, LO_OPEN, "Adam epsilon"),
    FLT_("train.weight_decay", train.weight_decay, "0", 0, INF, 0, "L2 on dense weights (added to the gradient, as torch Adam)"),
    FLT_("train.emb_weight_decay", train.emb_weight_decay, "0", 0, INF, 0, "L2 on the embedding rows touched in a batch"),
    U64_("train.seed", train.seed, "42", "seed of initialisation and shuffling"),
    INT_("train.threads", train.threads, "0", 0, 1024, "worker threads (0 = all cores)"),
    INT_("train.patience", train.patience, "2", 0, INF, "early stopping: epochs without improvement of train.monitor"),
    STR_("train.monitor", train.monitor, "mean_auc", "early-stopping metric: mean_auc, loss, auc:<task> or mse (regression: of the prediction E(v))"),
    INT_("train.eval_every", train.eval_every, "0", 0, INF, "evaluate on validation every N steps (0 = once per epoch)"),
    INT_("train.log_every", train.log_every, "200", 1, INF, "progress line every N steps"),
    BOOL_("train.skip_bad_rows", train.skip_bad_rows, "false", "skip malformed input rows instead of failing"),
    INT_("train.max_steps", train.max_steps, "0", 0, INF, "stop after N steps, even inside an epoch (0 = no limit)"),
    {"train.balance", T_ENUM, C_(train.balance), "none", RF_BALANCE_NAMES, 0, 0, QUIET0,
     "multi-task balancing of the per-task gradients/updates (docs/balance.md): none = summed losses and Adam; pub, uncertainty, pcgrad, mgda, cagrad, nash_mtl, adatask"},
    {"train.balance_interval", T_INT, C_(train.balance_interval), "0", NULL, 0, INF, QUIET0,
     "pub / nash_mtl: steps between weight solves (0 = the method's default: pub 10, nash_mtl 1)"},
    {"train.precision", T_ENUM, C_(train.precision), "fp32", "fp32|bf16", 0, 0, QUIET0,
     "the model's GEMMs (any model; those under 16 columns stay fp32) in fp32, or bf16 with fp32 accumulation, fp32 master weights and optimizer state (needs AVX512-BF16; docs/performance.md)"},
    {"train.checkpoint_every", T_STR, C_(train.checkpoint_every), "", NULL, 0, 0, QUIET0,
     "resflow train: write a checkpoint every N steps (500) or every N seconds/minutes/hours (30s, 10m, 2h); \"\" = none (--checkpoint-every overrides; docs/reliability.md)"},
    STR_("data.source", data.source, "synth", "\"synth\" (the simulator) or a delimited text file (CSV/TSV/..., .gz/.zst; docs/data.md)"),
    STR_("data.valid", data.valid, "", "separate validation file (\"\" = split data.valid_frac off the source)"),
    STR_("data.test", data.test, "", "separate test file (\"\" = split data.test_frac off the source)"),
    FLT_("data.valid_frac", data.valid_frac, "0.1", 0, 1, HI_OPEN, "fraction of source rows for validation when data.valid is \"\""),
    FLT_("data.test_frac", data.test_frac, "0.5", 0, 1, HI_OPEN, "fraction of source rows for test when data.test is \"\""),
    U64_("data.split_seed", data.split_seed, "7", "seed of the train/valid/test split (data.split: random)"),
    {"data.split", T_ENUM, C_(data.split), "position", "position|random", 0, 0, QUIET0,
     "how rows are held out for data.valid_frac/data.test_frac: position (the last rows of the source: test last, validation before it) or random (each group - or row without data.group - by a seeded hash of its key, data.split_seed; groups kept together)"},
    SPEC_("data.categorical", T_CATS, "", 0, 0, "categorical columns: name, or name:SEP:POOL for a multi-valued field (POOL sum|mean); append :hash:N to hash into N buckets or :min:N for this field's vocabulary min count (overrides data.min_count), or use name:bucket:N to cut a numeric column into N quantile buckets"),
    SPEC_("data.dense", T_DENSE, "", 0, 0, "numeric columns: name, or name:NORM (none|standardize|minmax) to override data.normalize"),
    STR_("data.weight", data.schema.weight, "", "per-row sample-weight column (\"\" = none)"),
    STR_("data.group", data.schema.group, "", "group/query key column (\"\" = none)"),
    SPEC_("data.delim", T_DELIM, ",", 0, 0, "field delimiter, 1..7 characters (\"\\t\" or tab for TSV, \"::\" for MovieLens .dat, \", \" for Census)"),
    U32_("data.min_count", data.schema.min_count, "1", 1, "vocabulary: keep categorical values seen at least this often in the training rows"),
    ENUM_("data.oov", data.schema.oov, "own", "zero|own", "values unknown to a vocabulary (unseen in training or below min_count): own = their own last id, zero = id 0 shared with missing values"),
    U64_("data.hash_seed", data.schema.hash_seed, "0", "seed of the XXH3-64 hash of :hash:N fields (stored with the model)"),
    ENUM_("data.normalize", data.schema.norm, "none", "none|standardize|minmax", "dense columns without their own :NORM: none, standardize ((x-mean)/sd) or minmax, fitted on the training rows"),
    {"data.fill_na", T_FILL, C_(data.schema.fill), "error", NULL, 0, 0, 0, "missing numeric values (empty or in data.na_values): error, zero, mean (training mean) or a number"},
    STRL_("data.na_values", data.schema.nna, RF_NA_LEN, RF_MAX_NA, ",NA,NaN,nan,NULL,null,?", "strings that mean a missing numeric value (with data.fill_na other than error)"),
    STRL_("data.numeric_labels", data.schema.nnumeric, RF_SPEC_MAX, RF_MAX_LABELS, "", "labels read as numbers, not checked to be 0/1: name, or name:lo:hi to scale to (x-lo)/(hi-lo) clamped to [0,1]"),
    STRL_("data.filter", data.schema.nfilter, RF_SPEC_MAX, RF_MAX_FILTERS, "", "keep only the rows where every expression holds: column OP value, OP one of >= > <= < == != (e.g. tab==1)"),
    NBOOL_("data.header", data.schema.no_header, "true", "the first row holds the column names (false: they are in data.columns)"),
    STRL_("data.columns", data.schema.ncols, RF_NAME_MAX, RF_MAX_COLS, "", "column names of a file without a header row"),
    ENUM_("data.encoding", data.schema.latin1, "utf8", "utf8|latin1", "text encoding of the source (latin1 = ISO-8859-1, converted to UTF-8)"),
    SPEC_("data.join", T_JOINS, "", 0, 0, "side tables joined to every row, a list of {file, on, key, delim, header, encoding, columns} (see data.join.N.*)"),
    STR_("data.cache", data.schema.cache, "", "binary dataset cache file (built by resflow prepare, or on first use; \"\" = none)"),
    ENUM_("data.cache_spill", data.schema.cache_spill, "auto", "auto|always|never",
          "building the cache: keep the parsed columns in temporary files (bounded memory) instead of RAM; auto = when the inputs exceed a quarter of the RAM"),
    ENUM_("data.shuffle", data.schema.shuffle, "auto", "auto|full|block", "training row order: full shuffle, or shuffled blocks of rows (auto: block for a cache, full otherwise)"),
    U32_("data.shuffle_block", data.schema.shuffle_block, "65536", 1, "rows per block of the block shuffle"),
    INT_("data.shuffle_window", data.schema.shuffle_window, "8", 1, 1 << 20, "blocks shuffled together (resident training data: about shuffle_block x shuffle_window rows)"),
    {"synth.rows", T_SIZE, C_(data.synth.rows), "5000000", NULL, 1, 1e12, 0, "simulator: impressions"},
    U64_("synth.seed", data.synth.seed, "1", "simulator: seed"),
    INT_("synth.tasks", data.synth.tasks, "2", 2, 3, "simulator: 2 (labels click, order) or 3 (click, cart, order)"),
    U32_("synth.users", data.synth.n_users, "50000", 1, "simulator: users"),
    U32_("synth.items", data.synth.n_items, "100000", 1, "simulator: items"),
    U32_("synth.queries", data.synth.n_queries, "20000", 1, "simulator: queries"),
    FLT_("synth.ctr", data.synth.ctr, "0.03", 0, 1, LO_OPEN | HI_OPEN, "simulator: mean click rate"),
    FLT_("synth.cvr", data.synth.cvr, "0.03", 0, 1, LO_OPEN | HI_OPEN, "simulator: mean P(order | click)"),
    FLT_("synth.cart_rate", data.synth.cart_rate, "0.15", 0, 1, LO_OPEN | HI_OPEN, "simulator (3 tasks): mean P(cart | click)"),
    INT_("synth.list_len", data.synth.list_len, "20", 1, 1 << 20, "simulator: items per query list (position bias)"),
    BOOL_("synth.order_counts", data.synth.order_counts, "false",
          "simulator (search): also write the label order_count, the units ordered on each row (0 if none), the weight of Weighted Recall@K"),
    ENUM_("synth.preset", data.synth.preset, "ecom", "search|kuairand|rating|ecom",
          "simulator: ecom (the default: e-commerce search log from docs/simulator.md's story, retrieval + production ranker, counterfactual labels cf_*), search (the older click/cart/order search log), kuairand (short-video feed: click, long_view, like, follow, comment, forward, play time) or rating (movie ratings 1..5)"),
    STR_("regression.target", regression.target, "",
         "regression as progressive multi-task (paper 4.6): the numeric column to predict (\"\" = no regression)"),
    {"regression.thresholds", T_FLOATS, C_(regression.thresholds), "", NULL, -INF, INF, 0,
     "thresholds v_0 < v_1 < ... < v_K (v_0 the minimum, v_K the maximum; 2..16 values): one task target>=v_k per k >= 1; [] = from regression.quantiles"},
    INT_("regression.quantiles", regression.quantiles, "0", 0, RF_MAX_THRESHOLDS - 1,
         "with no thresholds: K, the thresholds are the training target's quantiles 0, 1/K, ..., 1 (duplicates dropped)"),
    ENUM_("regression.head", regression.head, "progressive", "progressive|traditional",
          "progressive: K chained binary tasks and the expected value E(v); traditional: one task, squared error of a linear output"),
};
const size_t N_KEYS = sizeof KEYS / sizeof KEYS[0];

/* Fields of one task: keys tasks.<index or name>.<field>. */
#define T_(f) AT(rf_task_cfg, f)
const key_def TASK_KEYS[] = {
    {"name", T_STR, T_(name), "", NULL, 0, 0, 0, "task name (unique; not a number, no '.')"},
    {"label", T_STR, T_(label), "", NULL, 0, 0, 0, "label column, or a*b for the product of two columns (\"\" = the task name)"},
    {"parent", T_STR, T_(parent), "", NULL, 0, 0, 0, "name of the parent task (\"\" = root)"},
    {"weight", T_FLOAT, T_(weight), "1", NULL, 0, INF, 0, "loss weight"},
    {"pos_weight", T_FLOAT, T_(pos_weight), "1", NULL, 0, INF, LO_OPEN, "BCE weight of positive rows (negatives: 1)"},
    {"loss", T_ENUM, T_(loss), "bce", "bce|mse", 0, 0, QUIET0,
     "bce: binary cross-entropy of sigmoid(logit); mse: squared error of the linear output (resflow/nse, a root task without children)"},
};
const size_t N_TASK_KEYS = sizeof TASK_KEYS / sizeof TASK_KEYS[0];

/* Fields of one side table: keys data.join.<index>.<field>. */
#define J_(f) AT(rf_join_spec, f)
const key_def JOIN_KEYS[] = {
    {"file", T_STR, J_(path), "", NULL, 0, 0, 0, "the side table (CSV/TSV/..., .gz/.zst)"},
    {"on", T_STR, J_(on), "", NULL, 0, 0, 0, "column of the main file holding the key"},
    {"key", T_STR, J_(key), "", NULL, 0, 0, 0, "key column of this file (\"\" = the same name as on)"},
    {"delim", T_DSTR, J_(delim), ",", NULL, 0, 0, 0, "delimiter of this file, 1..7 characters"},
    {"header", T_BOOL, J_(no_header), "true", NULL, 0, 1, NEG, "this file's first row holds its column names"},
    {"encoding", T_ENUM, J_(latin1), "utf8", "utf8|latin1", 0, 0, 0, "text encoding of this file"},
    {"columns", T_STRLIST, J_(ncols), "", NULL, RF_NAME_MAX, RF_MAX_COLS, 0, "column names when header is false"},
};
const size_t N_JOIN_KEYS = sizeof JOIN_KEYS / sizeof JOIN_KEYS[0];

static const struct { const char *name, *label, *parent; } DEFAULT_TASKS[] = {
    {"ctr", "click", ""},
    {"ctcvr", "order", "ctr"},
};

void rf_cfg_join_init_(rf_join_spec *j)
{
    ctx c = {NULL, "<default>", NULL, NULL, 0, NULL};
    memset(j, 0, sizeof *j);
    for (size_t i = 0; i < N_JOIN_KEYS; i++) {
        val v = {0, 1, 1, {JOIN_KEYS[i].def}, {0, 0}};
        (void)rf_cfg_set_value_(&c, j, &JOIN_KEYS[i], JOIN_KEYS[i].name, &v);
    }
}

void rf_cfg_task_init_(rf_task_cfg *t)
{
    ctx c = {NULL, "<default>", NULL, NULL, 0, NULL};
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < N_TASK_KEYS; i++) {
        val v = {0, 1, 1, {TASK_KEYS[i].def}, {0, 0}};
        (void)rf_cfg_set_value_(&c, t, &TASK_KEYS[i], TASK_KEYS[i].name, &v);
    }
}

/* Derived state: empty labels default to the task name; the schema mirrors the labels. */
void rf_cfg_finalize_(rf_config *cfg)
{
    int K = clamp_k(cfg->K);
    for (int k = 0; k < K; k++)
        if (!cfg->tasks[k].label[0]) put_str(cfg->tasks[k].label, sizeof cfg->tasks[k].label, cfg->tasks[k].name);
    memset(cfg->data.schema.label, 0, sizeof cfg->data.schema.label);
    for (int k = 0; k < K; k++) memcpy(cfg->data.schema.label[k], cfg->tasks[k].label, sizeof cfg->tasks[k].label);
    cfg->data.schema.K = K;
}

void rf_config_default(rf_config *cfg)
{
    ctx c = {cfg, "<default>", NULL, NULL, 0, NULL};
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (KEYS[i].type == T_TASKS || KEYS[i].type == T_JOINS) continue;
        val v = {0, 1, 1, {KEYS[i].def}, {0, 0}};
        (void)rf_cfg_set_value_(&c, cfg, &KEYS[i], KEYS[i].name, &v); /* defaults are valid (tested) */
    }
    cfg->K = (int)(sizeof DEFAULT_TASKS / sizeof DEFAULT_TASKS[0]);
    for (int k = 0; k < cfg->K; k++) {
        rf_task_cfg *t = &cfg->tasks[k];
        rf_cfg_task_init_(t);
        put_str(t->name, sizeof t->name, DEFAULT_TASKS[k].name);
        put_str(t->label, sizeof t->label, DEFAULT_TASKS[k].label);
        put_str(t->parent, sizeof t->parent, DEFAULT_TASKS[k].parent);
    }
    rf_cfg_finalize_(cfg);
}
