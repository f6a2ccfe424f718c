/* fit.c - fitting the encoders after the last row, on the training rows, and rewriting every
 * row with the final ids and values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "data/loader.h"

/* ---- fitting after the last row --------------------------------------------------------------- */

/* The training rows: [0, a), or those of role 0 when role is not NULL (a = their count). */
#define TRAIN_ROW(i) (role ? role[i] == 0 : (i) < a)

rf_status rf_fit_all_(loader *L, size_t a, const uint8_t *role)
{
    cols *o = &L->out;
    size_t n = o->n, lim = role ? n : a;
    int F = L->F ? L->F : 1;
    rf_encoders *e = L->enc;
    uint32_t minc = L->sc->min_count ? L->sc->min_count : 1;
    uint32_t *cnt[RF_MAX_FIELDS] = {0}, *map[RF_MAX_FIELDS] = {0};
    rf_status st = RF_OK;
    /* vocabulary counts on the training rows: one pass over the rows for all fields */
    for (int f = 0; f < L->F; f++)
        if (L->fp[f].kind == FK_VOCAB &&
            !(cnt[f] = calloc((size_t)rf_vocab_entries_(L->fp[f].vocab) + 1, sizeof *cnt[f]))) {
            st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
            goto done;
        }
    for (size_t i = 0; i < lim; i++) {
        if (!TRAIN_ROW(i)) continue;
        const uint32_t *row = o->cat + i * (size_t)F;
        for (int f = 0; f < L->F; f++)
            if (cnt[f] && !L->fp[f].multi && cnt[f][row[f]] != UINT32_MAX) cnt[f][row[f]]++;
    }
    for (int f = 0; f < L->F; f++) {
        fplan *fp = &L->fp[f];
        rf_field_enc *fe = &e->field[f];
        fe->kind = fp->kind;
        if (fp->kind == FK_VOCAB) {
            uint32_t m = rf_vocab_entries_(fp->vocab);
            if (fp->multi) {
                for (size_t i = 0; i < lim; i++) {
                    if (!TRAIN_ROW(i)) continue;
                    for (uint64_t j = o->mv_off[f][i]; j < o->mv_off[f][i + 1]; j++)
                        if (cnt[f][o->mv_ids[f][j]] != UINT32_MAX) cnt[f][o->mv_ids[f][j]]++;
                }
            }
            if (rf_vocab_freeze_counts_(fp->vocab, cnt[f], L->sc->cat[f].min_count ? L->sc->cat[f].min_count : minc,
                                        &map[f])) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            uint32_t kept = rf_vocab_size(fp->vocab) - 1;
            fe->oov = L->sc->oov == RF_OOV_OWN ? kept + 1 : 0;
            fe->size = kept + 1 + (L->sc->oov == RF_OOV_OWN);
            for (uint32_t i = 1; i <= m; i++)
                if (!map[f][i]) map[f][i] = fe->oov;
            if (fp->multi) {
                for (uint64_t j = 0; j < o->mv_len[f]; j++) o->mv_ids[f][j] = map[f][o->mv_ids[f][j]];
                free(map[f]);
                map[f] = NULL;
            }
        } else if (fp->kind == FK_HASH) {
            fe->size = fp->size;
            fe->seed = fp->seed;
        } else if (fp->kind == FK_BUCKET) {
            /* the column holds float bits */
            float *vals = malloc((a ? a : 1) * sizeof *vals);
            if (!vals) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t i = 0, w = 0; i < lim; i++)
                if (TRAIN_ROW(i)) memcpy(&vals[w++], &o->cat[i * (size_t)F + f], sizeof(float));
            rf_status s2 = rf_bucket_fit_(vals, 1, a, L->sc->cat[f].bucket, &fe->bounds, &fe->nbounds);
            free(vals);
            if (s2) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            fe->size = fe->nbounds + 2;
        }
        e->id_size[f] = fe->size;
        if (fp->kind != FK_VOCAB) {
            rf_vocab_free(e->vocab[f]);
            e->vocab[f] = NULL;
        }
    }
    /* final ids of single-valued vocabulary and bucket fields: one pass over the rows */
    int any = 0;
    for (int f = 0; f < L->F; f++) any |= map[f] != NULL || L->fp[f].kind == FK_BUCKET;
    if (any) {
        const fplan *fps = L->fp;
        const rf_field_enc *fes = e->field;
        int nF = L->F;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            uint32_t *row = o->cat + i * (size_t)F;
            for (int f = 0; f < nF; f++) {
                if (map[f]) {
                    row[f] = map[f][row[f]];
                } else if (fps[f].kind == FK_BUCKET) {
                    float v;
                    memcpy(&v, &row[f], sizeof v);
                    row[f] = rf_bucket_id_(fes[f].bounds, fes[f].nbounds, v);
                }
            }
        }
    }
    /* dense: statistics of the training rows, then fill + normalise every row (streamed dense
     * values are final: no fill, no normalisation) */
    if (L->D && !L->dense_stream) {
        const rf_schema *sc = L->sc;
        int D = L->D, norm[RF_MAX_DENSE];
        for (int d = 0; d < D; d++) norm[d] = sc->dense_norm[d] ? sc->dense_norm[d] - 1 : sc->norm;
        int need = sc->fill != RF_FILL_ERROR;
        for (int d = 0; d < D; d++) need |= norm[d] != RF_NORM_NONE;
        if (!need) { /* raw values, nothing missing: no statistics needed */
            for (int d = 0; d < D; d++) {
                memset(&e->dense[d], 0, sizeof e->dense[d]);
                e->dense[d].norm = RF_NORM_NONE;
                e->dense[d].scale = 1;
            }
        } else {
            float *x = o->dense; /* the training rows' values, gathered when they are not the leading rows */
            if (role && !(x = malloc((a ? a : 1) * (size_t)D * sizeof *x))) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t i = 0, w = 0; role && i < n; i++)
                if (TRAIN_ROW(i)) memcpy(x + w++ * (size_t)D, o->dense + i * (size_t)D, (size_t)D * sizeof *x);
            rf_status s2 = rf_dense_fit_all_(x, a, D, norm, sc->fill, sc->fill_value, e->dense);
            if (role) free(x);
            if (s2) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
        }
        int apply = sc->fill != RF_FILL_ERROR;
        for (int d = 0; d < D; d++) apply |= e->dense[d].norm != RF_NORM_NONE;
        if (apply) {
            const rf_dense_enc *de = e->dense;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) {
                float *x = o->dense + i * (size_t)D;
                for (int d = 0; d < D; d++) x[d] = dense_apply(isnan(x[d]) ? de[d].fill_value : x[d], &de[d]);
            }
        }
    }
done:
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        free(cnt[f]);
        free(map[f]);
    }
    return st;
}
