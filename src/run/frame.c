/* frame.c - a dataset from in-memory columns, encoded with a loaded model's encoders (frame.h).
 *
 * Rows go through the model's row encoder (rowenc.h) in chunks, so every rule of the loader
 * applies unchanged; numbers are handed to it as their exact decimal text, except the values
 * of numeric dense columns, which are converted and normalised here directly (the placeholder
 * "0" goes to the encoder and the slot is overwritten): the encoder's rule for them is only
 * "exact value -> float -> (x - shift) * scale", and formatting them would be the slowest part.
 * Each chunk is then appended to the result (ids, dense values, multi-valued ids).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/numparse.h"
#include "resflow/frame.h"
#include "resflow/pipeline.h"

#define CHUNK 4096
#define NUMBUF 32

enum { ROLE_FIELD, ROLE_DENSE, ROLE_LABEL };

typedef struct {
    const rf_column *c;
    int role, idx;        /* field f / dense d / label j */
    int fast;             /* numeric dense column converted here */
    int also_dense;       /* a field's column that is also dense column also_dense - 1 (the row
                             encoder reads a name once, as its first column; files feed both) */
    const char *text;     /* TEXT: the next value */
} colstate;

/* The fill of dense column d for a missing value, as the row encoder has it; -1 without one. */
static int dense_fill(const rf_loaded_model *lm, int d, float *x)
{
    const rf_encoders *fe = lm->enc;
    const rf_schema *sc = &lm->cfg.data.schema;
    int fill = sc->fill == RF_FILL_MEAN ? RF_FILL_ERROR : sc->fill;
    *x = sc->fill == RF_FILL_VALUE ? sc->fill_value : 0.0f;
    if (fe && fe->dense && d < fe->D) {
        fill = fe->dense[d].fill;
        *x = fe->dense[d].fill_value;
    }
    return fill == RF_FILL_ERROR ? -1 : 0;
}

static int is_na(const rf_schema *sc, const char *s)
{
    if (!*s) return 1;
    for (int i = 0; i < sc->nna && i < RF_MAX_NA; i++)
        if (!strncmp(s, sc->na[i], RF_NA_LEN) && strlen(s) < RF_NA_LEN) return 1;
    return 0;
}

/* The dense value x (NaN = missing) of column d of the model as the encoder stores it. */
static rf_status dense_value(const rf_loaded_model *lm, int d, double x, const char *col, size_t row, float *out,
                             rf_error *err)
{
    const rf_encoders *fe = lm->enc;
    if (isnan(x)) {
        if (dense_fill(lm, d, out))
            return rf_errorf(err, RF_EDATA, "row %zu: empty numeric value in column '%s'", row, col);
        x = *out;
    } else if (rf_num_to_float_(x, out)) {
        return rf_errorf(err, RF_EDATA, "row %zu: value out of float range '%.17g' in column '%s'", row, x, col);
    }
    if (fe && fe->dense && d < fe->D && fe->dense[d].norm != RF_NORM_NONE)
        *out = (float)(((double)*out - (double)fe->dense[d].shift) * (double)fe->dense[d].scale);
    return RF_OK;
}

static size_t type_size(int t)
{
    switch (t) {
    case RF_COL_INT64: case RF_COL_FLOAT64: return 8;
    case RF_COL_FLOAT32: case RF_COL_INT32: return 4;
    default: return 0;
    }
}

/* Value i of a numeric column as a double; *integral when it came from an integer type. */
static double num_at(const rf_column *c, size_t i, int *integral, long long *iv)
{
    ptrdiff_t s = c->stride ? c->stride : (ptrdiff_t)type_size(c->type);
    const char *p = (const char *)c->data + (ptrdiff_t)i * s;
    *integral = 0;
    switch (c->type) {
    case RF_COL_INT64: { long long v; memcpy(&v, p, 8); *integral = 1; *iv = v; return (double)v; }
    case RF_COL_INT32: { int v; memcpy(&v, p, 4); *integral = 1; *iv = v; return v; }
    case RF_COL_FLOAT32: { float v; memcpy(&v, p, 4); return v; }
    default: { double v; memcpy(&v, p, 8); return v; }
    }
}

/* A number as the text a file would hold: integers in decimal, other values in the shortest
 * form that reads back to the same double; NaN -> NULL (missing). */
static const char *num_text(double x, int integral, long long iv, char buf[NUMBUF])
{
    if (integral) {
        snprintf(buf, NUMBUF, "%lld", iv);
        return buf;
    }
    if (isnan(x)) return NULL;
    if (x == floor(x) && fabs(x) < 1e18) {
        snprintf(buf, NUMBUF, "%lld", (long long)x);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, NUMBUF, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

static rf_status row_error(rf_error *err, size_t row, rf_status st)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return rf_errorf(err, st, "row %zu: %s", row, msg);
}

/* Append the n rows of chunk b to out at row r0 (multi-valued ids after those already there). */
static rf_status append_chunk(rf_dataset *out, const rf_dataset *b, size_t r0, size_t *mv_cap, rf_error *err)
{
    size_t Fs = out->F ? (size_t)out->F : 1;
    memcpy(out->cat + r0 * Fs, b->cat, b->n * Fs * sizeof *out->cat);
    if (out->D) memcpy(out->dense + r0 * (size_t)out->D, b->dense, b->n * (size_t)out->D * sizeof *out->dense);
    for (int f = 0; f < out->F; f++) {
        if (!out->mv_off[f]) continue;
        uint64_t base = out->mv_off[f][r0], add = b->mv_off[f][b->n] - b->mv_off[f][0];
        if (base + add > mv_cap[f]) {
            size_t nc = (size_t)(base + add) * 2;
            uint32_t *p = realloc(out->mv_ids[f], (nc ? nc : 1) * sizeof *p);
            if (!p) return rf_errorf(err, RF_ENOMEM, "out of memory");
            out->mv_ids[f] = p;
            mv_cap[f] = nc;
        }
        memcpy(out->mv_ids[f] + base, b->mv_ids[f] + b->mv_off[f][0], add * sizeof *out->mv_ids[f]);
        for (size_t i = 1; i <= b->n; i++) out->mv_off[f][r0 + i] = base + (b->mv_off[f][i] - b->mv_off[f][0]);
    }
    return RF_OK;
}

rf_status rf_frame_dataset(const rf_loaded_model *lm, const rf_column *cols, int ncols, size_t n,
                           int with_labels, rf_dataset **out, rf_error *err)
{
    *out = NULL;
    if (ncols < 0 || (ncols > 0 && !cols)) return rf_errorf(err, RF_EUSAGE, "frame: no columns");
    rf_row_encoder *enc = NULL;
    rf_status st = rf_row_encoder_for_model(lm, &enc, err);
    if (st) return st;
    const char *const *cn;
    int nc = rf_row_encoder_columns(enc, &cn), F = lm->F, D = nc - lm->F, K = with_labels ? lm->K_labels : 0;
    colstate *cs = calloc(ncols ? (size_t)ncols : 1, sizeof *cs);
    const char **names = calloc(ncols ? (size_t)ncols : 1, sizeof *names), **vals = calloc(ncols ? (size_t)ncols : 1, sizeof *vals);
    char (*buf)[NUMBUF] = calloc(ncols ? (size_t)ncols : 1, NUMBUF);
    int *label_col = calloc(K ? (size_t)K : 1, sizeof *label_col);
    size_t *mv_cap = calloc(F ? (size_t)F : 1, sizeof *mv_cap);
    rf_row_batch *b = rf_row_batch_create(enc, n < CHUNK ? n : CHUNK);
    rf_dataset *ds = NULL;
    int nenc = 0; /* columns given to the encoder */
    if (!cs || !names || !vals || !buf || !label_col || !mv_cap || !b) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < K; j++) label_col[j] = -1;
    for (int i = 0; i < ncols; i++) {
        const rf_column *c = &cols[i];
        cs[i].c = c;
        if (!c->name || c->type < RF_COL_TEXT || c->type > RF_COL_INT32 || !c->data) {
            st = rf_errorf(err, RF_EUSAGE, "frame: column %d: no name, no data or an unknown type %d", i, c->type);
            goto done;
        }
        if (c->type == RF_COL_TEXT) cs[i].text = c->data;
        int j;
        for (j = 0; j < nc && strcmp(cn[j], c->name); j++) {}
        if (j < nc) {
            cs[i].role = j < F ? ROLE_FIELD : ROLE_DENSE;
            cs[i].idx = j < F ? j : j - F;
            cs[i].fast = cs[i].role == ROLE_DENSE && c->type != RF_COL_TEXT;
            for (int k = F; cs[i].role == ROLE_FIELD && k < nc; k++)
                if (!strcmp(cn[k], c->name)) cs[i].also_dense = k - F + 1;
            names[nenc++] = c->name; /* unknown or repeated columns: the encoder says */
            continue;
        }
        for (j = 0; j < K && strcmp(lm->label_names[j], c->name); j++) {}
        if (j < K && c->type != RF_COL_TEXT) {
            cs[i].role = ROLE_LABEL;
            cs[i].idx = j;
            label_col[j] = i;
            continue;
        }
        if (j < K) {
            st = rf_errorf(err, RF_EUSAGE, "frame: label column '%s' must be numeric", c->name);
            goto done;
        }
        cs[i].role = ROLE_FIELD; /* not read by the model: the encoder names the columns it reads */
        names[nenc++] = c->name;
    }
    for (int j = 0; j < K; j++)
        if (label_col[j] < 0) {
            st = rf_errorf(err, RF_EUSAGE, "frame: the label column '%s' is missing", lm->label_names[j]);
            goto done;
        }
    if (!(ds = rf_dataset_alloc(n, F, D, K))) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    const rf_dataset *bd = rf_row_batch_dataset(b);
    memcpy(ds->fields, bd->fields, (size_t)F * sizeof *ds->fields);
    memcpy(ds->dense_names, bd->dense_names, (size_t)D * sizeof *ds->dense_names);
    for (int j = 0; j < K; j++) snprintf(ds->label_names[j], RF_NAME_MAX, "%s", lm->label_names[j]);
    for (int f = 0; f < F; f++)
        if (ds->fields[f].multi && !(ds->mv_off[f] = calloc(n + 1, sizeof **ds->mv_off))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto done;
        }
    for (size_t r0 = 0; r0 < n; r0 += CHUNK) {
        size_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
        rf_row_batch_clear(b);
        for (size_t r = 0; r < m; r++) {
            size_t row = r0 + r;
            int v = 0;
            float fast[RF_MAX_DENSE];
            unsigned char has_fast[RF_MAX_DENSE] = {0};
            for (int i = 0; i < ncols; i++) {
                colstate *c = &cs[i];
                int integral;
                long long iv = 0;
                if (c->role == ROLE_LABEL) {
                    ds->labels[row * (size_t)K + (size_t)c->idx] = (float)num_at(c->c, row, &integral, &iv);
                    continue;
                }
                const char *s;
                if (c->c->type == RF_COL_TEXT) {
                    s = c->text;
                    c->text += strlen(s) + 1;
                } else if (c->fast) {
                    double x = num_at(c->c, row, &integral, &iv);
                    s = NULL; /* missing: the encoder's fill rule (or its error) */
                    if (!isnan(x)) {
                        if ((st = dense_value(lm, c->idx, x, c->c->name, row, &fast[c->idx], err))) goto done;
                        has_fast[c->idx] = 1;
                        s = "0";
                    }
                } else {
                    double x = num_at(c->c, row, &integral, &iv);
                    s = num_text(x, integral, iv, buf[i]);
                }
                if (c->also_dense) { /* the same value for its dense column */
                    int d = c->also_dense - 1;
                    double x = NAN;
                    if (c->c->type != RF_COL_TEXT) x = num_at(c->c, row, &integral, &iv);
                    else if (!is_na(&lm->cfg.data.schema, s) && (rf_parse_num_(s, strlen(s), &x) != RF_NUM_OK || isnan(x))) {
                        st = rf_errorf(err, RF_EDATA, "row %zu: invalid number '%.60s' in column '%s'", row, s, c->c->name);
                        goto done;
                    }
                    if ((st = dense_value(lm, d, x, c->c->name, row, &fast[d], err))) goto done;
                    has_fast[d] = 1;
                }
                vals[v++] = s;
            }
            if ((st = rf_row_encode(enc, b, nenc, names, vals, err))) {
                row_error(err, row, st);
                goto done;
            }
            float *dr = bd->dense + r * (size_t)D;
            for (int d = 0; d < D; d++)
                if (has_fast[d]) dr[d] = fast[d];
        }
        if ((st = append_chunk(ds, bd, r0, mv_cap, err))) goto done;
    }
done:
    if (st) rf_dataset_free(ds);
    else *out = ds;
    rf_row_batch_free(b);
    rf_row_encoder_free(enc);
    free(cs);
    free(names);
    free(vals);
    free(buf);
    free(label_col);
    free(mv_cap);
    return st;
}
