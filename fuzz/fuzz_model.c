/* fuzz_model.c - the model-file loader (rf_model_load). The header's payload length and both
 * checksums are recomputed first, so mutations reach the section parsers instead of stopping
 * at the checksum. */
#include <xxhash.h>

#include "fuzz_util.h"
#include "resflow/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    if (size >= 64 && memcmp(b, RF_MODEL_MAGIC, 8) == 0) { /* reseal (modelfile.h's layout) */
        put64(b + 16, size - 64);
        put64(b + 24, XXH64(b + 64, size - 64, 0));
        put64(b + 56, XXH64(b, 56, 0));
    }
    char path[64];
    int fd = fuzz_file(b, size, path, sizeof path);
    free(b);
    if (fd < 0) return 0;
    rf_loaded_model lm;
    rf_error err;
    rf_error_clear(&err);
    if (rf_model_load(path, &lm, &err) == RF_OK) rf_loaded_model_free(&lm);
    close(fd);
    return 0;
}
