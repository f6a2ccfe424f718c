/* config.c - experiment configuration: one key table, YAML loading (libyaml), `--set`
 * overrides, validation, dump and describe (contract in include/resflow/config.h; every
 * key is documented in docs/config.md).
 *
 * KEYS below declares every key once: dotted name, type, where it lives in rf_config, its
 * default (as text), allowed range/values and help. All values - defaults included - are
 * parsed from text by set_value(), so defaults, files and --set go through the same code.
 * A YAML file is walked as a tree; nested mappings flatten to dotted keys; `tasks:` given
 * as a sequence replaces the task list. Loads and overrides are atomic: on error *cfg is
 * unchanged. Setters clear whole fields (strings, lists, unused tasks) so that the struct
 * is a function of the resolved configuration (load(dump(cfg)) == cfg bytewise).
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "resflow/config.h"
#include "core/sbuf.h"

_Static_assert(sizeof(rf_model_type) == sizeof(int) && sizeof(rf_act) == sizeof(int) &&
                   sizeof(rf_bn) == sizeof(int) && sizeof(rf_dense_mode) == sizeof(int) &&
                   sizeof(rf_loss) == sizeof(int) && sizeof(rf_reg_head) == sizeof(int),
               "enum fields are stored as int");
_Static_assert(sizeof(((rf_task_cfg *)0)->label) == sizeof(((rf_schema *)0)->label[0]),
               "task label and schema label have the same size");
_Static_assert(sizeof(((rf_schema *)0)->label) / sizeof(((rf_schema *)0)->label[0]) >=
                   RF_MAX_TASKS, "schema holds every task label");

typedef enum {
    T_INT, T_U32, T_U64, T_SIZE, T_FLOAT, T_BOOL, T_STR, T_ENUM, /* scalars */
    T_HIDDEN, T_WIDTHS, T_RESLAYERS, T_CATS, T_DENSE, T_DELIM, T_TASKS, /* special */
    T_STRLIST, T_FILL, T_JOINS, T_DSTR, /* data pipeline: string list, fill-NA, side tables, delimiter string */
    T_FLOATS /* rf_floats: strictly ascending numbers (regression.thresholds) */
} ktype;

enum { LO_OPEN = 1, HI_OPEN = 2, NEG = 4 }; /* range bounds excluded; NEG: bool stored inverted */

/* T_STRLIST keys name an int count immediately followed by its char[max][lo] array. */
#define STRLIST_FOLLOWS(s, n, a) (offsetof(s, a) == offsetof(s, n) + sizeof(int))
_Static_assert(STRLIST_FOLLOWS(rf_schema, ncols, cols) && STRLIST_FOLLOWS(rf_schema, nfilter, filter) &&
                   STRLIST_FOLLOWS(rf_schema, nna, na) && STRLIST_FOLLOWS(rf_schema, nnumeric, numeric) &&
                   STRLIST_FOLLOWS(rf_join_spec, ncols, cols),
               "string-list arrays follow their counts");

typedef struct {
    const char *name;    /* dotted key (TASK_KEYS: the field after "tasks.N.") */
    ktype type;
    size_t off, size;    /* field in the base struct (rf_config or rf_task_cfg) */
    const char *def;     /* default, parsed like an unquoted --set value */
    const char *choices; /* T_ENUM: "a|b|c" in enum order */
    double lo, hi;       /* numeric range (T_HIDDEN: each width); +-HUGE_VAL = unbounded */
    int flags;
    const char *help;
} key_def;

#define INF HUGE_VAL
#define FMAX ((double)FLT_MAX)
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

#define RES_ALL ((1u << RF_MAX_LAYERS) - 1u) /* model.res_layers: all */

/* Every key, grouped by section (dump and describe follow this order). */
static const key_def KEYS[] = {
    ENUM_("model.type", model.type, "resflow",
          "resflow|nse|esmm|single|shared_bottom|moe|mmoe|ple|aitm|escm2_ipw|escm2_dr|dcmt|stem",
          "architecture: resflow (residual links between task towers), nse (independent towers), esmm (probabilities multiplied along the task tree), or a peer from the model zoo (docs/models.md)"),
    INT_("model.emb_dim", model.emb_dim, "16", 1, 65536, "embedding dimension E of every categorical field"),
    SPEC_("model.hidden", T_HIDDEN, "128,64", 1, 1 << 20, "hidden-layer widths of each task tower (1..8 layers)"),
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
    INT_("model.experts", model.experts, "4", 1, 256, "moe/mmoe: number of experts"),
    INT_("model.shared_experts", model.shared_experts, "2", 0, 256, "ple/stem: shared experts per level"),
    INT_("model.specific_experts", model.specific_experts, "1", 1, 256, "ple/stem: task-specific experts per task and level"),
    FLT_("model.aitm_alpha", model.aitm_alpha, "0.6", 0, INF, 0, "aitm: weight of the calibrator mean(max(p_child - p_parent, 0))"),
    FLT_("model.cf_weight", model.cf_weight, "0.5", 0, INF, 0, "escm2: weight of the counterfactual CVR risk (lambda_c)"),
    FLT_("model.global_weight", model.global_weight, "0.5", 0, INF, 0, "escm2/dcmt: weight of the entire-space CTCVR loss (lambda_g)"),
    FLT_("model.ips_clip", model.ips_clip, "15", 1, INF, 0, "escm2/dcmt: inverse propensities are clipped to at most this"),
    BOOL_("model.esmm_links", model.esmm_links, "false",
          "esmm: also apply the links of model.res_layers / model.res_logit (the paper's ESMM + FR and ESMM + FR + LR)"),
    ENUM_("model.monotonic", model.monotonic, "none", "none|m1|m2|m3|m4",
          "resflow: keep probabilities non-increasing along the chain: m1 penalty on max(p_child - p_parent, 0), m2 penalty on max(residual logit, 0), m3 residual logit := min(r, 0), m4 p_child = p_parent * sigmoid(s_child) with feature links"),
    FLT_("model.monotonic_weight", model.monotonic_weight, "1", 0, INF, 0, "weight of the m1/m2 penalties"),
    SPEC_("tasks", T_TASKS, "", 0, 0, "the tasks, a list of {name, label, parent, weight, pos_weight} (see tasks.N.*)"),
    INT_("train.epochs", train.epochs, "5", 0, INF, "training epochs"),
    INT_("train.batch_size", train.batch_size, "2048", 1, INF, "rows per mini-batch"),
    FLT_("train.lr", train.lr, "1e-3", 0, INF, LO_OPEN, "Adam learning rate of dense parameters"),
    FLT_("train.emb_lr", train.emb_lr, "0", 0, INF, 0, "learning rate of embeddings (0 = train.lr)"),
    FLT_("train.beta1", train.beta1, "0.9", 0, 1, HI_OPEN, "Adam beta1"),
    FLT_("train.beta2", train.beta2, "0.999", 0, 1, HI_OPEN, "Adam beta2"),
    FLT_("train.eps", train.eps, "1e-8", 0, INF, LO_OPEN, "Adam epsilon"),
    FLT_("train.weight_decay", train.weight_decay, "0", 0, INF, 0, "L2 on dense weights (added to the gradient, as torch Adam)"),
    FLT_("train.emb_weight_decay", train.emb_weight_decay, "0", 0, INF, 0, "L2 on the embedding rows touched in a batch"),
    U64_("train.seed", train.seed, "42", "seed of initialisation and shuffling"),
    INT_("train.threads", train.threads, "0", 0, INF, "worker threads (0 = all cores)"),
    INT_("train.patience", train.patience, "2", 0, INF, "early stopping: epochs without improvement of train.monitor"),
    STR_("train.monitor", train.monitor, "mean_auc", "early-stopping metric: mean_auc, loss, auc:<task> or mse (regression: of the prediction E(v))"),
    INT_("train.eval_every", train.eval_every, "0", 0, INF, "evaluate on validation every N steps (0 = once per epoch)"),
    INT_("train.log_every", train.log_every, "200", 1, INF, "progress line every N steps"),
    BOOL_("train.skip_bad_rows", train.skip_bad_rows, "false", "skip malformed input rows instead of failing"),
    INT_("train.max_steps", train.max_steps, "0", 0, INF, "stop after N steps, even inside an epoch (0 = no limit)"),
    STR_("data.source", data.source, "synth", "\"synth\" (the simulator) or a delimited text file (CSV/TSV/..., .gz/.zst; docs/data.md)"),
    STR_("data.valid", data.valid, "", "separate validation file (\"\" = split data.valid_frac off the source)"),
    STR_("data.test", data.test, "", "separate test file (\"\" = split data.test_frac off the source)"),
    FLT_("data.valid_frac", data.valid_frac, "0.1", 0, 1, HI_OPEN, "fraction of source rows for validation when data.valid is \"\""),
    FLT_("data.test_frac", data.test_frac, "0.2", 0, 1, HI_OPEN, "fraction of source rows for test when data.test is \"\""),
    U64_("data.split_seed", data.split_seed, "7", "seed of the train/valid/test split"),
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
    {"synth.rows", T_SIZE, C_(data.synth.rows), "1000000", NULL, 1, INF, 0, "simulator: impressions"},
    U64_("synth.seed", data.synth.seed, "1", "simulator: seed"),
    INT_("synth.tasks", data.synth.tasks, "2", 2, 3, "simulator: 2 (labels click, order) or 3 (click, cart, order)"),
    U32_("synth.users", data.synth.n_users, "50000", 1, "simulator: users"),
    U32_("synth.items", data.synth.n_items, "100000", 1, "simulator: items"),
    U32_("synth.queries", data.synth.n_queries, "20000", 1, "simulator: queries"),
    FLT_("synth.ctr", data.synth.ctr, "0.05", 0, 1, LO_OPEN | HI_OPEN, "simulator: mean click rate"),
    FLT_("synth.cvr", data.synth.cvr, "0.03", 0, 1, LO_OPEN | HI_OPEN, "simulator: mean P(order | click)"),
    FLT_("synth.cart_rate", data.synth.cart_rate, "0.15", 0, 1, LO_OPEN | HI_OPEN, "simulator (3 tasks): mean P(cart | click)"),
    INT_("synth.list_len", data.synth.list_len, "20", 1, INF, "simulator: items per query list (position bias)"),
    BOOL_("synth.order_counts", data.synth.order_counts, "false",
          "simulator (search): also write the label order_count, the units ordered on each row (0 if none), the weight of Weighted Recall@K"),
    ENUM_("synth.preset", data.synth.preset, "search", "search|kuairand|rating",
          "simulator: search (click/cart/order search log with order counts), kuairand (short-video feed: click, long_view, like, follow, comment, forward, play time) or rating (movie ratings 1..5)"),
    STR_("regression.target", regression.target, "",
         "regression as progressive multi-task (paper 4.6): the numeric column to predict (\"\" = no regression)"),
    {"regression.thresholds", T_FLOATS, C_(regression.thresholds), "", NULL, -INF, INF, 0,
     "thresholds v_0 < v_1 < ... < v_K (v_0 the minimum, v_K the maximum; 2..16 values): one task target>=v_k per k >= 1; [] = from regression.quantiles"},
    INT_("regression.quantiles", regression.quantiles, "0", 0, RF_MAX_THRESHOLDS - 1,
         "with no thresholds: K, the thresholds are the training target's quantiles 0, 1/K, ..., 1 (duplicates dropped)"),
    ENUM_("regression.head", regression.head, "progressive", "progressive|traditional",
          "progressive: K chained binary tasks and the expected value E(v); traditional: one task, squared error of a linear output"),
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

/* Fields of one task: keys tasks.<index or name>.<field>. */
#define T_(f) AT(rf_task_cfg, f)
static const key_def TASK_KEYS[] = {
    {"name", T_STR, T_(name), "", NULL, 0, 0, 0, "task name (unique; not a number, no '.')"},
    {"label", T_STR, T_(label), "", NULL, 0, 0, 0, "label column, or a*b for the product of two columns (\"\" = the task name)"},
    {"parent", T_STR, T_(parent), "", NULL, 0, 0, 0, "name of the parent task (\"\" = root)"},
    {"weight", T_FLOAT, T_(weight), "1", NULL, 0, INF, 0, "loss weight"},
    {"pos_weight", T_FLOAT, T_(pos_weight), "1", NULL, 0, INF, LO_OPEN, "BCE weight of positive rows (negatives: 1)"},
    {"loss", T_ENUM, T_(loss), "bce", "bce|mse", 0, 0, 0,
     "bce: binary cross-entropy of sigmoid(logit); mse: squared error of the linear output (resflow/nse, a root task without children)"},
};
#define N_TASK_KEYS (sizeof TASK_KEYS / sizeof TASK_KEYS[0])

/* Fields of one side table: keys data.join.<index>.<field>. */
#define J_(f) AT(rf_join_spec, f)
static const key_def JOIN_KEYS[] = {
    {"file", T_STR, J_(path), "", NULL, 0, 0, 0, "the side table (CSV/TSV/..., .gz/.zst)"},
    {"on", T_STR, J_(on), "", NULL, 0, 0, 0, "column of the main file holding the key"},
    {"key", T_STR, J_(key), "", NULL, 0, 0, 0, "key column of this file (\"\" = the same name as on)"},
    {"delim", T_DSTR, J_(delim), ",", NULL, 0, 0, 0, "delimiter of this file, 1..7 characters"},
    {"header", T_BOOL, J_(no_header), "true", NULL, 0, 1, NEG, "this file's first row holds its column names"},
    {"encoding", T_ENUM, J_(latin1), "utf8", "utf8|latin1", 0, 0, 0, "text encoding of this file"},
    {"columns", T_STRLIST, J_(ncols), "", NULL, RF_NAME_MAX, RF_MAX_COLS, 0, "column names when header is false"},
};
#define N_JOIN_KEYS (sizeof JOIN_KEYS / sizeof JOIN_KEYS[0])

static const struct { const char *name, *label, *parent; } DEFAULT_TASKS[] = {
    {"ctr", "click", ""},
    {"ctcvr", "order", "ctr"},
};

#define KEY_MAX 256   /* longest dotted key */
#define MAX_ITEMS 256 /* longest list value */

/* ---- small helpers ------------------------------------------------------------------- */

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static int only_space(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    return *s == 0;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Copy s into a size-byte field, zero-filling the rest (keeps structs comparable). */
static void put_str(char *dst, size_t size, const char *s)
{
    memset(dst, 0, size);
    memcpy(dst, s, strlen(s));
}

static const char *const BOOL_TRUE[] = {"true", "yes", "on", "1"};
static const char *const BOOL_FALSE[] = {"false", "no", "off", "0"};

static int parse_bool(const char *s)
{
    for (size_t i = 0; i < 4; i++) {
        if (ieq(s, BOOL_TRUE[i])) return 1;
        if (ieq(s, BOOL_FALSE[i])) return 0;
    }
    return -1;
}

/* Index of s in "a|b|c", -1 if absent. */
static int enum_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; *choices; i++) {
        size_t m = strcspn(choices, "|");
        if (m == n && strncmp(choices, s, n) == 0) return i;
        choices += m + (choices[m] == '|');
    }
    return -1;
}

/* Name i of "a|b|c" into buf ("" if out of range). */
static const char *enum_name(const char *choices, int i, char *buf, size_t n)
{
    buf[0] = 0;
    for (int j = 0; *choices; j++) {
        size_t m = strcspn(choices, "|");
        if (j == i) {
            snprintf(buf, n, "%.*s", (int)m, choices);
            break;
        }
        choices += m + (choices[m] == '|');
    }
    return buf;
}

/* Edit distance with adjacent transpositions (optimal string alignment); long strings
 * count as far apart. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    int r0[KEY_MAX + 1], r1[KEY_MAX + 1], r2[KEY_MAX + 1]; /* rows i-2, i-1, i */
    int *pp = r0, *prev = r1, *cur = r2;
    if (n > KEY_MAX || m > KEY_MAX) return INT_MAX / 2;
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

/* Is distance d between a typo of length n and a key close enough to suggest? */
static int close_enough(int d, size_t n) { return d <= 1 || (size_t)d * 4 <= n; }

static const key_def *find_in(const key_def *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

static int clamp_k(int K) { return K < 0 ? 0 : K > RF_MAX_TASKS ? RF_MAX_TASKS : K; }

/* "tasks.<sel>.<field>" -> sel, field (both non-empty). */
static int split_task_key(const char *key, char *sel, size_t seln, const char **field)
{
    if (strncmp(key, "tasks.", 6) != 0) return 0;
    const char *s = key + 6, *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1] || (size_t)(dot - s) >= seln) return 0;
    memcpy(sel, s, (size_t)(dot - s));
    sel[dot - s] = 0;
    *field = dot + 1;
    return 1;
}

/* ---- YAML text ------------------------------------------------------------------------ */

/* A YAML scalar: plain when unambiguous, else double-quoted with escapes. */
static void sb_scalar(sbuf *b, const char *s)
{
    static const char *const reserved[] = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
    int plain = *s && (isalnum((unsigned char)*s) || *s == '_' || *s == '/' || *s == '.');
    for (const char *p = s; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("_-./+", *p);
    for (size_t i = 0; plain && i < sizeof reserved / sizeof *reserved; i++)
        if (ieq(s, reserved[i])) plain = 0;
    if (plain) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p == '\t') sb_puts(b, "\\t");
        else if (*p == '\n') sb_puts(b, "\\n");
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02X", *p);
        else sb_add(b, (const char *)p, 1);
    }
    sb_puts(b, "\"");
}

/* Shortest of %.6g..%.9g that reads back (strtof) to exactly f. */
static void fmt_float(char *buf, size_t n, float f)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

/* ---- value formatting (dump / describe) --------------------------------------------- */

static void fmt_task(sbuf *b, const rf_task_cfg *t);

static void fmt_value(sbuf *b, const void *base, const key_def *kd)
{
    const char *field = (const char *)base + kd->off;
    const rf_config *cfg = base;
    char tmp[64];
    switch (kd->type) {
    case T_INT: { int x; memcpy(&x, field, sizeof x); sb_printf(b, "%d", x); break; }
    case T_U32: { uint32_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%lu", (unsigned long)x); break; }
    case T_U64: { uint64_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%llu", (unsigned long long)x); break; }
    case T_SIZE: { size_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%zu", x); break; }
    case T_FLOAT: { float x; memcpy(&x, field, sizeof x); fmt_float(tmp, sizeof tmp, x); sb_puts(b, tmp); break; }
    case T_BOOL: {
        int x;
        memcpy(&x, field, sizeof x);
        if (kd->flags & NEG) x = !x;
        sb_puts(b, x ? "true" : "false");
        break;
    }
    case T_STR: sb_scalar(b, field); break;
    case T_ENUM: {
        int x;
        memcpy(&x, field, sizeof x);
        if (*enum_name(kd->choices, x, tmp, sizeof tmp)) sb_puts(b, tmp);
        else sb_printf(b, "%d", x);
        break;
    }
    case T_HIDDEN:
        sb_puts(b, "[");
        for (int l = 0; l < cfg->model.n_hidden && l < RF_MAX_LAYERS; l++)
            sb_printf(b, "%s%d", l ? ", " : "", cfg->model.hidden[l]);
        sb_puts(b, "]");
        break;
    case T_WIDTHS: {
        rf_widths wd;
        memcpy(&wd, field, sizeof wd);
        sb_puts(b, "[");
        for (int l = 0; l < wd.n && l < RF_MAX_LAYERS; l++) sb_printf(b, "%s%d", l ? ", " : "", wd.w[l]);
        sb_puts(b, "]");
        break;
    }
    case T_RESLAYERS:
        if (cfg->model.res_layers == RES_ALL) sb_puts(b, "all");
        else if (cfg->model.res_layers == 0) sb_puts(b, "none");
        else {
            sb_puts(b, "[");
            for (int l = 0, first = 1; l < 32; l++)
                if (cfg->model.res_layers >> l & 1u) {
                    sb_printf(b, "%s%d", first ? "" : ", ", l);
                    first = 0;
                }
            sb_puts(b, "]");
        }
        break;
    case T_CATS:
        sb_puts(b, "[");
        for (int f = 0; f < cfg->data.schema.F && f < 64; f++) {
            const rf_cat_spec *c = &cfg->data.schema.cat[f];
            char item[RF_NAME_MAX + 48];
            int w;
            if (c->multi)
                w = snprintf(item, sizeof item, "%s:%c:%s", c->name, c->sep, c->pooling == RF_POOL_MEAN ? "mean" : "sum");
            else
                w = snprintf(item, sizeof item, "%s", c->name);
            if (w > 0 && (size_t)w < sizeof item && (c->hash || c->bucket))
                snprintf(item + w, sizeof item - (size_t)w, ":%s:%lu", c->hash ? "hash" : "bucket",
                         (unsigned long)(c->hash ? c->hash : c->bucket));
            if (w > 0 && (size_t)w < sizeof item && c->min_count)
                snprintf(item + strlen(item), sizeof item - strlen(item), ":min:%lu", (unsigned long)c->min_count);
            if (f) sb_puts(b, ", ");
            sb_scalar(b, item);
        }
        sb_puts(b, "]");
        break;
    case T_DENSE:
        sb_puts(b, "[");
        for (int d = 0; d < cfg->data.schema.D && d < 128; d++) {
            static const char *const norms[] = {"none", "standardize", "minmax"};
            int dn = cfg->data.schema.dense_norm[d];
            char item[RF_NAME_MAX + 16];
            if (dn >= 1 && dn <= 3) snprintf(item, sizeof item, "%s:%s", cfg->data.schema.dense[d], norms[dn - 1]);
            else snprintf(item, sizeof item, "%s", cfg->data.schema.dense[d]);
            if (d) sb_puts(b, ", ");
            sb_scalar(b, item);
        }
        sb_puts(b, "]");
        break;
    case T_DELIM: {
        char s[RF_DELIM_MAX];
        sb_scalar(b, rf_schema_delim(&cfg->data.schema, s));
        break;
    }
    case T_DSTR: sb_scalar(b, field[0] ? field : ","); break;
    case T_STRLIST: {
        int cnt;
        memcpy(&cnt, field, sizeof cnt);
        sb_puts(b, "[");
        for (int i = 0; i < cnt && i < (int)kd->hi; i++) {
            if (i) sb_puts(b, ", ");
            sb_scalar(b, field + sizeof(int) + (size_t)i * (size_t)kd->lo);
        }
        sb_puts(b, "]");
        break;
    }
    case T_FILL: {
        int fl;
        memcpy(&fl, field, sizeof fl);
        if (fl == RF_FILL_VALUE) {
            fmt_float(tmp, sizeof tmp, cfg->data.schema.fill_value);
            sb_puts(b, tmp);
        } else {
            sb_puts(b, fl == RF_FILL_ZERO ? "zero" : fl == RF_FILL_MEAN ? "mean" : "error");
        }
        break;
    }
    case T_JOINS:
        sb_puts(b, "[");
        for (int j = 0; j < cfg->data.schema.njoin && j < RF_MAX_JOINS; j++) {
            sb_puts(b, j ? ", {" : "{");
            for (size_t i = 0; i < N_JOIN_KEYS; i++) {
                sb_printf(b, "%s%s: ", i ? ", " : "", JOIN_KEYS[i].name);
                fmt_value(b, &cfg->data.schema.join[j], &JOIN_KEYS[i]);
            }
            sb_puts(b, "}");
        }
        sb_puts(b, "]");
        break;
    case T_FLOATS: {
        rf_floats fl;
        memcpy(&fl, field, sizeof fl);
        sb_puts(b, "[");
        for (int i = 0; i < fl.n && i < RF_MAX_THRESHOLDS; i++) {
            fmt_float(tmp, sizeof tmp, fl.v[i]);
            sb_printf(b, "%s%s", i ? ", " : "", tmp);
        }
        sb_puts(b, "]");
        break;
    }
    case T_TASKS:
        sb_puts(b, "[");
        for (int k = 0; k < clamp_k(cfg->K); k++) {
            if (k) sb_puts(b, ", ");
            fmt_task(b, &cfg->tasks[k]);
        }
        sb_puts(b, "]");
        break;
    }
}

/* One task as a YAML flow mapping. */
static void fmt_task(sbuf *b, const rf_task_cfg *t)
{
    sb_puts(b, "{");
    for (size_t i = 0; i < N_TASK_KEYS; i++) {
        /* loss only when not bce: the dumps (and run hashes) of classification tasks stay as before */
        if (!strcmp(TASK_KEYS[i].name, "loss") && t->loss == RF_LOSS_BCE) continue;
        sb_printf(b, "%s%s: ", i ? ", " : "", TASK_KEYS[i].name);
        fmt_value(b, t, &TASK_KEYS[i]);
    }
    sb_puts(b, "}");
}

static const char *type_name(const key_def *kd)
{
    switch (kd->type) {
    case T_INT: case T_U32: return "int";
    case T_U64: case T_SIZE: return "uint64";
    case T_FLOAT: return "float";
    case T_BOOL: return "bool";
    case T_STR: return "string";
    case T_ENUM: return kd->choices;
    case T_HIDDEN: return "int-list";
    case T_WIDTHS: return "int-list";
    case T_RESLAYERS: return "all|none|int-list";
    case T_CATS: case T_DENSE: return "string-list";
    case T_DELIM: case T_DSTR: return "string";
    case T_STRLIST: return "string-list";
    case T_FILL: return "error|zero|mean|float";
    case T_JOINS: return "join-list";
    case T_TASKS: return "task-list";
    case T_FLOATS: return "float-list";
    }
    return "?";
}

/* ---- numbers: parse, range --------------------------------------------------------- */

static double get_num(const void *base, const key_def *kd)
{
    const char *f = (const char *)base + kd->off;
    switch (kd->type) {
    case T_INT: case T_BOOL: case T_ENUM: { int x; memcpy(&x, f, sizeof x); return x; }
    case T_U32: { uint32_t x; memcpy(&x, f, sizeof x); return x; }
    case T_U64: { uint64_t x; memcpy(&x, f, sizeof x); return (double)x; }
    case T_SIZE: { size_t x; memcpy(&x, f, sizeof x); return (double)x; }
    case T_FLOAT: { float x; memcpy(&x, f, sizeof x); return x; }
    default: return 0;
    }
}

static int is_numeric(const key_def *kd) { return kd->type <= T_FLOAT; }

/* 1 if x is within kd's range, else 0 with the rule in why. */
static int in_range(const key_def *kd, double x, char *why, size_t wn)
{
    int lo_ok = kd->flags & LO_OPEN ? x > kd->lo : x >= kd->lo;
    int hi_ok = kd->flags & HI_OPEN ? x < kd->hi : x <= kd->hi;
    if (lo_ok && hi_ok && !isnan(x)) return 1;
    if (kd->hi == INF)
        snprintf(why, wn, "must be %s %.10g", kd->flags & LO_OPEN ? ">" : ">=", kd->lo);
    else
        snprintf(why, wn, "must be in %c%.10g, %.10g%c", kd->flags & LO_OPEN ? '(' : '[', kd->lo, kd->hi,
                 kd->flags & HI_OPEN ? ')' : ']');
    return 0;
}

/* Parse s as a number of type t with kd's range; store into dst. 1 ok, else 0 + why. */
static int parse_num(ktype t, const key_def *kd, const char *s, void *dst, char *why, size_t wn)
{
    char *end, rule[96];
    double x;
    while (isspace((unsigned char)*s)) s++;
    errno = 0;
    if (t == T_FLOAT) {
        double d = strtod(s, &end);
        if (end == s || !only_space(end)) {
            snprintf(why, wn, "expected a number, got \"%s\"", s);
            return 0;
        }
        if (!isfinite(d) || fabs(d) > FMAX) {
            snprintf(why, wn, "%s is not a finite float", s);
            return 0;
        }
        float f = strtof(s, NULL);
        x = f;
        if (!in_range(kd, x, rule, sizeof rule)) goto range;
        memcpy(dst, &f, sizeof f);
    } else if (t == T_U64 || t == T_SIZE) {
        unsigned long long u = *s == '-' ? 0 : strtoull(s, &end, 10);
        if (*s == '-' || end == s || !only_space(end)) {
            snprintf(why, wn, "expected a non-negative integer, got \"%s\"", s);
            return 0;
        }
        if (errno == ERANGE || (t == T_SIZE && u > SIZE_MAX)) {
            snprintf(why, wn, "%s is too large", s);
            return 0;
        }
        x = (double)u;
        if (!in_range(kd, x, rule, sizeof rule)) goto range;
        if (t == T_U64) { uint64_t v = u; memcpy(dst, &v, sizeof v); }
        else { size_t v = (size_t)u; memcpy(dst, &v, sizeof v); }
    } else { /* T_INT, T_U32 */
        long long l = strtoll(s, &end, 10);
        long long lo = t == T_U32 ? 0 : INT_MIN, hi = t == T_U32 ? (long long)UINT32_MAX : INT_MAX;
        if (end == s || !only_space(end)) {
            snprintf(why, wn, "expected an integer, got \"%s\"", s);
            return 0;
        }
        if (errno == ERANGE || l < lo || l > hi) {
            snprintf(why, wn, "%s is out of range (must be in [%lld, %lld])", s, lo, hi);
            return 0;
        }
        x = (double)l;
        if (!in_range(kd, x, rule, sizeof rule)) goto range;
        if (t == T_U32) { uint32_t v = (uint32_t)l; memcpy(dst, &v, sizeof v); }
        else { int v = (int)l; memcpy(dst, &v, sizeof v); }
    }
    return 1;
range:
    snprintf(why, wn, "%s is out of range (%s)", s, rule);
    return 0;
}

/* ---- applying values ---------------------------------------------------------------- */

typedef struct {
    long line, col; /* 1-based; 0 = unknown */
} loc;

/* A value to assign: a YAML scalar, or a sequence of scalars. */
typedef struct {
    int seq;   /* 1: sequence; 0: scalar (list keys split it at commas) */
    int plain; /* scalar was unquoted: "", ~ and null then mean empty */
    int n;
    const char *item[MAX_ITEMS];
    loc at;
} val;

typedef struct {
    rf_config *cfg;
    const char *file;      /* for error messages */
    rf_error *err;
    yaml_document_t *doc;  /* while walking a YAML tree */
    int marks;             /* report line:column (0 for --set) */
    loc *reg_at;           /* files: where the first regression.* key other than the target is */
} ctx;

static loc mark_loc(yaml_mark_t m)
{
    loc l = {(long)m.line + 1, (long)m.column + 1};
    return l;
}

static rf_status fail(const ctx *c, loc at, const char *fmt, ...) RF_PRINTF(3, 4);
static rf_status fail(const ctx *c, loc at, const char *fmt, ...)
{
    char msg[sizeof ((rf_error *)0)->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rf_error_at(c->err, RF_EUSAGE, c->file, c->marks ? at.line : 0, c->marks ? at.col : 0, "%s", msg);
}

static int is_null(const val *v)
{
    const char *s = v->n ? v->item[0] : "";
    return !v->seq && (v->n == 0 || (v->plain && (!*s || !strcmp(s, "~") || ieq(s, "null"))));
}

/* Items of a list value: the sequence, or the scalar split at commas (empty = no items).
 * *owned gets a buffer to free. Returns the count (MAX_ITEMS + 1 = too many), -1 on OOM. */
static int list_items(const val *v, const char **items, char **owned)
{
    *owned = NULL;
    if (v->seq) {
        memcpy(items, v->item, (size_t)v->n * sizeof *items);
        return v->n;
    }
    if (is_null(v) || only_space(v->item[0])) return 0;
    char *s = *owned = malloc(strlen(v->item[0]) + 1);
    if (!s) return -1;
    strcpy(s, v->item[0]);
    int n = 0;
    for (char *tok = s;; n++) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        while (isspace((unsigned char)*tok)) tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]);) *--e = 0;
        if (n == MAX_ITEMS) return MAX_ITEMS + 1;
        items[n] = tok;
        if (!comma) return n + 1;
        tok = comma + 1;
    }
}

/* "name", "name:SEP" / "name:SEP:POOL" (a multi-valued field, POOL sum|mean, default sum),
 * optionally followed by ":hash:N" (hash into N buckets) or ":min:N" (this vocabulary's min
 * count, overriding data.min_count); or "name:bucket:N" (a numeric column cut into N quantile
 * buckets). 1 ok, else 0 + why. */
static int parse_cat(const char *s, rf_cat_spec *c, char *why, size_t wn)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    memset(c, 0, sizeof *c);
    if (n == 0 || n >= RF_NAME_MAX) {
        snprintf(why, wn, "bad column name in \"%s\" (1..%d bytes)", s, RF_NAME_MAX - 1);
        return 0;
    }
    memcpy(c->name, s, n);
    const char *p = colon ? colon + 1 : NULL;
    while (p) {
        if (!strncmp(p, "min:", 4)) { /* this field's vocabulary min count */
            char *end;
            unsigned long v = (p[4] >= '0' && p[4] <= '9') ? strtoul(p + 4, &end, 10) : 0;
            if (!v || v > 1000000000ul || (*end && *end != ':') || c->min_count) {
                snprintf(why, wn, "\"%s\": expected :min:N with N in 1..1000000000", s);
                return 0;
            }
            c->min_count = (uint32_t)v;
            p = *end ? end + 1 : NULL;
            continue;
        }
        int is_hash = !strncmp(p, "hash:", 5), is_bucket = !strncmp(p, "bucket:", 7);
        if (is_hash || is_bucket) {
            const char *q = p + (is_hash ? 5 : 7);
            char *end;
            unsigned long v = (*q >= '0' && *q <= '9') ? strtoul(q, &end, 10) : 0;
            if (!v || v > (is_hash ? (1ul << 31) - 2 : 1ul << 20) || (*end && *end != ':') || c->hash || c->bucket) {
                snprintf(why, wn, "\"%s\": expected :%s:N with N in 1..%lu", s, is_hash ? "hash" : "bucket",
                         is_hash ? (1ul << 31) - 2 : 1ul << 20);
                return 0;
            }
            if (is_hash) c->hash = (uint32_t)v;
            else c->bucket = (uint32_t)v;
            p = *end ? end + 1 : NULL;
            continue;
        }
        if (c->multi || c->hash || c->bucket || !p[0] || (p[1] && p[1] != ':')) goto bad;
        c->multi = 1;
        c->sep = p[0];
        c->pooling = RF_POOL_SUM;
        if (!p[1]) break;
        const char *q = p + 2;
        if (!strncmp(q, "sum", 3) && (!q[3] || q[3] == ':')) p = q[3] ? q + 4 : NULL;
        else if (!strncmp(q, "mean", 4) && (!q[4] || q[4] == ':')) {
            c->pooling = RF_POOL_MEAN;
            p = q[4] ? q + 5 : NULL;
        } else if (!strncmp(q, "hash:", 5) || !strncmp(q, "min:", 4)) p = q;
        else goto bad;
    }
    if (c->bucket && c->multi) {
        snprintf(why, wn, "\"%s\": a bucketized column is a single number, not multi-valued", s);
        return 0;
    }
    if (c->min_count && (c->hash || c->bucket)) {
        snprintf(why, wn, "\"%s\": :min:N is a vocabulary threshold; a %s field has no vocabulary", s,
                 c->hash ? "hashed" : "bucketized");
        return 0;
    }
    return 1;
bad:
    snprintf(why, wn, "\"%s\": expected name or name:SEP:POOL (one-character SEP, POOL sum|mean), then optionally :hash:N or :min:N; or name:bucket:N", s);
    return 0;
}

/* A delimiter: "tab" or "\\t" for a tab, else 1..RF_DELIM_MAX-1 bytes without quotes or line
 * breaks. 1 ok (d filled, NUL-terminated), else 0. */
static int parse_delim(const char *s, char d[RF_DELIM_MAX])
{
    memset(d, 0, RF_DELIM_MAX);
    if (ieq(s, "tab") || !strcmp(s, "\\t")) {
        d[0] = '\t';
        return 1;
    }
    size_t n = strlen(s);
    if (n < 1 || n >= RF_DELIM_MAX || strpbrk(s, "\"\n\r")) return 0;
    memcpy(d, s, n);
    return 1;
}

/* Store v into key kd of base (an rf_config, or an rf_task_cfg for TASK_KEYS). */
static rf_status set_value(const ctx *c, void *base, const key_def *kd, const char *key, const val *v)
{
    char *field = (char *)base + kd->off, why[400];
    rf_config *cfg = base;
    const char *s = v->n ? v->item[0] : "";
    const char *items[MAX_ITEMS];
    char *owned = NULL;
    int n = 0;
    rf_status st = RF_OK;

    if (v->seq && kd->type <= T_ENUM && kd->type != T_STR)
        return fail(c, v->at, "%s: expected %s, got a list", key, type_name(kd));
    if (v->seq && (kd->type == T_STR || kd->type == T_DELIM || kd->type == T_DSTR || kd->type == T_FILL))
        return fail(c, v->at, "%s: expected a string, got a list", key);
    if (((kd->type >= T_HIDDEN && kd->type <= T_DENSE) || kd->type == T_STRLIST || kd->type == T_FLOATS) &&
        !(kd->type == T_RESLAYERS && !v->seq && (ieq(s, "all") || ieq(s, "none")))) {
        n = list_items(v, items, &owned);
        if (n < 0) return rf_errorf(c->err, RF_ENOMEM, "out of memory");
    }
    switch (kd->type) {
    case T_INT: case T_U32: case T_U64: case T_SIZE: case T_FLOAT:
        if (!parse_num(kd->type, kd, s, field, why, sizeof why)) st = fail(c, v->at, "%s: %s", key, why);
        break;
    case T_BOOL: {
        int b = parse_bool(s);
        if (b < 0) st = fail(c, v->at, "%s: expected true/false (or yes/no, on/off, 1/0), got \"%s\"", key, s);
        else {
            if (kd->flags & NEG) b = !b;
            memcpy(field, &b, sizeof b);
        }
        break;
    }
    case T_STR:
        if (is_null(v)) s = "";
        if (strlen(s) >= kd->size)
            st = fail(c, v->at, "%s: value too long (%zu bytes, at most %zu)", key, strlen(s), kd->size - 1);
        else put_str(field, kd->size, s);
        break;
    case T_ENUM: {
        int e = enum_index(kd->choices, s);
        if (e < 0) {
            char allowed[128];
            size_t m = 0;
            for (const char *p = kd->choices; *p && m + 3 < sizeof allowed; p++) {
                allowed[m++] = *p == '|' ? ',' : *p;
                if (*p == '|') allowed[m++] = ' ';
            }
            allowed[m] = 0;
            st = fail(c, v->at, "%s: unknown value \"%s\" (allowed: %s)", key, s, allowed);
        } else memcpy(field, &e, sizeof e);
        break;
    }
    case T_WIDTHS: {
        rf_widths wd;
        memset(&wd, 0, sizeof wd);
        if (n > RF_MAX_LAYERS) {
            st = fail(c, v->at, "%s: expected at most %d widths, got %d", key, RF_MAX_LAYERS, n);
            break;
        }
        for (int l = 0; l < n && !st; l++)
            if (!parse_num(T_INT, kd, items[l], &wd.w[l], why, sizeof why)) st = fail(c, v->at, "%s: %s", key, why);
        if (st) break;
        wd.n = n;
        memcpy(field, &wd, sizeof wd);
        break;
    }
    case T_HIDDEN: {
        int w[RF_MAX_LAYERS];
        if (n < 1 || n > RF_MAX_LAYERS) {
            st = fail(c, v->at, "%s: expected 1 to %d layer widths, got %d", key, RF_MAX_LAYERS, n);
            break;
        }
        for (int l = 0; l < n && !st; l++)
            if (!parse_num(T_INT, kd, items[l], &w[l], why, sizeof why)) st = fail(c, v->at, "%s: %s", key, why);
        if (st) break;
        cfg->model.n_hidden = n;
        memset(cfg->model.hidden, 0, sizeof cfg->model.hidden);
        memcpy(cfg->model.hidden, w, (size_t)n * sizeof *w);
        break;
    }
    case T_RESLAYERS: {
        uint32_t mask = 0;
        if (!v->seq && ieq(s, "all")) mask = RES_ALL;
        else if (!v->seq && ieq(s, "none")) mask = 0;
        else if (n > MAX_ITEMS) st = fail(c, v->at, "%s: too many items", key);
        else
            for (int i = 0; i < n && !st; i++) {
                int l;
                if (!parse_num(T_INT, kd, items[i], &l, why, sizeof why))
                    st = fail(c, v->at, "%s: expected all, none or a list of hidden-layer indices: %s", key, why);
                else mask |= 1u << l;
            }
        if (!st) cfg->model.res_layers = mask;
        break;
    }
    case T_CATS: {
        rf_schema *sc = &cfg->data.schema;
        int cap = (int)(sizeof sc->cat / sizeof sc->cat[0]);
        rf_cat_spec cs[sizeof sc->cat / sizeof sc->cat[0]];
        if (n > cap) {
            st = fail(c, v->at, "%s: at most %d categorical columns", key, cap);
            break;
        }
        for (int f = 0; f < n && !st; f++)
            if (!parse_cat(items[f], &cs[f], why, sizeof why)) st = fail(c, v->at, "%s: %s", key, why);
        if (st) break;
        memset(sc->cat, 0, sizeof sc->cat);
        memcpy(sc->cat, cs, (size_t)n * sizeof *cs);
        sc->F = n;
        break;
    }
    case T_DENSE: {
        rf_schema *sc = &cfg->data.schema;
        int cap = (int)(sizeof sc->dense / sizeof sc->dense[0]);
        if (n > cap) {
            st = fail(c, v->at, "%s: at most %d dense columns", key, cap);
            break;
        }
        int dn[sizeof sc->dense / sizeof sc->dense[0]];
        char nm[sizeof sc->dense / sizeof sc->dense[0]][RF_NAME_MAX];
        for (int d = 0; d < n && !st; d++) {
            static const char *const norms[] = {"none", "standardize", "minmax"};
            const char *colon = strrchr(items[d], ':');
            size_t len = strlen(items[d]);
            dn[d] = 0;
            for (int k = 0; colon && k < 3; k++)
                if (!strcmp(colon + 1, norms[k])) {
                    dn[d] = k + 1;
                    len = (size_t)(colon - items[d]);
                }
            if (!len || len >= RF_NAME_MAX) {
                st = fail(c, v->at, "%s: bad column name \"%s\" (1..%d bytes)", key, items[d], RF_NAME_MAX - 1);
                break;
            }
            memset(nm[d], 0, RF_NAME_MAX);
            memcpy(nm[d], items[d], len);
        }
        if (st) break;
        memset(sc->dense, 0, sizeof sc->dense);
        memset(sc->dense_norm, 0, sizeof sc->dense_norm);
        for (int d = 0; d < n; d++) {
            memcpy(sc->dense[d], nm[d], RF_NAME_MAX);
            sc->dense_norm[d] = dn[d];
        }
        sc->D = n;
        break;
    }
    case T_DELIM: case T_DSTR: {
        char d[RF_DELIM_MAX];
        if (!parse_delim(s, d)) {
            st = fail(c, v->at, "%s: expected 1..%d characters without quotes or line breaks (\"\\t\" or tab for a tab), got \"%s\"",
                      key, RF_DELIM_MAX - 1, s);
        } else if (kd->type == T_DSTR) {
            put_str(field, kd->size, d);
        } else {
            cfg->data.schema.delim = d[0];
            memset(cfg->data.schema.delim_str, 0, sizeof cfg->data.schema.delim_str);
            if (d[1]) memcpy(cfg->data.schema.delim_str, d, strlen(d));
        }
        break;
    }
    case T_STRLIST: {
        int mx = (int)kd->hi;
        size_t es = (size_t)kd->lo;
        if (n > mx) {
            st = fail(c, v->at, "%s: at most %d items", key, mx);
            break;
        }
        for (int i = 0; i < n && !st; i++)
            if (strlen(items[i]) >= es) st = fail(c, v->at, "%s: item \"%s\" too long (at most %zu bytes)", key, items[i], es - 1);
        if (st) break;
        memset(field, 0, sizeof(int) + (size_t)mx * es);
        memcpy(field, &n, sizeof n);
        for (int i = 0; i < n; i++) memcpy(field + sizeof(int) + (size_t)i * es, items[i], strlen(items[i]));
        break;
    }
    case T_FILL: {
        rf_schema *sc = &cfg->data.schema;
        char *end;
        double x = strtod(s, &end);
        int fl = ieq(s, "error") ? RF_FILL_ERROR : ieq(s, "zero") ? RF_FILL_ZERO : ieq(s, "mean") ? RF_FILL_MEAN : -1;
        if (fl < 0 && (end == s || !only_space(end) || !isfinite(x) || fabs(x) > FMAX)) {
            st = fail(c, v->at, "%s: expected error, zero, mean or a number, got \"%s\"", key, s);
            break;
        }
        sc->fill = fl < 0 ? RF_FILL_VALUE : fl;
        sc->fill_value = fl < 0 ? (float)x : 0.0f;
        break;
    }
    case T_FLOATS: {
        rf_floats fl;
        memset(&fl, 0, sizeof fl);
        if (n > RF_MAX_THRESHOLDS || n == 1) {
            st = fail(c, v->at, "%s: expected 2..%d values (v_0 = the minimum ... v_K = the maximum) or [], got %d", key,
                      RF_MAX_THRESHOLDS, n);
            break;
        }
        for (int i = 0; i < n && !st; i++) {
            if (!parse_num(T_FLOAT, kd, items[i], &fl.v[i], why, sizeof why)) st = fail(c, v->at, "%s: %s", key, why);
            else if (i > 0 && !(fl.v[i] > fl.v[i - 1]))
                st = fail(c, v->at, "%s: values must be strictly ascending (%s after %s)", key, items[i], items[i - 1]);
        }
        if (st) break;
        fl.n = n;
        memcpy(field, &fl, sizeof fl);
        break;
    }
    case T_JOINS:
        st = fail(c, v->at, "%s: expected a list of mappings, e.g. [{file: users.csv, on: user_id}]", key);
        break;
    case T_TASKS:
        st = fail(c, v->at, "%s: expected a list of mappings, e.g. [{name: ctr, label: click}]", key);
        break;
    }
    free(owned);
    return st;
}

static void join_init(rf_join_spec *j)
{
    ctx c = {NULL, "<default>", NULL, NULL, 0, NULL};
    memset(j, 0, sizeof *j);
    for (size_t i = 0; i < N_JOIN_KEYS; i++) {
        val v = {0, 1, 1, {JOIN_KEYS[i].def}, {0, 0}};
        (void)set_value(&c, j, &JOIN_KEYS[i], JOIN_KEYS[i].name, &v);
    }
}

/* "data.join.<index>.<field>" -> index (any digits), field. */
static int split_join_key(const char *key, long *idx, const char **field)
{
    if (strncmp(key, "data.join.", 10) != 0) return 0;
    const char *s = key + 10, *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1]) return 0;
    for (const char *q = s; q < dot; q++)
        if (*q < '0' || *q > '9') return 0;
    *idx = dot - s > 6 ? LONG_MAX : strtol(s, NULL, 10);
    *field = dot + 1;
    return 1;
}

static void task_init(rf_task_cfg *t)
{
    ctx c = {NULL, "<default>", NULL, NULL, 0, NULL};
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < N_TASK_KEYS; i++) {
        val v = {0, 1, 1, {TASK_KEYS[i].def}, {0, 0}};
        (void)set_value(&c, t, &TASK_KEYS[i], TASK_KEYS[i].name, &v);
    }
}

/* Derived state: empty labels default to the task name; the schema mirrors the labels. */
static void finalize(rf_config *cfg)
{
    int K = clamp_k(cfg->K);
    for (int k = 0; k < K; k++)
        if (!cfg->tasks[k].label[0]) put_str(cfg->tasks[k].label, sizeof cfg->tasks[k].label, cfg->tasks[k].name);
    memset(cfg->data.schema.label, 0, sizeof cfg->data.schema.label);
    for (int k = 0; k < K; k++) memcpy(cfg->data.schema.label[k], cfg->tasks[k].label, sizeof cfg->tasks[k].label);
    cfg->data.schema.K = K;
}

/* Length of key's section ("model" of "model.type"). */
static size_t section_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

static rf_status unknown_key(const ctx *c, const char *key, loc at)
{
    char sug[KEY_MAX + 64] = "";
    int best = INT_MAX;
    const char *field;
    char sel[KEY_MAX];
    long ji;
    if (split_join_key(key, &ji, &field)) { /* data.join.N.<field> */
        for (size_t i = 0; i < N_JOIN_KEYS; i++) {
            int d = edit_distance(field, JOIN_KEYS[i].name);
            if (d < best) {
                best = d;
                snprintf(sug, sizeof sug, "data.join.%ld.%s", ji, JOIN_KEYS[i].name);
            }
        }
        if (!close_enough(best, strlen(field))) sug[0] = 0;
    } else if (split_task_key(key, sel, sizeof sel, &field)) { /* tasks.N.<field>: compare the field */
        for (size_t i = 0; i < N_TASK_KEYS; i++) {
            int d = edit_distance(field, TASK_KEYS[i].name);
            if (d < best) {
                best = d;
                snprintf(sug, sizeof sug, "tasks.%s.%s", sel, TASK_KEYS[i].name);
            }
        }
        if (!close_enough(best, strlen(field))) sug[0] = 0;
    } else {
        for (size_t i = 0; i < N_KEYS; i++) {
            char sec[KEY_MAX];
            size_t sl = section_len(KEYS[i].name);
            snprintf(sec, sizeof sec, "%.*s", (int)sl, KEYS[i].name);
            int d = edit_distance(key, KEYS[i].name), ds = edit_distance(key, sec);
            if (d < best) { best = d; snprintf(sug, sizeof sug, "%s", KEYS[i].name); }
            if (ds < best && !strchr(key, '.')) { best = ds; snprintf(sug, sizeof sug, "%s", sec); }
        }
        if (!close_enough(best, strlen(key))) sug[0] = 0;
        const char *leaf = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
        for (size_t i = 0; i < N_KEYS && best > 1; i++) /* better: a key that is a prefix of */
            if (!strncmp(KEYS[i].name, key, strlen(key)) || /* it or has it as a prefix, or */
                !strncmp(KEYS[i].name, key, strlen(KEYS[i].name)) || /* its leaf elsewhere */
                (strchr(KEYS[i].name, '.') && !strcmp(leaf, strchr(KEYS[i].name, '.') + 1))) {
                snprintf(sug, sizeof sug, "%s", KEYS[i].name);
                break;
            }
    }
    if (sug[0]) return fail(c, at, "unknown key \"%s\" (did you mean \"%s\"?)", key, sug);
    return fail(c, at, "unknown key \"%s\"", key);
}

/* Is key a section that holds keys ("model", "tasks", "tasks.<sel>")? */
static int is_section(const char *key)
{
    size_t n = strlen(key);
    if (!strcmp(key, "tasks")) return 1;
    if (!strncmp(key, "tasks.", 6)) return key[6] && !strchr(key + 6, '.');
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strncmp(KEYS[i].name, key, n) && KEYS[i].name[n] == '.') return 1;
    return 0;
}

/* Assign v to dotted key (tasks.<index|name>.<field> included; index K appends a task). */
static rf_status assign(const ctx *c, const char *key, const val *v, loc at)
{
    rf_config *cfg = c->cfg;
    char sel[KEY_MAX];
    const char *field;
    long ji;
    if (split_join_key(key, &ji, &field)) {
        rf_schema *sc = &cfg->data.schema;
        const key_def *jk = find_in(JOIN_KEYS, N_JOIN_KEYS, field);
        if (!jk) return unknown_key(c, key, at);
        if (ji > sc->njoin || ji >= RF_MAX_JOINS)
            return fail(c, at, "%s: join index out of range (%d side tables; index %d appends, at most %d)", key,
                        sc->njoin, sc->njoin, RF_MAX_JOINS);
        if (ji == sc->njoin) join_init(&sc->join[sc->njoin++]);
        return set_value(c, &sc->join[ji], jk, key, v);
    }
    if (split_task_key(key, sel, sizeof sel, &field)) {
        const key_def *tk = find_in(TASK_KEYS, N_TASK_KEYS, field);
        int k;
        if (!tk) return unknown_key(c, key, at);
        if (all_digits(sel)) {
            long x = strlen(sel) > 6 ? LONG_MAX : strtol(sel, NULL, 10);
            if (x > cfg->K || x >= RF_MAX_TASKS)
                return fail(c, at, "%s: task index %s out of range (%d tasks; index %d appends, at most %d tasks)",
                            key, sel, cfg->K, cfg->K, RF_MAX_TASKS);
            k = (int)x;
            if (k == cfg->K) task_init(&cfg->tasks[cfg->K++]);
        } else if ((k = rf_config_task_index(cfg, sel)) < 0) {
            char names[RF_MAX_TASKS * (RF_NAME_MAX + 2)] = "";
            for (int i = 0; i < clamp_k(cfg->K); i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", cfg->tasks[i].name);
            return fail(c, at, "%s: no task named \"%s\" (tasks: %s)", key, sel, names);
        }
        return set_value(c, &cfg->tasks[k], tk, key, v);
    }
    const key_def *kd = find_in(KEYS, N_KEYS, key);
    if (kd && c->reg_at && !c->reg_at->line && !strncmp(key, "regression.", 11) && strcmp(key, "regression.target"))
        *c->reg_at = at;
    if (!kd) {
        if (strcmp(key, "tasks") && is_section(key)) {
            const char *eg = "name";
            for (size_t i = 0; i < N_KEYS && strncmp(key, "tasks.", 6); i++)
                if (section_len(KEYS[i].name) == strlen(key) && !strncmp(KEYS[i].name, key, strlen(key))) {
                    eg = KEYS[i].name + strlen(key) + 1;
                    break;
                }
            return fail(c, at, "\"%s\" is a section, not a key (e.g. \"%s.%s\")", key, key, eg);
        }
        return unknown_key(c, key, at);
    }
    return set_value(c, cfg, kd, key, v);
}

/* ---- YAML tree walk ---------------------------------------------------------------- */

static rf_status apply_node(const ctx *c, const char *key, yaml_node_t *node, loc kat);

static rf_status walk_map(const ctx *c, const char *prefix, yaml_node_t *map)
{
    yaml_node_pair_t *p0 = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = p0; p < top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        char full[KEY_MAX];
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return fail(c, mark_loc(k ? k->start_mark : map->start_mark), "mapping keys must be names");
        const char *ks = (const char *)k->data.scalar.value;
        if ((size_t)snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", ks) >= sizeof full)
            return fail(c, mark_loc(k->start_mark), "key too long");
        for (yaml_node_pair_t *q = p0; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(c->doc, q->key);
            if (kq && kq->type == YAML_SCALAR_NODE && !strcmp((const char *)kq->data.scalar.value, ks))
                return fail(c, mark_loc(k->start_mark), "duplicate key \"%s\" (first at line %lu)", full,
                            (unsigned long)kq->start_mark.line + 1);
        }
        rf_status st = apply_node(c, full, v, mark_loc(k->start_mark));
        if (st) return st;
    }
    return RF_OK;
}

/* `data.join:` as a sequence of mappings: replaces the side-table list. */
static rf_status replace_joins(const ctx *c, yaml_node_t *seq)
{
    rf_schema *sc = &c->cfg->data.schema;
    memset(sc->join, 0, sizeof sc->join);
    sc->njoin = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *t = yaml_document_get_node(c->doc, *it);
        char prefix[32];
        if (!t || t->type != YAML_MAPPING_NODE)
            return fail(c, mark_loc(t ? t->start_mark : seq->start_mark),
                        "data.join: each entry must be a mapping like {file: users.csv, on: user_id}");
        if (sc->njoin >= RF_MAX_JOINS)
            return fail(c, mark_loc(t->start_mark), "data.join: at most %d side tables", RF_MAX_JOINS);
        join_init(&sc->join[sc->njoin]);
        snprintf(prefix, sizeof prefix, "data.join.%d", sc->njoin++);
        rf_status st = walk_map(c, prefix, t);
        if (st) return st;
    }
    return RF_OK;
}

/* `tasks:` as a sequence of mappings: replaces the task list. */
static rf_status replace_tasks(const ctx *c, yaml_node_t *seq)
{
    rf_config *cfg = c->cfg;
    memset(cfg->tasks, 0, sizeof cfg->tasks);
    cfg->K = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *t = yaml_document_get_node(c->doc, *it);
        char prefix[32];
        if (!t || t->type != YAML_MAPPING_NODE)
            return fail(c, mark_loc(t ? t->start_mark : seq->start_mark),
                        "tasks: each entry must be a mapping like {name: ctr, label: click}");
        if (cfg->K >= RF_MAX_TASKS) return fail(c, mark_loc(t->start_mark), "tasks: at most %d tasks", RF_MAX_TASKS);
        task_init(&cfg->tasks[cfg->K]);
        snprintf(prefix, sizeof prefix, "tasks.%d", cfg->K++);
        rf_status st = walk_map(c, prefix, t);
        if (st) return st;
    }
    return RF_OK;
}

static rf_status apply_node(const ctx *c, const char *key, yaml_node_t *node, loc kat)
{
    char sel[KEY_MAX];
    const char *field;
    if (node->type == YAML_MAPPING_NODE) {
        const key_def *kd = find_in(KEYS, N_KEYS, key);
        if (!kd && split_task_key(key, sel, sizeof sel, &field)) kd = find_in(TASK_KEYS, N_TASK_KEYS, field);
        if (kd && kd->type != T_TASKS)
            return fail(c, mark_loc(node->start_mark), "%s: expected %s, got a mapping", key, type_name(kd));
        if (!is_section(key)) return unknown_key(c, key, kat);
        return walk_map(c, key, node);
    }
    if (node->type == YAML_SEQUENCE_NODE && !strcmp(key, "tasks")) return replace_tasks(c, node);
    if (node->type == YAML_SEQUENCE_NODE && !strcmp(key, "data.join")) return replace_joins(c, node);
    val v;
    memset(&v, 0, sizeof v);
    v.at = mark_loc(node->start_mark);
    if (node->type == YAML_SCALAR_NODE) {
        v.plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        v.n = 1;
        v.item[0] = (const char *)node->data.scalar.value;
    } else {
        v.seq = 1;
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            yaml_node_t *x = yaml_document_get_node(c->doc, *it);
            if (!x || x->type != YAML_SCALAR_NODE)
                return fail(c, mark_loc(x ? x->start_mark : node->start_mark), "%s: list items must be scalars", key);
            if (v.n == MAX_ITEMS) return fail(c, v.at, "%s: too many items (at most %d)", key, MAX_ITEMS);
            v.item[v.n++] = (const char *)x->data.scalar.value;
        }
    }
    return assign(c, key, &v, kat);
}

static rf_status yaml_fail(const ctx *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) return rf_errorf(c->err, RF_ENOMEM, "out of memory parsing YAML");
    if (p->error == YAML_READER_ERROR)
        return rf_error_at(c->err, RF_EUSAGE, c->file, 0, 0, "invalid YAML: %s (at byte %lu)",
                           p->problem ? p->problem : "?", (unsigned long)p->problem_offset);
    loc at = mark_loc(p->problem_mark);
    return fail(c, at, "invalid YAML: %s%s%s", p->problem ? p->problem : "syntax error",
                p->context ? " " : "", p->context ? p->context : "");
}

/* Parse text as one YAML document and call fn on its root (NULL root = empty document). */
static rf_status with_yaml(ctx *c, const char *text, size_t len,
                           rf_status (*fn)(const ctx *, yaml_node_t *, const char *), const char *arg)
{
    yaml_parser_t p;
    yaml_document_t doc, doc2;
    rf_status st = RF_OK;
    if (!yaml_parser_initialize(&p)) return rf_errorf(c->err, RF_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        st = yaml_fail(c, &p);
    } else {
        c->doc = &doc;
        st = fn(c, yaml_document_get_root_node(&doc), arg);
        if (!st && yaml_document_get_root_node(&doc)) {
            if (!yaml_parser_load(&p, &doc2)) st = yaml_fail(c, &p);
            else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
                if (r2) st = fail(c, mark_loc(r2->start_mark), "only one YAML document is supported");
                yaml_document_delete(&doc2);
            }
        }
        c->doc = NULL;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return st;
}

static rf_status apply_root(const ctx *c, yaml_node_t *root, const char *unused)
{
    (void)unused;
    if (!root) return RF_OK;
    if (root->type == YAML_MAPPING_NODE) return walk_map(c, "", root);
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (!root->data.scalar.length || !strcmp((const char *)root->data.scalar.value, "~") ||
         ieq((const char *)root->data.scalar.value, "null")))
        return RF_OK;
    return fail(c, mark_loc(root->start_mark), "expected a mapping of keys at the top level");
}

static rf_status apply_set_value(const ctx *c, yaml_node_t *root, const char *key)
{
    if (root) return apply_node(c, key, root, mark_loc(root->start_mark));
    val v = {0, 1, 0, {NULL}, {0, 0}};
    return assign(c, key, &v, v.at);
}

/* ---- public API ------------------------------------------------------------------- */

void rf_config_default(rf_config *cfg)
{
    ctx c = {cfg, "<default>", NULL, NULL, 0, NULL};
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (KEYS[i].type == T_TASKS || KEYS[i].type == T_JOINS) continue;
        val v = {0, 1, 1, {KEYS[i].def}, {0, 0}};
        (void)set_value(&c, cfg, &KEYS[i], KEYS[i].name, &v); /* defaults are valid (tested) */
    }
    cfg->K = (int)(sizeof DEFAULT_TASKS / sizeof DEFAULT_TASKS[0]);
    for (int k = 0; k < cfg->K; k++) {
        rf_task_cfg *t = &cfg->tasks[k];
        task_init(t);
        put_str(t->name, sizeof t->name, DEFAULT_TASKS[k].name);
        put_str(t->label, sizeof t->label, DEFAULT_TASKS[k].label);
        put_str(t->parent, sizeof t->parent, DEFAULT_TASKS[k].parent);
    }
    finalize(cfg);
}

rf_status rf_config_load_string(rf_config *cfg, const char *text, size_t len, const char *name, rf_error *err)
{
    rf_config *work = malloc(sizeof *work);
    if (!work) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(work, cfg, sizeof *work);
    loc reg_at = {0, 0};
    ctx c = {work, name ? name : "<string>", err, NULL, 1, &reg_at};
    rf_status st = with_yaml(&c, text ? text : "", text ? len : 0, apply_root, NULL);
    const rf_regression_cfg *rg = &work->regression;
    if (!st && reg_at.line && !rg->target[0] && (rg->thresholds.n || rg->quantiles || rg->head != RF_REG_PROGRESSIVE))
        st = fail(&c, reg_at, "regression: regression.target is not set (the numeric column to predict)");
    if (!st) {
        finalize(work);
        memcpy(cfg, work, sizeof *cfg);
    }
    free(work);
    return st;
}

rf_status rf_config_load_file(rf_config *cfg, const char *path, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (!f) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    for (;;) {
        if (len == cap) {
            char *q = realloc(text, cap = cap ? cap * 2 : 16384);
            if (!q) {
                free(text);
                fclose(f);
                return rf_errorf(err, RF_ENOMEM, "out of memory reading %s", path);
            }
            text = q;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return rf_error_at(err, RF_EIO, path, 0, 0, "read error");
    }
    rf_status st = rf_config_load_string(cfg, text, len, path, err);
    free(text);
    return st;
}

rf_status rf_config_set(rf_config *cfg, const char *assignment, rf_error *err)
{
    const char *a = assignment ? assignment : "";
    const char *eq = strchr(a, '=');
    char key[KEY_MAX];
    if (!eq) return rf_error_at(err, RF_EUSAGE, "--set", 0, 0, "\"%s\": expected key=value", a);
    const char *k0 = a, *k1 = eq;
    while (k0 < k1 && isspace((unsigned char)*k0)) k0++;
    while (k1 > k0 && isspace((unsigned char)k1[-1])) k1--;
    if (k1 == k0 || (size_t)(k1 - k0) >= sizeof key)
        return rf_error_at(err, RF_EUSAGE, "--set", 0, 0, "\"%s\": bad key", a);
    memcpy(key, k0, (size_t)(k1 - k0));
    key[k1 - k0] = 0;

    const char *v0 = eq + 1;
    while (isspace((unsigned char)*v0)) v0++;
    size_t vlen = strlen(v0);
    while (vlen && isspace((unsigned char)v0[vlen - 1])) vlen--;
    char *value = malloc(vlen + 1);
    rf_config *work = malloc(sizeof *work);
    rf_status st;
    if (!value || !work) {
        free(value);
        free(work);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    memcpy(value, v0, vlen);
    value[vlen] = 0;
    memcpy(work, cfg, sizeof *work);
    ctx c = {work, "--set", err, NULL, 0, NULL};
    if (value[0] && strchr("[{\"'", value[0])) { /* YAML flow sequence/mapping or quoted scalar */
        st = with_yaml(&c, value, vlen, apply_set_value, key);
    } else { /* anything else is taken literally ("128,64", "genres:|:mean", "|") */
        val v = {0, 1, 1, {value}, {0, 0}};
        st = assign(&c, key, &v, v.at);
    }
    if (st) {
        if (err) {
            char msg[sizeof err->msg + 512];
            snprintf(msg, sizeof msg, "\"%.500s\": %s", a, err->msg);
            rf_error_at(err, st, "--set", 0, 0, "%s", msg);
        }
    } else {
        finalize(work);
        memcpy(cfg, work, sizeof *cfg);
    }
    free(value);
    free(work);
    return st;
}

int rf_config_task_index(const rf_config *cfg, const char *name)
{
    if (!cfg || !name) return -1;
    for (int k = 0; k < clamp_k(cfg->K); k++)
        if (!strcmp(cfg->tasks[k].name, name)) return k;
    return -1;
}

rf_status rf_config_validate(const rf_config *cfg, rf_error *err)
{
#define BAD(...) return rf_errorf(err, RF_EUSAGE, __VA_ARGS__)
    char why[128], tmp[64];
    const rf_schema *sc = &cfg->data.schema;
    /* per-key ranges (also catch structs filled by code rather than by the loader) */
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *kd = &KEYS[i];
        if (is_numeric(kd) && !in_range(kd, get_num(cfg, kd), why, sizeof why))
            BAD("%s: %.10g is out of range (%s)", kd->name, get_num(cfg, kd), why);
        if (kd->type == T_ENUM && !*enum_name(kd->choices, (int)get_num(cfg, kd), tmp, sizeof tmp))
            BAD("%s: invalid value %d (allowed: %s)", kd->name, (int)get_num(cfg, kd), kd->choices);
    }
    const key_def *hk = find_in(KEYS, N_KEYS, "model.hidden");
    if (cfg->model.n_hidden < 1 || cfg->model.n_hidden > RF_MAX_LAYERS)
        BAD("model.hidden: %d layers (must be 1..%d)", cfg->model.n_hidden, RF_MAX_LAYERS);
    for (int l = 0; l < cfg->model.n_hidden; l++)
        if (!in_range(hk, cfg->model.hidden[l], why, sizeof why))
            BAD("model.hidden: width %d of layer %d is out of range (%s)", cfg->model.hidden[l], l, why);
    if (cfg->model.res_layers != RES_ALL && cfg->model.res_layers >> cfg->model.n_hidden)
        BAD("model.res_layers: lists a layer >= %d but model.hidden has %d layers", cfg->model.n_hidden,
            cfg->model.n_hidden);
    float vf = cfg->data.valid[0] ? 0 : cfg->data.valid_frac, tf = cfg->data.test[0] ? 0 : cfg->data.test_frac;
    if (!(vf + tf < 1)) BAD("data.valid_frac + data.test_frac must be < 1 (got %g + %g)", vf, tf);
    if (sc->F < 0 || sc->F > 64 || sc->D < 0 || sc->D > 128) BAD("data: bad column counts F=%d D=%d", sc->F, sc->D);
    for (int i = 0; i < sc->F + sc->D; i++) {
        const char *ni = i < sc->F ? sc->cat[i].name : sc->dense[i - sc->F];
        if (!ni[0]) BAD("data: empty column name");
        for (int j = 0; j < i; j++) /* a bucketized column may also be a dense feature */
            if (!strcmp(ni, j < sc->F ? sc->cat[j].name : sc->dense[j - sc->F]) &&
                !(i >= sc->F && j < sc->F && sc->cat[j].bucket))
                BAD("data: column \"%s\" is listed twice in data.categorical/data.dense", ni);
    }
    if (!sc->delim || sc->delim == '\n' || sc->delim == '\r' || sc->delim == '"') BAD("data.delim: invalid delimiter");
    if (sc->F > 0 || sc->D > 0) { /* categorical options and numeric columns */
        for (int f = 0; f < sc->F; f++)
            if (sc->cat[f].bucket && (sc->cat[f].multi || sc->cat[f].hash))
                BAD("data.categorical: \"%s\": a bucketized column cannot be multi-valued or hashed", sc->cat[f].name);
    }
    if (sc->no_header && sc->ncols < 1) BAD("data.header is false: list the column names in data.columns");
    for (int j = 0; j < sc->njoin && j < RF_MAX_JOINS; j++) {
        const rf_join_spec *js = &sc->join[j];
        if (!js->path[0]) BAD("data.join.%d.file is empty", j);
        if (!js->on[0]) BAD("data.join.%d.on is empty (the main file's key column)", j);
        if (js->no_header && js->ncols < 1) BAD("data.join.%d.header is false: list its column names in data.join.%d.columns", j, j);
    }
    if (sc->njoin < 0 || sc->njoin > RF_MAX_JOINS) BAD("data.join: %d side tables (at most %d)", sc->njoin, RF_MAX_JOINS);
    for (int i = 0; i < sc->nfilter && i < RF_MAX_FILTERS; i++)
        if (!strpbrk(sc->filter[i], "<>=!"))
            BAD("data.filter: \"%s\": expected column OP value (OP: >= > <= < == !=)", sc->filter[i]);
    for (int i = 0; i < sc->nnumeric && i < RF_MAX_LABELS; i++) {
        const char *colon = strchr(sc->numeric[i], ':');
        if (colon) {
            char *end;
            double lo = strtod(colon + 1, &end), hi = *end == ':' ? strtod(end + 1, &end) : 0;
            if (*end || !(hi > lo) || !isfinite(lo) || !isfinite(hi))
                BAD("data.numeric_labels: \"%s\": expected name or name:lo:hi with lo < hi", sc->numeric[i]);
        }
    }

    /* tasks */
    if (cfg->K < 1 || cfg->K > RF_MAX_TASKS) BAD("tasks: %d tasks (must be 1..%d)", cfg->K, RF_MAX_TASKS);
    for (int k = 0; k < cfg->K; k++) {
        const rf_task_cfg *t = &cfg->tasks[k];
        if (!t->name[0]) BAD("tasks.%d.name is empty", k);
        if (all_digits(t->name) || strchr(t->name, '.'))
            BAD("tasks.%d.name \"%s\": a task name must not be a number or contain '.'", k, t->name);
        if (!t->label[0]) BAD("tasks.%d.label is empty", k);
        if (rf_config_task_index(cfg, t->name) != k) BAD("tasks: duplicate task name \"%s\"", t->name);
        for (size_t i = 0; i < N_TASK_KEYS; i++)
            if (is_numeric(&TASK_KEYS[i]) && !in_range(&TASK_KEYS[i], get_num(t, &TASK_KEYS[i]), why, sizeof why))
                BAD("tasks.%s.%s: %g is out of range (%s)", t->name, TASK_KEYS[i].name, get_num(t, &TASK_KEYS[i]), why);
        if (t->parent[0] && !strcmp(t->parent, t->name)) BAD("tasks.%s.parent: a task cannot be its own parent", t->name);
        if (t->parent[0] && rf_config_task_index(cfg, t->parent) < 0)
            BAD("tasks.%s.parent: no task named \"%s\"", t->name, t->parent);
    }
    for (int k = 0; k < cfg->K; k++) { /* follow parents; a repeat is a cycle */
        int path[RF_MAX_TASKS + 1], n = 0;
        for (int j = k; j >= 0; j = cfg->tasks[j].parent[0] ? rf_config_task_index(cfg, cfg->tasks[j].parent) : -1) {
            for (int m = 0; m < n; m++) {
                if (path[m] != j) continue;
                char cyc[RF_MAX_TASKS * (RF_NAME_MAX + 4) + RF_NAME_MAX] = "";
                for (int q = m; q < n; q++)
                    snprintf(cyc + strlen(cyc), sizeof cyc - strlen(cyc), "%s -> ", cfg->tasks[path[q]].name);
                snprintf(cyc + strlen(cyc), sizeof cyc - strlen(cyc), "%s", cfg->tasks[j].name);
                BAD("tasks: parent cycle %s (a -> b: b is the parent of a)", cyc);
            }
            path[n++] = j;
        }
    }
    for (int k = 0; k < cfg->K; k++) { /* the squared-error head: a linear output of its own tower */
        const rf_task_cfg *t = &cfg->tasks[k];
        if (t->loss != RF_LOSS_MSE) continue;
        if (cfg->model.type != RF_MODEL_RESFLOW && cfg->model.type != RF_MODEL_NSE)
            BAD("tasks.%s.loss: mse is implemented for model.type resflow and nse", t->name);
        if (t->parent[0]) BAD("tasks.%s.loss: an mse task cannot have a parent", t->name);
        for (int j = 0; j < cfg->K; j++)
            if (!strcmp(cfg->tasks[j].parent, t->name)) BAD("tasks.%s.loss: an mse task cannot be a parent (of %s)", t->name, cfg->tasks[j].name);
    }
    const rf_regression_cfg *rg = &cfg->regression;
    if (!rg->target[0] && (rg->thresholds.n || rg->quantiles || rg->head != RF_REG_PROGRESSIVE))
        BAD("regression: regression.target is not set (the numeric column to predict)");
    if (rg->target[0]) {
        if (strlen(rg->target) + 20 > RF_NAME_MAX)
            BAD("regression.target: \"%s\" is too long (at most %d bytes)", rg->target, RF_NAME_MAX - 21);
        if (strpbrk(rg->target, "<>=!*:"))
            BAD("regression.target: \"%s\": a column name, not an expression", rg->target);
        if (rg->thresholds.n == 1 || rg->thresholds.n > RF_MAX_THRESHOLDS)
            BAD("regression.thresholds: %d values (want 2..%d)", rg->thresholds.n, RF_MAX_THRESHOLDS);
        for (int i = 1; i < rg->thresholds.n; i++)
            if (!(rg->thresholds.v[i] > rg->thresholds.v[i - 1])) BAD("regression.thresholds: values must be strictly ascending");
        if (!rg->thresholds.n && rg->quantiles < 1)
            BAD("regression.target is set: list regression.thresholds (v_0..v_K) or set regression.quantiles (K)");
    }
    const char *mon = cfg->train.monitor;
    if (!strcmp(mon, "mse") && !rg->target[0]) BAD("train.monitor: mse needs a regression target (regression.target)");
    if (strcmp(mon, "mean_auc") && strcmp(mon, "loss") && strcmp(mon, "mse")) {
        if (strncmp(mon, "auc:", 4)) BAD("train.monitor: \"%s\": expected mean_auc, loss or auc:<task> (or mse with a regression target)", mon);
        if (rf_config_task_index(cfg, mon + 4) < 0) BAD("train.monitor: \"%s\": no task named \"%s\"", mon, mon + 4);
    }
    return RF_OK;
#undef BAD
}

char *rf_config_dump(const rf_config *cfg)
{
    sbuf b = {NULL, 0, 0, 0};
    size_t prev = 0;
    const char *sec = "";
    sb_puts(&b, "# resflow resolved configuration\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *kd = &KEYS[i];
        size_t sl = section_len(kd->name);
        if (kd->type == T_TASKS) {
            int K = clamp_k(cfg->K);
            sb_puts(&b, K ? "tasks:\n" : "tasks: []\n");
            for (int k = 0; k < K; k++) {
                sb_puts(&b, "  - ");
                fmt_task(&b, &cfg->tasks[k]);
                sb_puts(&b, "\n");
            }
            sec = "";
            continue;
        }
        if (sl != prev || strncmp(sec, kd->name, sl)) sb_printf(&b, "%.*s:\n", (int)sl, kd->name);
        sec = kd->name;
        prev = sl;
        sb_printf(&b, "  %s: ", kd->name + sl + 1);
        fmt_value(&b, cfg, kd);
        sb_puts(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *rf_config_describe(void)
{
    rf_config *d = malloc(sizeof *d);
    rf_task_cfg t;
    sbuf b = {NULL, 0, 0, 0};
    if (!d) return NULL;
    rf_config_default(d);
    task_init(&t);
    for (size_t i = 0; i < N_KEYS; i++) {
        sbuf v = {NULL, 0, 0, 0};
        fmt_value(&v, d, &KEYS[i]);
        sb_printf(&b, "%-22s %-18s %-14s ", KEYS[i].name, type_name(&KEYS[i]), v.p ? v.p : "");
        sb_puts(&b, KEYS[i].help);
        sb_puts(&b, "\n");
        b.oom |= v.oom;
        free(v.p);
        if (KEYS[i].type == T_JOINS) {
            rf_join_spec js;
            join_init(&js);
            for (size_t j = 0; j < N_JOIN_KEYS; j++) {
                char name[64];
                sbuf jv = {NULL, 0, 0, 0};
                fmt_value(&jv, &js, &JOIN_KEYS[j]);
                snprintf(name, sizeof name, "data.join.N.%s", JOIN_KEYS[j].name);
                sb_printf(&b, "%-22s %-18s %-14s ", name, type_name(&JOIN_KEYS[j]), jv.p ? jv.p : "");
                sb_puts(&b, JOIN_KEYS[j].help);
                sb_puts(&b, "\n");
                b.oom |= jv.oom;
                free(jv.p);
            }
        }
        if (KEYS[i].type != T_TASKS) continue;
        for (size_t j = 0; j < N_TASK_KEYS; j++) {
            char name[64];
            sbuf tv = {NULL, 0, 0, 0};
            fmt_value(&tv, &t, &TASK_KEYS[j]);
            snprintf(name, sizeof name, "tasks.N.%s", TASK_KEYS[j].name);
            sb_printf(&b, "%-22s %-18s %-14s ", name, type_name(&TASK_KEYS[j]), tv.p ? tv.p : "");
            sb_puts(&b, TASK_KEYS[j].help);
            sb_puts(&b, "\n");
            b.oom |= tv.oom;
            free(tv.p);
        }
    }
    free(d);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
