/* csvwrite.c - a dataset as CSV text (rf_dataset_write_csv). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sbuf.h"
#include "resflow/afile.h"
#include "resflow/data.h"

/* ---- writer --------------------------------------------------------------------------- */


/* A field, quoted (RFC 4180) if it contains the delimiter, a quote or a line break. */
static void sb_field(sbuf *b, const char *s, size_t n, char delim)
{
    int q = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r') q = 1;
    if (!q) {
        sb_add(b, s, n);
        return;
    }
    sb_char(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') sb_char(b, '"');
        sb_char(b, s[i]);
    }
    sb_char(b, '"');
}

static void sb_u64(sbuf *b, uint64_t v)
{
    char t[24];
    int i = 24;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_add(b, t + i, (size_t)(24 - i));
}

/* %.9g (round-trips every float); small integers take a fast path with identical output. */
static void sb_float(sbuf *b, float f)
{
    if (f == f && fabsf(f) < 16777216.0f && f == (float)(int32_t)f && !(f == 0 && signbit(f))) {
        int32_t i = (int32_t)f;
        if (i < 0) sb_char(b, '-');
        sb_u64(b, (uint64_t)(i < 0 ? -(int64_t)i : i));
        return;
    }
    char t[32];
    int n = snprintf(t, sizeof t, "%.9g", (double)f);
    sb_add(b, t, (size_t)n);
}

/* Writer contract: comma-delimited, header = field names, dense names, label names, then
 * "weight" and "group" when present, then "p_<label>" for every label when truth is present
 * (the true probability or expectation of that label, "nan" where unknown). Categorical ids
 * are written as decimal integers (a multi-valued field as its ids joined by the field's
 * separator, quoted when that is ','), floats (truth included) with %.9g (exact float round
 * trip), groups as decimal integers. Reloading with a schema built from the dataset and
 * encoders mapping the text "k" to id k reproduces cat/mv ids, dense, labels and weight
 * exactly; group keys are re-hashed on load, so only their partition of the rows is
 * preserved. The file is written atomically (afile.h), so readers never see a partial file. */
/* The CSV of ds to fp (what: the destination, for messages): RF_ENOMEM, or RF_OK with *werr set
 * when a write failed (errno kept). */
static rf_status write_csv(const rf_dataset *ds, FILE *fp, const char *what, int *werr, rf_error *err)
{
    const char delim = ',';
    rf_status st = RF_OK;
    sbuf b = {0};
    /* header */
    int col = 0;
    for (int f = 0; f < ds->F; f++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->fields[f].name, strlen(ds->fields[f].name), delim);
    }
    for (int d = 0; d < ds->D; d++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->dense_names[d], strlen(ds->dense_names[d]), delim);
    }
    for (int k = 0; k < ds->K; k++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->label_names[k], strlen(ds->label_names[k]), delim);
    }
    if (ds->weight) {
        if (col++) sb_char(&b, delim);
        sb_add(&b, "weight", 6);
    }
    if (ds->group) {
        if (col++) sb_char(&b, delim);
        sb_add(&b, "group", 5);
    }
    for (int k = 0; ds->truth && k < ds->K; k++, col++) {
        char name[RF_NAME_MAX + 2];
        snprintf(name, sizeof name, "p_%s", ds->label_names[k]);
        if (col) sb_char(&b, delim);
        sb_field(&b, name, strlen(name), delim);
    }
    sb_char(&b, '\n');

    sbuf mv = {0};
    for (size_t i = 0; i < ds->n && !b.oom && !mv.oom && !*werr; i++) {
        col = 0;
        for (int f = 0; f < ds->F; f++, col++) {
            if (col) sb_char(&b, delim);
            if (!ds->fields[f].multi || !ds->mv_off || !ds->mv_off[f]) {
                sb_u64(&b, ds->cat[i * (size_t)ds->F + (size_t)f]);
                continue;
            }
            mv.len = 0;
            char sep = ds->fields[f].sep ? ds->fields[f].sep : '|';
            for (uint64_t j = ds->mv_off[f][i]; j < ds->mv_off[f][i + 1]; j++) {
                if (j > ds->mv_off[f][i]) sb_char(&mv, sep);
                sb_u64(&mv, ds->mv_ids[f][j]);
            }
            if (!mv.oom) sb_field(&b, mv.p ? mv.p : "", mv.len, delim);
        }
        for (int d = 0; d < ds->D; d++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->dense[i * (size_t)ds->D + (size_t)d]);
        }
        for (int k = 0; k < ds->K; k++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->labels[i * (size_t)ds->K + (size_t)k]);
        }
        if (ds->weight) {
            if (col++) sb_char(&b, delim);
            sb_float(&b, ds->weight[i]);
        }
        if (ds->group) {
            if (col++) sb_char(&b, delim);
            sb_u64(&b, ds->group[i]);
        }
        for (int k = 0; ds->truth && k < ds->K; k++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->truth[i * (size_t)ds->K + (size_t)k]);
        }
        sb_char(&b, '\n');
        if (b.len >= ((size_t)1 << 20)) {
            if (fwrite(b.p, 1, b.len, fp) != b.len) *werr = 1;
            b.len = 0;
        }
    }
    if (b.oom || mv.oom) st = rf_errorf(err, RF_ENOMEM, "out of memory writing %s", what);
    else if (!*werr && b.len && fwrite(b.p, 1, b.len, fp) != b.len) *werr = 1;
    free(b.p);
    free(mv.p);
    return st;
}

rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err)
{
    if (!ds || !path) return rf_errorf(err, RF_EINTERNAL, "rf_dataset_write_csv: NULL argument");
    rf_afile *af;
    rf_status st;
    if ((st = rf_afile_open(path, 0, &af, err))) return st;
    FILE *fp = rf_afile_fp(af);
    if (!fp) return rf_afile_commit(af, 0, err); /* fails: the stream could not be made */
    int werr = 0;
    errno = 0;
    if ((st = write_csv(ds, fp, path, &werr, err))) {
        rf_afile_abort(af);
        return st;
    }
    if (werr) rf_afile_fail(af, errno);
    return rf_afile_commit(af, 0, err); /* checks the stream, closes, renames (names path) */
}

rf_status rf_dataset_write_csv_stream(const rf_dataset *ds, FILE *fp, rf_error *err)
{
    if (!ds || !fp) return rf_errorf(err, RF_EINTERNAL, "rf_dataset_write_csv_stream: NULL argument");
    int werr = 0;
    errno = 0;
    rf_status st = write_csv(ds, fp, "the stream", &werr, err);
    if (!st && (werr || fflush(fp) != 0 || ferror(fp)))
        st = rf_errorf(err, RF_EIO, "cannot write the CSV: %s", errno ? strerror(errno) : "write error");
    return st;
}
