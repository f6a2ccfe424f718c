/* fuzz_request.c - the serving request parser (rf_serve_parse_request): any bytes, with and
 * without a column list and a candidate limit. */
#include "fuzz_util.h"
#include "resflow/serve_http.h"

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
    return 0;
}
