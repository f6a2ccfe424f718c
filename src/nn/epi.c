/* epi.c - the link offsets of the fused scoring write-back (epi.h). */
#include <stdlib.h>

#include "nn/epi.h"
#include "nn/model_impl.h"

int *rf_epi_links(const rf_model *m, int l, int *oom)
{
    int K = m->K, H = m->H[l];
    *oom = 0;
    for (int k = 0; k < K; k++)
        if (m->parent[k] >= k) return NULL;
    if (l == 0 && H % 16) return NULL;
    int nv = l == 0 ? (K * H + 15) / 16 : (H + 15) / 16, per = l == 0 ? 1 : K;
    int *link = calloc((size_t)nv * per, sizeof *link);
    if (!link) {
        *oom = 1;
        return NULL;
    }
    for (int t = 0; t < per; t++)
        for (int v = 0; v < nv; v++) {
            int k = l == 0 ? 16 * v / H : t, p = m->parent[k];
            link[t * nv + v] = p >= 0 ? (p - k) * H : 0;
        }
    return link;
}
