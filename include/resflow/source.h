/* source.h - where a run's data comes from (the `data:` section of a configuration): the
 * simulator or a text file read with a schema, optional separate valid/test files, the position
 * split's fractions. Held by rf_config (config.h) as its `data` member; the data wing's own APIs
 * (cache.h) take it without the rest of a configuration. */
#ifndef RESFLOW_SOURCE_H
#define RESFLOW_SOURCE_H

#include "resflow.h"
#include "schema.h"
#include "synth.h"

#ifdef __cplusplus
extern "C" {
#endif

/* data.split: RF_SPLIT_POSITION holds out the last rows of the source (test last, validation
 * before it; rf_split_points); RF_SPLIT_RANDOM assigns each group (or row, without data.group)
 * by a seeded hash of its key (rf_split_roles), so a file sorted by user or time is still split
 * evenly; a group's rows stay together either way. */
typedef enum { RF_SPLIT_POSITION = 0, RF_SPLIT_RANDOM = 1 } rf_split_mode;

typedef struct {
    char source[512];   /* "synth" or a path to a CSV/TSV file */
    char valid[512];    /* optional separate validation file */
    char test[512];     /* optional separate test file */
    float valid_frac;   /* fraction of source rows used for validation when valid is "" */
    float test_frac;    /* fraction of source rows used for test when test is "" */
    uint64_t split_seed;
    rf_schema schema;   /* columns (for CSV sources) */
    rf_synth_opts synth;
    int split;          /* rf_split_mode (data.split): which source rows are valid/test */
} rf_data_cfg;

#ifdef __cplusplus
}
#endif
#endif
