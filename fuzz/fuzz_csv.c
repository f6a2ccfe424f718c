/* fuzz_csv.c - the text loader (reader rounds, NUL check, tokenizer, number parsing, vocabulary
 * fitting, splits) on any bytes: data[0] picks the options (bit 0: a fixed header line is put
 * before the rest, so most inputs get past the column lookup; bit 1: --skip-bad-rows; bit 2:
 * tab-separated; bit 3: a multi-valued field). */
#include "fuzz_util.h"
#include "resflow/config.h"
#include "resflow/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned mode = data[0];
    data++, size--;
    char sep = (mode & 4) ? '\t' : ',';
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "a%cb%cx%cclick%cbuy\n", sep, sep, sep, sep);
    unsigned char *b = malloc(size + (size_t)hl + 1);
    if (!b) return 0;
    size_t n = 0;
    if (mode & 1) memcpy(b, hdr, (size_t)hl), n = (size_t)hl;
    memcpy(b + n, data, size);
    n += size;
    char path[64];
    int fd = fuzz_file(b, n, path, sizeof path);
    free(b);
    if (fd < 0) return 0;
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data:\n  source: \"%s\"\n  delim: \"%s\"\n  categorical: [a%s, b]\n  dense: [x]\n"
             "  valid_frac: 0.2\n  test_frac: 0.2\n"
             "tasks:\n  - {name: ctr, label: click}\n  - {name: cvr, label: buy, parent: ctr}\n"
             "train: {threads: 1, skip_bad_rows: %s}\n",
             path, (mode & 4) ? "\\t" : ",", (mode & 8) ? ":|" : "", (mode & 2) ? "true" : "false");
    rf_config *cfg = malloc(sizeof *cfg);
    rf_error err;
    rf_error_clear(&err);
    if (cfg) {
        rf_config_default(cfg);
        if (rf_config_load_string(cfg, yaml, strlen(yaml), "fuzz", &err) == RF_OK &&
            rf_config_validate(cfg, &err) == RF_OK) {
            rf_schema_from_tasks(cfg);
            rf_splits sp;
            if (rf_data_load(cfg, &sp, NULL, NULL, &err) == RF_OK) rf_splits_free(&sp);
        } else {
            fprintf(stderr, "fuzz_csv: the target's own configuration failed: %s\n", err.msg);
            abort();
        }
        free(cfg);
    }
    close(fd);
    return 0;
}
