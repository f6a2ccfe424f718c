/* synth.h - the log simulator (docs/simulator.md). */
#ifndef RESFLOW_SYNTH_H
#define RESFLOW_SYNTH_H

#include "dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Simulator ------------------------------------------------------------------------- */
typedef enum {
    RF_SYNTH_SEARCH = 0,   /* e-commerce search log: click -> (cart ->) order, order counts */
    RF_SYNTH_KUAIRAND = 1, /* short-video feed: click -> long_view -> like -> follow/comment/forward,
                              play time */
    RF_SYNTH_RATING = 2,   /* movie ratings 1..5 (bounded regression) and rating >= k labels */
    RF_SYNTH_ECOM = 3      /* e-commerce search log from docs/simulator.md's story: click -> (cart ->)
                              order, retrieval + production ranker, counterfactual labels cf_* */
} rf_synth_preset;

typedef struct {
    size_t rows;          /* impressions */
    uint64_t seed;
    int tasks;            /* search, ecom: 2 (click, order) or 3 (click, cart, order), entire-space */
    uint32_t n_users, n_items, n_queries;
    float ctr;            /* target mean click rate, e.g. 0.04 */
    float cvr;            /* target mean P(order | click), e.g. 0.02 */
    float cart_rate;      /* 3-task: target mean P(cart | click) */
    int list_len;         /* items per query list (position bias) */
    int preset;           /* rf_synth_preset */
    int threads;          /* generation threads (0 = the caller's OpenMP default); the log is the
                             same for any number */
    int order_counts;     /* search: also the label order_count (units ordered, 0 if none) */
} rf_synth_opts;

RF_API rf_synth_opts rf_synth_default(void);
/* Generate a simulated log in memory (docs/simulator.md); truth holds true probabilities
 * (expected values for count/numeric labels), group holds the list/request id. */
RF_API rf_status rf_synth_generate(const rf_synth_opts *o, rf_dataset **out, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
