/* fuzz_cache.c - the dataset cache reader (rf_cache_open: header, metadata, mapped arrays).
 * The file size, metadata length, the version-2 chunk table (when the metadata ends with a table
 * of the size the header's chunk shift implies) and the three checksums are recomputed first
 * (docs/formats.md, "Dataset cache"), so mutations reach the metadata parser, the per-chunk
 * verification and the array checks. */
#include <xxhash.h>

#include "fuzz_util.h"
#include "resflow/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    if (size >= 4096 && memcmp(b, RF_CACHE_MAGIC, 8) == 0) {
        uint64_t off = get64(b + 24);
        put64(b + 16, size);
        if (off >= 4096 && off <= size) {
            uint32_t shift = (uint32_t)b[64] | (uint32_t)b[65] << 8 | (uint32_t)b[66] << 16 | (uint32_t)b[67] << 24;
            if (shift >= 12 && shift <= 22) { /* version 2: rewrite a well-placed chunk table */
                uint64_t data = off - 4096, cs = (uint64_t)1 << shift, C = (data + cs - 1) / cs;
                if ((C + 1) * 8 <= size - off && get64(b + size - (C + 1) * 8) == C)
                    for (uint64_t i = 0; i < C; i++) {
                        uint64_t lo = 4096 + i * cs, n = lo + cs <= off ? cs : off - lo;
                        put64(b + size - (C - i) * 8, XXH3_64bits(b + lo, n));
                    }
            }
            put64(b + 32, size - off);
            put64(b + 40, XXH64(b + off, size - off, 0));
            put64(b + 48, XXH3_64bits(b + 4096, off - 4096));
        }
        put64(b + 4088, XXH64(b, 4088, 0));
    }
    char path[64];
    int fd = fuzz_file(b, size, path, sizeof path);
    free(b);
    if (fd < 0) return 0;
    rf_dataset *src = NULL, *va = NULL, *te = NULL;
    rf_encoders *enc = NULL;
    rf_error err;
    rf_error_clear(&err);
    if (rf_cache_open(path, &src, &va, &te, &enc, &err) == RF_OK) {
        rf_dataset_free(src);
        rf_dataset_free(va);
        rf_dataset_free(te);
        rf_encoders_free(enc);
    }
    close(fd);
    return 0;
}
