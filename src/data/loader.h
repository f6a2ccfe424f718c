/* loader.h - declarations shared by the files of the text loader (rf_load_csv): csv.c (the
 * orchestration: plan, pieces, rounds, the dataset), rows.c (a piece's rows into columns),
 * plan.c (schema columns -> extended columns, encoders), fit.c (fitting after the last row),
 * expr.c (label and filter expressions), join.c (side tables), columns.c (output columns and
 * spill files), tokenize.c and textin.c. Internal to src/data/; not part of the API. */
#ifndef RESFLOW_DATA_LOADER_H
#define RESFLOW_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataint.h"
#include "data/textin.h"
#include "data/tokenize.h"

/* Side-table and scratch texts keep this many readable bytes after their ends. */
#define TEXT_PAD 16
#define RF_BAD_SHOW 5 /* skipped rows shown by line (--skip-bad-rows) */

/* The dense transform, identical at fitting and at encoding time. */
static inline float dense_apply(float raw, const rf_dense_enc *e)
{
    if (e->norm == RF_NORM_NONE) return raw;
    return (float)(((double)raw - (double)e->shift) * (double)e->scale);
}

/* ---- expressions: labels and filters ------------------------------------------------------ */

enum { X_COL, X_PROD, X_NUM, X_STR };
enum { OP_GE, OP_GT, OP_LE, OP_LT, OP_EQ, OP_NE };

typedef struct {
    int kind, op;
    char a[RF_SPEC_MAX], b[RF_SPEC_MAX]; /* column names */
    double v;                            /* X_NUM */
    char text[RF_SPEC_MAX];              /* X_STR */
    size_t tlen;
} expr;

static inline int cmp_num(int op, double x, double v)
{
    switch (op) {
    case OP_GE: return x >= v;
    case OP_GT: return x > v;
    case OP_LE: return x <= v;
    case OP_LT: return x < v;
    case OP_EQ: return x == v;
    default: return x != v;
    }
}

/* ---- side tables (joins) ---------------------------------------------------------------- */

typedef struct {
    char path[RF_PATH_MAX];
    int ncols, key_col, on_col; /* on_col: column of the main row holding the key */
    char (*names)[RF_NAME_MAX];
    char *text;      /* every field's (converted, unescaped) text, back to back */
    size_t text_len, text_cap;
    size_t *off;     /* (rows * ncols + 1) start of each field in text */
    size_t rows, rows_cap;
    uint32_t *slots; /* open addressing: row + 1, 0 empty */
    size_t mask;
    int base;        /* first extended column of this table's columns */
} side;

static inline const char *side_field(const side *s, size_t r, int c, uint32_t *len)
{
    size_t i = r * (size_t)s->ncols + (size_t)c;
    *len = (uint32_t)(s->off[i + 1] - s->off[i]);
    return s->text + s->off[i];
}

/* ---- output columns ---------------------------------------------------------------------- */

/* Spilled arrays: each in an unlinked temporary file, mapped shared and grown with ftruncate +
 * mremap, so the kernel can write the loaded data back and evict it (bounded memory for
 * rf_cache_build). Keyed by the address of the array pointer they back. */
typedef struct {
    void **slot;
    int fd;
    size_t bytes;
} spill_ent;

typedef struct {
    char dir[RF_PATH_MAX];
    int n;
    spill_ent e[5 + 2 * RF_MAX_FIELDS];
} spill_set;

typedef struct {
    size_t n, cap;
    spill_set *spill; /* NULL: malloc'ed arrays */
    uint32_t *cat;    /* (n, F) */
    float *dense;     /* (n, D) */
    float *labels;    /* (n, K) */
    float *weight;    /* (n) or NULL */
    uint64_t *group;  /* (n) or NULL */
    uint64_t *mv_off[RF_MAX_FIELDS]; /* (n + 1) */
    uint32_t *mv_ids[RF_MAX_FIELDS];
    size_t mv_len[RF_MAX_FIELDS], mv_cap[RF_MAX_FIELDS];
} cols;

/* ---- the loader --------------------------------------------------------------------------- */

enum { FK_VOCAB = RF_ENC_VOCAB, FK_IDS = RF_ENC_IDS, FK_HASH = RF_ENC_HASH, FK_BUCKET = RF_ENC_BUCKET };

/* Parallel fitting: a piece writes a key's global provisional id when the global vocabulary
 * already has it (it is only read while pieces are parsed), else its id in the piece's own
 * vocabulary with this bit set (mapped to the global id when the piece is copied out). A
 * piece's vocabulary stays far below 2^31 keys. */
#define LOCAL_ID 0x80000000u

typedef struct {
    int col;          /* extended column */
    int kind;
    int multi;
    char sep;
    uint32_t size;    /* FK_IDS: ids; FK_HASH: buckets + 1 */
    uint32_t oov;     /* FK_VOCAB with given encoders */
    uint64_t seed;
    const float *bounds;
    uint32_t nb;
    rf_vocab *vocab;  /* FK_VOCAB: the global vocabulary (being fitted, or frozen) */
} fplan;

typedef struct {
    int col;
    int fill;         /* rf_fill (given: from the encoder) */
    float fill_value; /* given encoders */
    const rf_dense_enc *enc; /* given encoders; NULL = raw */
} dplan;

typedef struct {
    expr x;
    int ca, cb;       /* columns (cb: X_PROD) */
    int numeric;      /* not checked to be 0/1 */
    int scaled;
    double lo, hi;
} lplan;

typedef struct {
    expr x;
    int col;
} fltplan;

typedef struct loader loader;

typedef struct {
    /* region */
    const char *start, *hint, *end;
    int more;         /* stopped at an incomplete row (needs more text) */
    long lines;
    cols c;
    /* parallel fitting: local vocabularies, kept across rounds, and their local -> global
     * provisional id maps (the first mapped ids are known; new keys are merged per round) */
    rf_vocab *voc[RF_MAX_FIELDS];
    uint32_t *map[RF_MAX_FIELDS];
    uint32_t mapped[RF_MAX_FIELDS];
    uint64_t local;   /* fields with piece-local ids (LOCAL_ID) in this round's rows */
    tokens t;
    char *scratch, *conv;
    size_t scratch_cap, conv_cap;
    size_t bad, filtered;
    int nshow;        /* the first skipped rows of the piece: where and why (--skip-bad-rows) */
    long show_line[RF_BAD_SHOW], show_col[RF_BAD_SHOW];
    char show_msg[RF_BAD_SHOW][96];
    size_t dst;       /* merged: first output row */
    size_t mv_base[RF_MAX_FIELDS]; /* merged: first output multi-value id of each field */
    int failed;       /* an error is in err (line relative to the piece start, 0-based) */
    rf_error err;
    const char *row;  /* current row */
    long row_line;    /* lines before the current row within the piece */
    char gap[128];    /* keeps the fields each thread writes per row off its neighbour's cache lines */
} piece;

struct loader {
    const rf_schema *sc;
    const char *path;
    rf_error *err;
    int skip, fitting, direct;
    int F, D, K;
    tokctx tx;        /* buf/end/eof updated per round */
    unsigned char cls[256];
    char dstr[RF_DELIM_MAX];
    int latin1;
    int ncols, next;  /* main columns; extended columns (main + joined) */
    fplan fp[RF_MAX_FIELDS];
    dplan dp[RF_MAX_DENSE];
    lplan lp[RF_MAX_LABELS];
    fltplan flt[RF_MAX_FILTERS];
    int nflt;
    int weight_col, group_col;
    int use_na;       /* NA strings apply to dense columns */
    side sides[RF_MAX_JOINS];
    int nside;
    rf_encoders *enc;
    cols out;
    rf_pool *pool;    /* the threads of the parallel steps of a round (NULL: one thread) */
    rf_load_hooks_ *hooks;
    int dense_stream; /* dense rows go to hooks->dense_sink, out.dense stays NULL */
    int dense_batch;  /* plain decimal dense fields are converted a row at a time */
    int dense_enc;    /* some dense column has an encoder to apply */
    size_t est_rows;
    size_t bad_rows, filtered;
    int nshow;        /* the first skipped rows of the file (line numbers of the file) */
    long show_line[RF_BAD_SHOW], show_col[RF_BAD_SHOW];
    char show_msg[RF_BAD_SHOW][96];
};

enum { ROW_OK = 0, ROW_SKIP = 1, ROW_FAIL = 2, ROW_FILTERED = 3 };

#define SHOW_MAX 40

static inline void tokctx_set(tokctx *x, const textbuf *b)
{
    x->buf = b->buf;
    x->end = b->buf + b->len;
    x->eof = b->eof;
    x->pad_end = x->end; /* BUF_PAD > 64 readable bytes follow the sentinel */
}

/* expr.c: parse "col", "a*b", "col OP value" (OP: >= > <= < == = !=). Returns 0, or -1 with why. */
int rf_parse_expr_(const char *spec, expr *x, char *why, size_t wn);

/* join.c */
void rf_side_free_(side *s);
long rf_side_find_(const side *s, const char *k, size_t n);
/* Read a side table completely (tokenizer: rf_load_opts.tokenizer). */
rf_status rf_load_side_(const rf_join_spec *js, side *s, int tokenizer, rf_error *err);
/* ISO-8859-1 -> UTF-8 of s[0..n) into *buf (grown); returns the length. -1 on OOM. */
long rf_latin1_to_utf8_(const char *s, size_t n, char **buf, size_t *cap);
int rf_has_high_(const char *s, size_t n);

/* columns.c */
void rf_cols_free_(cols *c);
/* Grow the array *slot of c to bytes (spilled, or malloc'ed - big ones on huge pages, see
 * bigmem.h); NULL on failure. */
void *rf_cgrow_(cols *c, void **slot, size_t bytes);

/* rows.c */
/* Location (piece-relative 0-based line, 1-based column) of position at in the current row. */
void rf_locate_(const piece *P, const char *at, long *line, long *col);
/* Field text with "" escapes removed (into the scratch buffer if needed); NULL on OOM. */
const char *rf_field_text_(piece *P, const span *s, size_t *len);
int rf_grow_rows_(const loader *L, cols *c, size_t want);
/* Forget a piece's local vocabularies (after a parse from a wrong start: its keys may not
 * be the file's, nor in the file's order). */
void rf_piece_reset_vocab_(piece *P);
/* Parse the rows of piece P starting at P->start, up to the first row starting at or after
 * P->hint. */
void rf_parse_piece_(const loader *L, piece *P);
void rf_piece_free_(piece *P);

/* plan.c */
rf_status rf_missing_column_(const loader *L, char (*names)[RF_NAME_MAX], const char *name, const char *role);
/* Resolve every schema column to an extended column, and the encoders to use. */
rf_status rf_make_plan_(loader *L, char (*names)[RF_NAME_MAX]);
rf_status rf_check_schema_(const rf_schema *sc, rf_error *err);

/* fit.c: fit the encoders on the rows [0, a) of the output and rewrite every row. */
rf_status rf_fit_all_(loader *L, size_t a, const uint8_t *role);

#endif
