/* bench_data.h - the reference data of bench_train.c and bench_balance.c: rows x F categorical
 * ids drawn uniformly from [0, vocab) with a fixed seed (12345), fields c0..c{F-1}, labels click
 * and order. A row clicks with probability p_odd when its first field's id is odd, else p_even
 * (equal rates: the labels carry no signal; unequal: the tasks have something to learn); a click
 * orders with probability 0.1. The caller frees the dataset (rf_dataset_free); NULL out of
 * memory. */
#ifndef RESFLOW_BENCH_DATA_H
#define RESFLOW_BENCH_DATA_H

#include <stdio.h>

#include "core/rng.h"
#include "resflow/dataset.h"

static inline rf_dataset *bench_ref_data(long rows, int F, uint32_t vocab, double p_even, double p_odd)
{
    rf_dataset *ds = rf_dataset_alloc((size_t)rows, F, 0, 2);
    if (!ds) return NULL;
    rf_rng r;
    rf_rng_seed(&r, 12345);
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "c%d", f);
        ds->fields[f].vocab = vocab;
    }
    snprintf(ds->label_names[0], RF_NAME_MAX, "click");
    snprintf(ds->label_names[1], RF_NAME_MAX, "order");
    for (long i = 0; i < rows; i++) {
        for (int f = 0; f < F; f++) ds->cat[i * F + f] = (uint32_t)rf_rng_below(&r, vocab);
        float c = rf_rng_uniform(&r) < (ds->cat[i * F] % 2 ? p_odd : p_even), o = c && rf_rng_uniform(&r) < 0.1;
        ds->labels[i * 2] = c;
        ds->labels[i * 2 + 1] = o;
    }
    return ds;
}

#endif
