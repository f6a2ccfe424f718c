/* config_int.h - what the files of the configuration share (private to src/run/config_*.c):
 *
 *   config_keys.c      the key tables (every key once: name, type, field, default, range,
 *                      help), the defaults, task and side-table initialisation
 *   config_value.c     one value (text or list) parsed, range-checked and stored in its field
 *   config_set.c       a dotted key routed to its table and field; `--set key=value`
 *   config_yaml.c      YAML files and values: the tree walk, nested mappings as dotted keys
 *   config_suggest.c   unknown keys: "did you mean"
 *   config_validate.c  rf_config_validate
 *   config_dump.c      rf_config_dump and rf_config_describe
 *
 * Contract in include/resflow/config.h; every key is documented in docs/config.md.
 */
#ifndef RESFLOW_RUN_CONFIG_INT_H
#define RESFLOW_RUN_CONFIG_INT_H

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "resflow/config.h"
#include "core/sbuf.h"

typedef enum {
    T_INT, T_U32, T_U64, T_SIZE, T_FLOAT, T_BOOL, T_STR, T_ENUM, /* scalars */
    T_HIDDEN, T_WIDTHS, T_RESLAYERS, T_CATS, T_DENSE, T_DELIM, T_TASKS, /* special */
    T_STRLIST, T_FILL, T_JOINS, T_DSTR, /* data pipeline: string list, fill-NA, side tables, delimiter string */
    T_FLOATS /* rf_floats: strictly ascending numbers (regression.thresholds) */
} ktype;

/* LO_OPEN, HI_OPEN: range bounds excluded; NEG: bool stored inverted. QUIET0 and TWIN say when
 * rf_config_dump leaves a key out (config_dump.c, dumped()): QUIET0 an int (enum) at 0 or an
 * empty string, TWIN a key of the twin model in the config of another model type. Keys added
 * later carry one, so that earlier configs' dumps, and model files, stay unchanged. */
enum { LO_OPEN = 1, HI_OPEN = 2, NEG = 4, QUIET0 = 8, TWIN = 16 };

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

/* ---- small helpers ------------------------------------------------------------------- */

static inline int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static inline int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Copy s into a size-byte field, zero-filling the rest (keeps structs comparable). */
static inline void put_str(char *dst, size_t size, const char *s)
{
    memset(dst, 0, size);
    memcpy(dst, s, strlen(s));
}

/* Name i of "a|b|c" into buf ("" if out of range). */
static inline const char *enum_name(const char *choices, int i, char *buf, size_t n)
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

static inline const key_def *find_in(const key_def *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

static inline int clamp_k(int K) { return K < 0 ? 0 : K > RF_MAX_TASKS ? RF_MAX_TASKS : K; }

/* "tasks.<sel>.<field>" -> sel, field (both non-empty). */
static inline int split_task_key(const char *key, char *sel, size_t seln, const char **field)
{
    if (strncmp(key, "tasks.", 6) != 0) return 0;
    const char *s = key + 6, *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1] || (size_t)(dot - s) >= seln) return 0;
    memcpy(sel, s, (size_t)(dot - s));
    sel[dot - s] = 0;
    *field = dot + 1;
    return 1;
}

/* Length of key's section ("model" of "model.type"). */
static inline size_t section_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

#define INF HUGE_VAL
#define FMAX ((double)FLT_MAX)
#define RES_ALL ((1u << RF_MAX_LAYERS) - 1u) /* model.res_layers: all */

#define KEY_MAX 256   /* longest dotted key */
#define MAX_ITEMS 256 /* longest list value */

/* The key tables (config_keys.c), by their short names. */
extern const key_def rf_cfg_keys_[], rf_cfg_task_keys_[], rf_cfg_join_keys_[];
extern const size_t rf_cfg_n_keys_, rf_cfg_n_task_keys_, rf_cfg_n_join_keys_;
#define KEYS rf_cfg_keys_
#define TASK_KEYS rf_cfg_task_keys_
#define JOIN_KEYS rf_cfg_join_keys_
#define N_KEYS rf_cfg_n_keys_
#define N_TASK_KEYS rf_cfg_n_task_keys_
#define N_JOIN_KEYS rf_cfg_n_join_keys_

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

/* An RF_EUSAGE error at `at` of c's file (line:column only when c->marks) (config_value.c). */
rf_status rf_cfg_fail_(const ctx *c, loc at, const char *fmt, ...) RF_PRINTF(3, 4);

/* config_keys.c: a task or side table at its defaults; derived state (labels, schema). */
void rf_cfg_task_init_(rf_task_cfg *t);
void rf_cfg_join_init_(rf_join_spec *j);
void rf_cfg_finalize_(rf_config *cfg);

/* config_value.c: store v in kd's field of base (rf_config, rf_task_cfg or rf_join_spec);
 * a numeric key's value as a double, whether it is numeric, whether x is in its range. */
rf_status rf_cfg_set_value_(const ctx *c, void *base, const key_def *kd, const char *key, const val *v);
double rf_cfg_get_num_(const void *base, const key_def *kd);
int rf_cfg_is_numeric_(const key_def *kd);
int rf_cfg_in_range_(const key_def *kd, double x, char *why, size_t wn);

/* config_set.c: assign v to a dotted key; "data.join.<i>.<field>"; is key a section. */
rf_status rf_cfg_assign_(const ctx *c, const char *key, const val *v, loc at);
int rf_cfg_split_join_key_(const char *key, long *idx, const char **field);
int rf_cfg_is_section_(const char *key);

/* config_yaml.c: parse text as one YAML document and call fn on its root; fn for a --set
 * value given as YAML flow text. */
rf_status rf_cfg_with_yaml_(ctx *c, const char *text, size_t len,
                            rf_status (*fn)(const ctx *, yaml_node_t *, const char *), const char *arg);
rf_status rf_cfg_apply_set_value_(const ctx *c, yaml_node_t *root, const char *key);

/* config_suggest.c: the error for an unknown key, with a suggestion when one is close. */
rf_status rf_cfg_unknown_key_(const ctx *c, const char *key, loc at);

/* config_dump.c: a key's type as describe shows it ("int", "float in [0, 1]", ...). */
const char *rf_cfg_type_name_(const key_def *kd);

#endif
