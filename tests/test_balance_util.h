/* test_balance_util.h - helpers of the balancing tests (test_balance.c, test_balance_methods.c):
 * a small simulator data set, the shared-parameter mask of a model, a finiteness check. */
#ifndef RESFLOW_TEST_BALANCE_UTIL_H
#define RESFLOW_TEST_BALANCE_UTIL_H

#include "test_util.h"

#include "resflow/model.h"
#include "resflow/synth.h"

/* rows impressions of the search simulator (ctr 0.1, conversion rate cvr) from seed */
static inline rf_dataset *bal_sim(size_t rows, float cvr, uint64_t seed)
{
    return test_sim(rows, seed, 1000, 2000, 300, cvr);
}

/* rows impressions of the 3-task simulator (click -> cart -> order; ctr 0.1, cart 0.3, cvr 0.2) */
static inline rf_dataset *bal_sim3(size_t rows, uint64_t seed)
{
    rf_synth_opts o = test_sim_opts(rows, seed, 1000, 2000, 300, 0.2f);
    o.tasks = 3;
    o.cart_rate = 0.3f;
    return test_sim_gen(&o);
}

/* which dense parameters are shared (more than one task reaches them) */
static inline unsigned char *bal_shared_mask(const rf_model *m)
{
    size_t n = rf_model_info_of(m)->n_params;
    unsigned char *s = calloc(n, 1);
    int ng = rf_model_param_groups(m, NULL, 0);
    rf_param_group *gr = calloc((size_t)ng, sizeof *gr);
    rf_model_param_groups(m, gr, ng);
    for (int i = 0; i < ng; i++)
        if (!gr[i].emb && (gr[i].tasks & (gr[i].tasks - 1)))
            for (size_t r = 0; r < gr[i].rows; r++)
                for (size_t c = 0; c < gr[i].cols; c++) s[gr[i].off + r * gr[i].ld + c] = 1;
    free(gr);
    return s;
}

/* every parameter and embedding value finite */
static inline int bal_all_finite(const rf_model *m)
{
    const rf_model_info *in = rf_model_info_of(m);
    const float *p = rf_model_params(m), *em = rf_model_emb(m);
    for (size_t i = 0; i < in->n_params; i++)
        if (!isfinite(p[i])) return 0;
    for (size_t i = 0; i < in->n_emb_rows * (size_t)in->E; i++)
        if (!isfinite(em[i])) return 0;
    return 1;
}

#endif
