/* fuzz_request.c - the serving request parser (rf_serve_parse_request): any bytes, with and
 * without a column list and a candidate limit; and the fast path (reqfast.c) against the jansson
 * parser, the reference: whatever the fast path takes, jansson takes and reads the same. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "resflow/serve_http.h"
#include "serve/reqparse_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cols[] = {"user", "item", "query", "price", NULL};
    for (int mode = 0; mode < 2; mode++) {
        rf_serve_parsed p;
        rf_error err;
        rf_error_clear(&err);
        if (rf_serve_parse_request((const char *)data, size, mode ? cols : NULL, mode ? 4 : 0, mode ? 8 : 0, &p,
                                   &err) == RF_OK)
            rf_serve_parsed_free(&p);
    }
    rf_serve_parsed f, j;
    rf_error err;
    rf_error_clear(&err);
    if (rf_req_fast_((const char *)data, size, cols, 4, 8, &f)) {
        if (rf_req_slow_((const char *)data, size, cols, 4, 8, &j, &err) != RF_OK || !rf_req_same_(&f, &j)) abort();
        rf_serve_parsed_free(&j);
        rf_serve_parsed_free(&f);
    }
    return 0;
}
