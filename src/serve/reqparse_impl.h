/* reqparse_impl.h - the storage behind a parsed request (serve_http.h) and the fast path of the
 * /v1/score parser, shared by reqparse.c (jansson: the reference, and every error) and
 * reqfast.c (an allocation-light tokenizer for well-formed requests). Internal. */
#ifndef RESFLOW_SERVE_REQPARSE_IMPL_H
#define RESFLOW_SERVE_REQPARSE_IMPL_H

#include "resflow/serve_http.h"

typedef struct {
    void *root;                   /* jansson's tree (json_t *), or NULL */
    const char **names, **values; /* all pairs: every object's, each object's contiguous */
    rf_features *cands;
    char *nums;                   /* jansson: formatted numbers; fast path: the one block */
    char *reals;                  /* fast path: numbers written with %.17g */
} rf_req_storage_;

void rf_req_storage_free_(rf_req_storage_ *st);

/* Parse a /v1/score body as rf_serve_parse_request does, without a tree and with one allocation
 * (two with non-integer numbers). Returns 1 with out filled exactly as the jansson parser fills
 * it, or 0 (out zeroed) for anything it does not take: every error, a body it cannot be sure
 * about (no column list, an integer of 19+ digits, ...), out of memory; the caller then runs the
 * jansson parser, which gives the answer and the error message. */
int rf_req_fast_(const char *body, size_t n, const char *const *columns, int n_columns, int max_candidates,
                 rf_serve_parsed *out);

/* The reference: rf_serve_parse_request with jansson only (every error's message comes from it). */
rf_status rf_req_slow_(const char *body, size_t n, const char *const *columns, int n_columns, int max_candidates,
                       rf_serve_parsed *out, rf_error *err);

/* 1 when two parsed requests say the same: top, the context's and every candidate's pairs (names
 * and values as strings, NULL alike). For the tests and the fuzz target. */
int rf_req_same_(const rf_serve_parsed *a, const rf_serve_parsed *b);

#endif
