/* epi.c - the fused scoring write-back's link table and its per-layer parameters (epi.h). */
#include <stdlib.h>

#include "nn/epi.h"
#include "nn/model_impl.h"

rf_epi_links *rf_epi_links_create(const rf_model *m)
{
    rf_epi_links *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    int K = m->K, ordered = 1;
    for (int k = 0; k < K; k++) ordered &= m->parent[k] < k;
    for (int l = 0; l < m->L && ordered; l++) {
        int H = m->H[l];
        if (l == 0 && H % 16) continue;
        int nv = l == 0 ? (K * H + 15) / 16 : (H + 15) / 16, per = l == 0 ? 1 : K;
        if (!(t->link[l] = calloc((size_t)nv * per, sizeof(int)))) {
            rf_epi_links_free(t);
            return NULL;
        }
        for (int u = 0; u < per; u++)
            for (int v = 0; v < nv; v++) {
                int k = l == 0 ? 16 * v / H : u, p = m->parent[k];
                t->link[l][u * nv + v] = p >= 0 ? (p - k) * H : 0;
            }
    }
    return t;
}

void rf_epi_links_free(rf_epi_links *t)
{
    if (!t) return;
    for (int l = 0; l < RF_MAX_LAYERS; l++) free(t->link[l]);
    free(t);
}

int rf_epi_of(const rf_epi_links *t, const rf_model *m, int l, int k, int links, rf_epi *ep)
{
    if (links && !t->link[l]) return -1;
    int H = m->H[l];
    size_t off = l == 0 ? 0 : (size_t)k * H;
    const rf_layer_params *lp = &m->layer[l];
    *ep = (rf_epi){lp->b + off, lp->alpha ? lp->alpha + off : NULL,
                   links ? t->link[l] + (l == 0 ? 0 : (size_t)k * ((H + 15) / 16)) : NULL};
    return 0;
}
