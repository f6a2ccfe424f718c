/* balance_emb.c - what the balancing methods share: the Gram matrix and the weighted sum of
 * the per-task row-sparse embedding gradients, and the shared-parameter mask. */
#include <stdlib.h>
#include <string.h>

#include "nn/balance_impl.h"
#include "nn/model_impl.h"

void rf_balance_emb_gram_(rf_grads *const *pt, int K, double *M)
{
    for (int k = 0; k < K; k++)
        for (int l = k; l < K; l++) {
            const rf_grads *a = pt[k], *b = pt[l];
            int E = a->E;
            double s = 0;
            for (size_t i = 0; i < a->n_rows; i++) {
                int32_t j = b->slot[a->rows[i]];
                if (j < 0) continue;
                const float *x = a->g + i * (size_t)E, *y = b->g + (size_t)j * E;
                for (int e = 0; e < E; e++) s += (double)x[e] * y[e];
            }
            M[k * K + l] += s;
            if (l != k) M[l * K + k] += s;
        }
}

rf_status rf_balance_emb_combine_(rf_grads *out, rf_grads *const *pt, int K, const double *w, rf_error *err)
{
    size_t need = 0;
    for (int k = 0; k < K; k++) need += pt[k]->n_rows;
    if (out->n_rows) return rf_errorf(err, RF_EINTERNAL, "balance: the combined embedding set is not empty");
    int E = out->E;
    if (need > out->cap || !out->rows) {
        uint32_t *nr = realloc(out->rows, (need ? need : 1) * sizeof *nr);
        if (nr) out->rows = nr;
        float *ng = nr ? realloc(out->g, (need ? need : 1) * (size_t)E * sizeof *ng) : NULL;
        if (!nr || !ng) return rf_errorf(err, RF_ENOMEM, "out of memory combining embedding gradients");
        out->g = ng;
        out->cap = need;
    }
    for (int k = 0; k < K; k++) {
        const rf_grads *a = pt[k];
        float wk = w ? (float)w[k] : 1.0f;
        for (size_t i = 0; i < a->n_rows; i++) {
            uint32_t r = a->rows[i];
            int32_t s = out->slot[r];
            const float *x = a->g + i * (size_t)E;
            if (s < 0) {
                s = (int32_t)out->n_rows++;
                out->slot[r] = s;
                out->rows[s] = r;
                float *d = out->g + (size_t)s * E;
                for (int e = 0; e < E; e++) d[e] = wk * x[e];
            } else {
                float *d = out->g + (size_t)s * E;
                for (int e = 0; e < E; e++) d[e] += wk * x[e];
            }
        }
    }
    return RF_OK;
}

unsigned char *rf_balance_shared_mask_(const rf_model *m, size_t *n_shared)
{
    size_t n = m->n_params, c = 0;
    unsigned char *sh = calloc(n ? n : 1, 1);
    int ng = rf_model_param_groups(m, NULL, 0);
    rf_param_group *gr = calloc((size_t)(ng > 0 ? ng : 1), sizeof *gr);
    if (!sh || !gr) {
        free(sh);
        free(gr);
        return NULL;
    }
    rf_model_param_groups(m, gr, ng);
    for (int i = 0; i < ng; i++) {
        uint32_t t = gr[i].tasks;
        if (gr[i].emb || !(t & (t - 1))) continue; /* embeddings; one task or none */
        for (size_t r = 0; r < gr[i].rows; r++)
            for (size_t q = 0; q < gr[i].cols; q++) sh[gr[i].off + r * gr[i].ld + q] = 1;
    }
    for (size_t i = 0; i < n; i++) c += sh[i];
    if (n_shared) *n_shared = c;
    free(gr);
    return sh;
}
