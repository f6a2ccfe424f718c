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

typedef struct {
    char source[512];   /* "synth" or a path to a CSV/TSV file */
    char valid[512];    /* optional separate validation file */
    char test[512];     /* optional separate test file */
    float valid_frac;   /* fraction of source rows used for validation when valid is "" */
    float test_frac;    /* fraction of source rows used for test when test is "" */
    uint64_t split_seed;
    rf_schema schema;   /* columns (for CSV sources) */
    rf_synth_opts synth;
} rf_data_cfg;

#ifdef __cplusplus
}
#endif
#endif
