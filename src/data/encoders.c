/* encoders.c - fitted feature encoders (rf_encoders): creation, freeing, fitting helpers
 * (quantile bucket boundaries, dense fill/normaliser statistics) and the PREP serialisation
 * shared by model files and caches (layout in docs/formats.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "data/dataint.h"

rf_encoders *rf_encoders_new_(int F, int D)
{
    rf_encoders *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->F = F;
    e->D = D;
    size_t f1 = F > 0 ? (size_t)F : 1, d1 = D > 0 ? (size_t)D : 1;
    e->vocab = calloc(f1, sizeof *e->vocab);
    e->id_size = calloc(f1, sizeof *e->id_size);
    e->field = calloc(f1, sizeof *e->field);
    e->dense = calloc(d1, sizeof *e->dense);
    if (!e->vocab || !e->id_size || !e->field || !e->dense) {
        rf_encoders_free(e);
        return NULL;
    }
    for (int d = 0; d < D; d++) {
        e->dense[d].norm = RF_NORM_NONE;
        e->dense[d].scale = 1;
    }
    return e;
}

rf_encoders *rf_encoders_ids(int F, const uint32_t *sizes)
{
    rf_encoders *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->F = F;
    e->vocab = calloc(F > 0 ? (size_t)F : 1, sizeof *e->vocab);
    e->id_size = malloc((F > 0 ? (size_t)F : 1) * sizeof *e->id_size);
    if (!e->vocab || !e->id_size) {
        rf_encoders_free(e);
        return NULL;
    }
    for (int f = 0; f < F; f++) e->id_size[f] = sizes[f] ? sizes[f] : 1;
    return e;
}

void rf_encoders_free(rf_encoders *enc)
{
    if (!enc) return;
    for (int f = 0; f < enc->F && enc->vocab; f++) rf_vocab_free(enc->vocab[f]);
    for (int f = 0; f < enc->F && enc->field; f++) free(enc->field[f].bounds);
    free(enc->vocab);
    free(enc->id_size);
    free(enc->field);
    free(enc->dense);
    free(enc);
}

/* ---- fitting ------------------------------------------------------------------------------ */

static int cmp_f32(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* At most this many values are sorted for the quantiles; larger inputs use an evenly spaced
 * (deterministic) subsample. */
#define QUANT_SAMPLE ((size_t)1 << 22)

rf_status rf_bucket_fit_(const float *x, size_t stride, size_t n, uint32_t nb, float **bounds,
                         uint32_t *nbounds)
{
    *bounds = NULL;
    *nbounds = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += !isnan(x[i * stride]);
    if (m == 0 || nb < 2) return RF_OK;
    size_t step = m > QUANT_SAMPLE ? (m + QUANT_SAMPLE - 1) / QUANT_SAMPLE : 1;
    size_t cap = m / step + 1;
    float *v = malloc(cap * sizeof *v);
    float *b = malloc((size_t)nb * sizeof *b);
    if (!v || !b) {
        free(v);
        free(b);
        return RF_ENOMEM;
    }
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        float y = x[i * stride];
        if (isnan(y)) continue;
        if (seen++ % step == 0) v[k++] = y;
    }
    qsort(v, k, sizeof *v, cmp_f32);
    /* boundary j (1..nb-1): the value at quantile j/nb; duplicates removed, and a boundary
     * equal to the minimum would leave bucket 1 empty, so it is dropped as well */
    uint32_t nbo = 0;
    for (uint32_t j = 1; j < nb; j++) {
        size_t at = (size_t)((double)k * j / nb);
        if (at >= k) at = k - 1;
        float q = v[at];
        if (q <= v[0]) continue;
        if (nbo && !(q > b[nbo - 1])) continue;
        b[nbo++] = q;
    }
    free(v);
    if (!nbo) {
        free(b);
        return RF_OK;
    }
    *bounds = b;
    *nbounds = nbo;
    return RF_OK;
}

uint32_t rf_bucket_id_(const float *bounds, uint32_t nb, float x)
{
    if (isnan(x)) return 0;
    uint32_t lo = 0, hi = nb; /* number of bounds <= x */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return 1 + lo;
}

rf_status rf_dense_fit_all_(const float *x, size_t n, int D, const int *norm, int fill, float fill_value,
                           rf_dense_enc *out)
{
    double *sum = calloc((size_t)D, sizeof *sum), *sq = calloc((size_t)D, sizeof *sq);
    double *mn = malloc((size_t)D * sizeof *mn), *mx = malloc((size_t)D * sizeof *mx);
    size_t *cnt = calloc((size_t)D, sizeof *cnt);
    if (!sum || !sq || !mn || !mx || !cnt) {
        free(sum);
        free(sq);
        free(mn);
        free(mx);
        free(cnt);
        return RF_ENOMEM;
    }
    int need_var = 0;
    for (int d = 0; d < D; d++) {
        mn[d] = INFINITY;
        mx[d] = -INFINITY;
        need_var |= norm[d] == RF_NORM_STANDARD;
    }
    for (size_t i = 0; i < n; i++) { /* row-major: one pass over the rows */
        const float *r = x + i * (size_t)D;
        for (int d = 0; d < D; d++) {
            double y = r[d];
            if (isnan(y)) continue;
            sum[d] += y;
            cnt[d]++;
            if (y < mn[d]) mn[d] = y;
            if (y > mx[d]) mx[d] = y;
        }
    }
    for (int d = 0; d < D; d++) sum[d] = cnt[d] ? sum[d] / (double)cnt[d] : 0; /* now the mean */
    for (size_t i = 0; need_var && i < n; i++) {
        const float *r = x + i * (size_t)D;
        for (int d = 0; d < D; d++) {
            double y = r[d];
            if (!isnan(y)) sq[d] += (y - sum[d]) * (y - sum[d]);
        }
    }
    for (int d = 0; d < D; d++) {
        rf_dense_enc *o = &out[d];
        double mean = sum[d], sd = cnt[d] ? sqrt(sq[d] / (double)cnt[d]) : 0;
        memset(o, 0, sizeof *o);
        o->norm = norm[d];
        o->fill = fill;
        o->fill_value = fill == RF_FILL_MEAN ? (float)mean : fill == RF_FILL_VALUE ? fill_value : 0.0f;
        o->shift = 0;
        o->scale = 1;
        if (o->norm == RF_NORM_STANDARD) {
            o->shift = (float)mean;
            o->scale = sd > 0 && isfinite(1.0 / sd) ? (float)(1.0 / sd) : 1.0f;
        } else if (o->norm == RF_NORM_MINMAX) {
            o->shift = cnt[d] ? (float)mn[d] : 0.0f;
            o->scale = cnt[d] && mx[d] > mn[d] && isfinite(1.0 / (mx[d] - mn[d])) ? (float)(1.0 / (mx[d] - mn[d])) : 1.0f;
        }
    }
    free(sum);
    free(sq);
    free(mn);
    free(mx);
    free(cnt);
    return RF_OK;
}

/* ---- PREP serialisation ------------------------------------------------------------------ */

#define PREP_VERSION 1u
#define HASH_XXH3 1u


rf_status rf_encoders_prep_write(const rf_encoders *enc, unsigned char **out, size_t *len,
                                 rf_error *err)
{
    bbuf b = {0};
    *out = NULL;
    *len = 0;
    bb_u32(&b, PREP_VERSION);
    bb_u32(&b, HASH_XXH3);
    bb_u32(&b, (uint32_t)enc->F);
    for (int f = 0; f < enc->F; f++) {
        rf_field_enc fe;
        if (enc->field) {
            fe = enc->field[f];
        } else { /* legacy encoders: vocabulary or integer ids, OOV 0 */
            memset(&fe, 0, sizeof fe);
            fe.kind = enc->vocab && enc->vocab[f] ? RF_ENC_VOCAB : RF_ENC_IDS;
            fe.size = fe.kind == RF_ENC_VOCAB ? rf_vocab_size(enc->vocab[f])
                                              : (enc->id_size ? enc->id_size[f] : 1);
        }
        bb_u8(&b, (unsigned)fe.kind);
        bb_u8(&b, 0);
        bb_u8(&b, 0);
        bb_u8(&b, 0);
        bb_u32(&b, fe.size);
        bb_u32(&b, fe.oov);
        bb_u64(&b, fe.seed);
        bb_u32(&b, fe.kind == RF_ENC_BUCKET ? fe.nbounds : 0);
        for (uint32_t j = 0; fe.kind == RF_ENC_BUCKET && j < fe.nbounds; j++) bb_f32(&b, fe.bounds[j]);
    }
    int D = enc->dense ? enc->D : 0;
    bb_u32(&b, (uint32_t)D);
    for (int d = 0; d < D; d++) {
        const rf_dense_enc *de = &enc->dense[d];
        bb_u8(&b, (unsigned)de->norm);
        bb_u8(&b, (unsigned)de->fill);
        bb_u8(&b, 0);
        bb_u8(&b, 0);
        bb_f32(&b, de->fill_value);
        bb_f32(&b, de->shift);
        bb_f32(&b, de->scale);
    }
    if (b.oom) {
        free(b.p);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    *out = b.p;
    *len = b.len;
    return RF_OK;
}


#define PERR(...) rf_error_at(err, RF_EFORMAT, path ? path : "", 0, 0, __VA_ARGS__)

rf_status rf_encoders_prep_parse(rf_encoders *enc, int F, int D, const unsigned char *p,
                                 size_t len, const char *path, rf_error *err)
{
    rcur c = {p, len, 0};
    uint32_t ver, algo, nf, nd = 0;
    if (rc_u32(&c, &ver) || rc_u32(&c, &algo) || rc_u32(&c, &nf))
        return PERR("section PREP: too short");
    if (ver != PREP_VERSION)
        return PERR("section PREP: version %u, this build reads version %u", ver, PREP_VERSION);
    if (algo != HASH_XXH3) return PERR("section PREP: unknown hash algorithm %u", algo);
    if (nf != (uint32_t)F) return PERR("section PREP: %u fields, the field schema has %d", nf, F);
    rf_field_enc *fe = calloc(F > 0 ? (size_t)F : 1, sizeof *fe);
    rf_dense_enc *de = NULL;
    if (!fe) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_status st = RF_OK;
    for (int f = 0; f < F && !st; f++) {
        unsigned kind, r1, r2, r3;
        rf_field_enc *x = &fe[f];
        if (rc_u8(&c, &kind) || rc_u8(&c, &r1) || rc_u8(&c, &r2) || rc_u8(&c, &r3) ||
            rc_u32(&c, &x->size) || rc_u32(&c, &x->oov) || rc_u64(&c, &x->seed) ||
            rc_u32(&c, &x->nbounds)) {
            st = PERR("section PREP: field %d: truncated", f);
            break;
        }
        x->kind = (int)kind;
        if (kind > RF_ENC_BUCKET) {
            st = PERR("section PREP: field %d: unknown encoding %u", f, kind);
            break;
        }
        if (x->size < 1 || (kind == RF_ENC_HASH && x->size < 2)) {
            st = PERR("section PREP: field %d: bad size %u", f, x->size);
            break;
        }
        if (kind == RF_ENC_VOCAB && x->oov != 0 && x->oov != x->size - 1) {
            st = PERR("section PREP: field %d: OOV id %u outside the field's %u ids", f, x->oov, x->size);
            break;
        }
        if (kind == RF_ENC_VOCAB && (!enc->vocab || !enc->vocab[f])) {
            st = PERR("section PREP: field %d: vocabulary encoding without a vocabulary", f);
            break;
        }
        if (kind == RF_ENC_VOCAB &&
            rf_vocab_size(enc->vocab[f]) + (x->oov ? 1u : 0u) != x->size) {
            st = PERR("section PREP: field %d: %u ids do not match its vocabulary of %u keys", f,
                      x->size, rf_vocab_size(enc->vocab[f]) - 1);
            break;
        }
        if (kind != RF_ENC_BUCKET && x->nbounds) {
            st = PERR("section PREP: field %d: bucket boundaries on a non-bucket field", f);
            break;
        }
        if (kind == RF_ENC_BUCKET) {
            if (x->nbounds > (c.n - c.off) / 4 || (uint64_t)x->nbounds + 2 != x->size) {
                x->nbounds = 0;
                st = PERR("section PREP: field %d: bad bucket count", f);
                break;
            }
            x->bounds = malloc((x->nbounds ? x->nbounds : 1) * sizeof *x->bounds);
            if (!x->bounds) {
                x->nbounds = 0;
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                break;
            }
            for (uint32_t j = 0; j < x->nbounds; j++) {
                rc_f32(&c, &x->bounds[j]);
                if (!isfinite(x->bounds[j]) || (j && !(x->bounds[j] > x->bounds[j - 1]))) {
                    st = PERR("section PREP: field %d: bucket boundaries not finite and ascending", f);
                    break;
                }
            }
        }
    }
    if (!st && rc_u32(&c, &nd)) st = PERR("section PREP: truncated");
    if (!st && nd != 0 && nd != (uint32_t)D)
        st = PERR("section PREP: %u dense encoders, the model has %d dense features", nd, D);
    if (!st && nd) {
        de = calloc(nd, sizeof *de);
        if (!de) st = rf_errorf(err, RF_ENOMEM, "out of memory");
        for (uint32_t d = 0; d < nd && !st; d++) {
            unsigned norm, fill, r1, r2;
            rf_dense_enc *y = &de[d];
            if (rc_u8(&c, &norm) || rc_u8(&c, &fill) || rc_u8(&c, &r1) || rc_u8(&c, &r2) ||
                rc_f32(&c, &y->fill_value) || rc_f32(&c, &y->shift) || rc_f32(&c, &y->scale)) {
                st = PERR("section PREP: dense %u: truncated", d);
                break;
            }
            y->norm = (int)norm;
            y->fill = (int)fill;
            if (norm > RF_NORM_MINMAX || fill > RF_FILL_VALUE ||
                !isfinite(y->fill_value) || !isfinite(y->shift) || !isfinite(y->scale))
                st = PERR("section PREP: dense %u: bad normaliser", d);
        }
    }
    if (!st && c.off != c.n) st = PERR("section PREP: %zu unexpected bytes at its end", c.n - c.off);
    if (st) {
        for (int f = 0; f < F; f++) free(fe[f].bounds);
        free(fe);
        free(de);
        return st;
    }
    if (enc->field)
        for (int f = 0; f < enc->F; f++) free(enc->field[f].bounds);
    free(enc->field);
    free(enc->dense);
    enc->field = fe;
    enc->dense = de;
    enc->D = de ? (int)nd : 0;
    if (!enc->id_size && (enc->id_size = calloc(F > 0 ? (size_t)F : 1, sizeof *enc->id_size)) == NULL)
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (int f = 0; f < F; f++) enc->id_size[f] = fe[f].size;
    return RF_OK;
}
