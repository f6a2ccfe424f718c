/* rowenc.c - one raw row into a model's inputs with fitted encoders, the loader's rules applied
 * to values given by column name (contract in include/resflow/rowenc.h). The rules, each as the
 * loader applies them to a row of a file (rows.c, plan.c):
 *   categorical  empty -> id 0; vocabulary: its id, else the field's OOV id; hash:
 *                1 + XXH3_64(value, seed) % (size - 1); integer ids: the number if < size, else 0
 *                (anything but 1..19 digits is an error); bucket: 1 + number of boundaries <= x
 *                (missing -> 0); multi-valued: split at the separator, empty pieces skipped;
 *   dense        missing (empty or an NA string) -> the fill value (an error without fill),
 *                else the exact (strtod) parse, which must fit a float; then the normaliser.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/names.h"
#include "data/dataint.h"
#include "data/numparse.h"
#include "resflow/rowenc.h"

typedef struct {
    int kind;          /* rf_enc_kind */
    int multi;
    char sep;
    uint32_t size, oov, nb;
    uint64_t seed;
    const float *bounds;
    const rf_vocab *vocab;
} fenc;

typedef struct {
    int fill;
    float fill_value;
    int norm;         /* rf_norm; x' = (x - shift) * scale */
    float shift, scale;
} denc;

struct rf_row_encoder {
    int F, D, nna;
    fenc f[RF_MAX_FIELDS];
    denc d[RF_MAX_DENSE];
    char names[RF_MAX_FIELDS + RF_MAX_DENSE][RF_NAME_MAX];
    const char *name_ptr[RF_MAX_FIELDS + RF_MAX_DENSE];
    int by_name[RF_MAX_FIELDS + RF_MAX_DENSE];   /* column indices in name order (core/names.h) */
    short next[RF_MAX_FIELDS + RF_MAX_DENSE];    /* the next column of the same name (a field that
                                                    is also a dense column), or -1 */
    char na[RF_MAX_NA][RF_NA_LEN];
    rf_field fields[RF_MAX_FIELDS];
};

struct rf_row_batch {
    rf_dataset *ds;
    size_t cap;
    size_t mv_cap[RF_MAX_FIELDS];
};

rf_status rf_row_encoder_create(const rf_schema *sc, const rf_encoders *enc, rf_row_encoder **out, rf_error *err)
{
    *out = NULL;
    if (sc->F < 0 || sc->F > RF_MAX_FIELDS || sc->D < 0 || sc->D > RF_MAX_DENSE)
        return rf_errorf(err, RF_EUSAGE, "row encoder: %d fields / %d dense columns", sc->F, sc->D);
    if (!enc || enc->F != sc->F || !enc->vocab)
        return rf_errorf(err, RF_EUSAGE, "row encoder: the encoders do not match the schema's %d fields", sc->F);
    rf_row_encoder *e = calloc(1, sizeof *e);
    if (!e) return rf_errorf(err, RF_ENOMEM, "out of memory");
    e->F = sc->F;
    e->D = sc->D;
    for (int f = 0; f < sc->F; f++) { /* as rf_make_plan_ does for given encoders */
        const rf_cat_spec *cs = &sc->cat[f];
        fenc *fp = &e->f[f];
        fp->multi = cs->multi && !cs->bucket;
        fp->sep = cs->sep ? cs->sep : '|';
        fp->vocab = enc->vocab[f];
        if (enc->field) {
            const rf_field_enc *fe = &enc->field[f];
            fp->kind = fe->kind;
            fp->size = fe->size;
            fp->oov = fe->oov;
            fp->seed = fe->seed;
            fp->bounds = fe->bounds;
            fp->nb = fe->nbounds;
            if (fp->kind == RF_ENC_BUCKET) fp->multi = 0;
        } else {
            fp->kind = enc->vocab[f] ? RF_ENC_VOCAB : RF_ENC_IDS;
            fp->size = enc->id_size ? enc->id_size[f] : 1;
        }
        if ((fp->kind == RF_ENC_VOCAB && !fp->vocab) || (fp->kind == RF_ENC_HASH && fp->size < 2)) {
            free(e);
            return rf_errorf(err, RF_EUSAGE, "row encoder: field '%s' has no usable encoder", cs->name);
        }
        snprintf(e->names[f], RF_NAME_MAX, "%s", cs->name);
        rf_field *fd = &e->fields[f];
        snprintf(fd->name, RF_NAME_MAX, "%s", cs->name);
        fd->multi = fp->multi;
        fd->pooling = cs->pooling;
        fd->sep = fp->sep;
        fd->vocab = fp->kind == RF_ENC_VOCAB ? rf_vocab_size(fp->vocab) : fp->size;
        if (fp->kind == RF_ENC_VOCAB && fp->oov >= fd->vocab) fd->vocab = fp->oov + 1;
        if (enc->field) fd->vocab = enc->field[f].size;
    }
    for (int d = 0; d < sc->D; d++) { /* as rf_make_plan_ */
        denc *dp = &e->d[d];
        if (enc->dense && d < enc->D) {
            const rf_dense_enc *de = &enc->dense[d];
            dp->fill = de->fill;
            dp->fill_value = de->fill_value;
            dp->norm = de->norm;
            dp->shift = de->shift;
            dp->scale = de->scale;
        } else {
            dp->fill = sc->fill == RF_FILL_MEAN ? RF_FILL_ERROR : sc->fill; /* nothing fitted */
            dp->fill_value = sc->fill == RF_FILL_VALUE ? sc->fill_value : 0.0f;
        }
        snprintf(e->names[sc->F + d], RF_NAME_MAX, "%s", sc->dense[d]);
    }
    int nc = sc->F + sc->D;
    for (int i = 0; i < nc; i++) e->name_ptr[i] = e->names[i];
    rf_names_sort(e->name_ptr, nc, e->by_name);
    for (int i = 0; i < nc; i++) /* equal names are adjacent, in column order */
        e->next[e->by_name[i]] =
            (short)(i + 1 < nc && !strcmp(e->names[e->by_name[i]], e->names[e->by_name[i + 1]]) ? e->by_name[i + 1] : -1);
    e->nna = sc->nna < 0 ? 0 : sc->nna > RF_MAX_NA ? RF_MAX_NA : sc->nna;
    memcpy(e->na, sc->na, sizeof e->na);
    *out = e;
    return RF_OK;
}

void rf_row_encoder_free(rf_row_encoder *e) { free(e); }

int rf_row_encoder_columns(const rf_row_encoder *e, const char *const **names)
{
    *names = e->name_ptr;
    return e->F + e->D;
}

rf_row_batch *rf_row_batch_create(const rf_row_encoder *e, size_t max_rows)
{
    rf_row_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    size_t cap = max_rows ? max_rows : 1;
    b->ds = rf_dataset_alloc(cap, e->F, e->D, 0);
    b->cap = cap;
    int ok = b->ds != NULL;
    for (int f = 0; ok && f < e->F; f++) {
        b->ds->fields[f] = e->fields[f];
        if (!e->f[f].multi) continue;
        b->mv_cap[f] = cap * 4;
        b->ds->mv_off[f] = calloc(cap + 1, sizeof **b->ds->mv_off);
        b->ds->mv_ids[f] = malloc(b->mv_cap[f] * sizeof **b->ds->mv_ids);
        ok = b->ds->mv_off[f] && b->ds->mv_ids[f];
    }
    for (int d = 0; ok && d < e->D; d++) snprintf(b->ds->dense_names[d], RF_NAME_MAX, "%s", e->names[e->F + d]);
    if (!ok) {
        rf_row_batch_free(b);
        return NULL;
    }
    b->ds->n = 0;
    return b;
}

void rf_row_batch_free(rf_row_batch *b)
{
    if (!b) return;
    rf_dataset_free(b->ds);
    free(b);
}

void rf_row_batch_clear(rf_row_batch *b) { b->ds->n = 0; }

const rf_dataset *rf_row_batch_dataset(const rf_row_batch *b) { return b->ds; }

/* Is s a missing value: empty, or one of the schema's NA strings? */
static int is_na(const rf_row_encoder *e, const char *s, size_t n)
{
    if (n == 0) return 1;
    for (int i = 0; i < e->nna; i++) {
        size_t l = strnlen(e->na[i], RF_NA_LEN);
        if (l == n && memcmp(s, e->na[i], n) == 0) return 1;
    }
    return 0;
}

/* The id of one non-empty value of a non-bucket field; *bad for a malformed integer id. */
static uint32_t encode_value(const fenc *fp, const char *s, size_t n, int *bad)
{
    if (n == 0) return 0;
    switch (fp->kind) {
    case RF_ENC_HASH: return 1 + (uint32_t)(XXH3_64bits_withSeed(s, n, fp->seed) % (fp->size - 1));
    case RF_ENC_IDS: return rf_encode_id_(fp->size, s, n, bad);
    default: {
        uint32_t id = rf_vocab_lookup(fp->vocab, s, n);
        return id ? id : fp->oov;
    }
    }
}

/* A number as the loader reads it: exact parse, finite, within float range. */
static int parse_float(const char *s, size_t n, float *out)
{
    double x;
    if (rf_parse_num_(s, n, &x) != RF_NUM_OK) return -1;
    return rf_num_to_float_(x, out) ? -2 : 0;
}

static rf_status value_error(rf_error *err, const char *what, const char *col, const char *s, size_t n)
{
    int show = n > 60 ? 60 : (int)n;
    return rf_errorf(err, RF_EDATA, "%s '%.*s%s' in column '%s'", what, show, s, n > 60 ? "..." : "", col);
}

int rf_row_encoder_find(const rf_row_encoder *e, const char *name)
{
    return name ? rf_names_find(e->name_ptr, e->by_name, e->F + e->D, name) : -1;
}

rf_status rf_row_encode(const rf_row_encoder *e, rf_row_batch *b, int n, const char *const *names,
                        const char *const *values, rf_error *err)
{
    int nc = e->F + e->D, cols[RF_MAX_FIELDS + RF_MAX_DENSE];
    unsigned char seen[RF_MAX_FIELDS + RF_MAX_DENSE] = {0};
    for (int i = 0; i < n; i++) {
        int c = rf_row_encoder_find(e, names[i]);
        if (c < 0) {
            char list[512] = "";
            for (int j = 0; j < nc; j++) {
                size_t l = strlen(list);
                if (l + 4 >= sizeof list) break;
                snprintf(list + l, sizeof list - l, "%s%s", j ? ", " : "", e->names[j]);
            }
            return rf_errorf(err, RF_EUSAGE, "unknown column '%s' (the model reads: %s)", names[i] ? names[i] : "(null)",
                             list);
        }
        if (seen[c]++) return rf_errorf(err, RF_EUSAGE, "column '%s' given twice", names[i]);
        cols[i] = c; /* n <= nc here: no name twice */
    }
    return rf_row_encode_cols(e, b, n < 0 ? 0 : n, cols, values, err);
}

rf_status rf_row_encode_cols(const rf_row_encoder *e, rf_row_batch *b, int n, const int *cols,
                             const char *const *values, rf_error *err)
{
    rf_dataset *ds = b->ds;
    size_t r = ds->n;
    if (r >= b->cap) return rf_errorf(err, RF_EUSAGE, "row batch full (%zu rows)", b->cap);
    int nc = e->F + e->D;
    const char *val[RF_MAX_FIELDS + RF_MAX_DENSE] = {0};
    unsigned char seen[RF_MAX_FIELDS + RF_MAX_DENSE] = {0};
    for (int i = 0; i < n; i++) {
        int c = cols[i];
        if (c < 0 || c >= nc) return rf_errorf(err, RF_EUSAGE, "column index %d: the encoder reads %d columns", c, nc);
        if (seen[c]++) return rf_errorf(err, RF_EUSAGE, "column '%s' given twice", e->names[c]);
        for (; c >= 0; c = e->next[c]) val[c] = values[i]; /* every column of that name: as the loader */
    }
    /* dense columns and every check first: a rejected row leaves the batch as it was */
    float *drow = e->D ? ds->dense + r * (size_t)e->D : NULL;
    for (int d = 0; d < e->D; d++) {
        const denc *dp = &e->d[d];
        const char *s = val[e->F + d] ? val[e->F + d] : "";
        size_t len = strlen(s);
        float x;
        if (dp->fill != RF_FILL_ERROR && is_na(e, s, len)) {
            x = dp->fill_value;
        } else if (len == 0) {
            return rf_errorf(err, RF_EDATA, "empty numeric value in column '%s'", e->names[e->F + d]);
        } else {
            int rc = parse_float(s, len, &x);
            if (rc == -1) return value_error(err, "invalid number", e->names[e->F + d], s, len);
            if (rc == -2) return value_error(err, "value out of float range", e->names[e->F + d], s, len);
        }
        if (dp->norm != RF_NORM_NONE) x = (float)(((double)x - (double)dp->shift) * (double)dp->scale);
        drow[d] = x;
    }
    uint32_t *crow = ds->cat + r * (size_t)(e->F ? e->F : 1);
    size_t mv_add[RF_MAX_FIELDS] = {0};
    for (int f = 0; f < e->F; f++) { /* validate, and count the multi-valued ids */
        const fenc *fp = &e->f[f];
        const char *s = val[f] ? val[f] : "";
        size_t len = strlen(s);
        if (fp->kind == RF_ENC_BUCKET) {
            float v = NAN;
            if (!is_na(e, s, len)) {
                int rc = parse_float(s, len, &v);
                if (rc == -1) return value_error(err, "invalid number", e->names[f], s, len);
                if (rc == -2) return value_error(err, "value out of float range", e->names[f], s, len);
            }
            crow[f] = rf_bucket_id_(fp->bounds, fp->nb, v);
            continue;
        }
        int bad = 0;
        if (!fp->multi) {
            crow[f] = encode_value(fp, s, len, &bad);
        } else {
            crow[f] = 0;
            for (const char *a = s, *z = s + len; a < z; a++) {
                const char *q = memchr(a, fp->sep, (size_t)(z - a));
                if (!q) q = z;
                if (q > a) {
                    if (fp->kind == RF_ENC_IDS) rf_encode_id_(fp->size, a, (size_t)(q - a), &bad);
                    mv_add[f]++;
                }
                a = q;
            }
        }
        if (bad) return value_error(err, "expected integer ids, found", e->names[f], s, len);
    }
    for (int f = 0; f < e->F; f++) { /* room for the multi-valued ids */
        if (!e->f[f].multi) continue;
        size_t need = ds->mv_off[f][r] + mv_add[f];
        if (need > b->mv_cap[f]) {
            size_t nc2 = need > 2 * b->mv_cap[f] ? need : 2 * b->mv_cap[f];
            uint32_t *p = realloc(ds->mv_ids[f], nc2 * sizeof *p);
            if (!p) return rf_errorf(err, RF_ENOMEM, "out of memory");
            ds->mv_ids[f] = p;
            b->mv_cap[f] = nc2;
        }
    }
    for (int f = 0; f < e->F; f++) {
        const fenc *fp = &e->f[f];
        if (!fp->multi) continue;
        const char *s = val[f] ? val[f] : "";
        size_t len = strlen(s), o = ds->mv_off[f][r];
        int bad = 0;
        for (const char *a = s, *z = s + len; a < z; a++) {
            const char *q = memchr(a, fp->sep, (size_t)(z - a));
            if (!q) q = z;
            if (q > a) ds->mv_ids[f][o++] = encode_value(fp, a, (size_t)(q - a), &bad);
            a = q;
        }
        ds->mv_off[f][r + 1] = o;
    }
    ds->n = r + 1;
    return RF_OK;
}
