/* fuzz_csv.c - the text loader (reader rounds, gzip/zstd input, NUL check, tokenizer, quoting,
 * number parsing, vocabulary fitting, the position split) and the predictions reader's header
 * scan (rf_table_header; its rows go through the same loader) on any bytes. data[0] picks the
 * options: bit 0: a fixed header line is put before the rest, so most inputs get past the
 * column lookup; bit 1: --skip-bad-rows; bit 2: tab-separated; bit 3: a multi-valued field;
 * bits 4-5: the text as it is (0), gzip-compressed (1), as two gzip members (2: the split is at
 * the middle), zstd-compressed (3). The loader reads in rounds of 4 KiB (its smallest buffer),
 * so longer inputs cross round boundaries and grow the buffer.
 *
 * Fast by construction (about 70 executions per second before, with a configuration parsed,
 * a memfd made and the default 4 MiB read buffer faulted in per input): the 16 configurations
 * are parsed once, the input goes into one memfd that is rewritten in place, and the loader runs
 * with one thread (no pool) and 4 KiB rounds: the same rf_load_csv + rf_data_split that
 * rf_data_load runs for a text source. */
#include <zlib.h>
#include <zstd.h>

#include "fuzz_util.h"
#include "resflow/config.h"
#include "resflow/pipeline.h"
#include "resflow/rank.h"

typedef struct {
    int fd;
    char path[64];
    rf_config *cfg[16]; /* by data[0] & 15 */
} fuzz_csv_state;

static fuzz_csv_state *setup(void)
{
    fuzz_csv_state *s = calloc(1, sizeof *s);
    if (!s || (s->fd = fuzz_file("", 0, s->path, sizeof s->path)) < 0) abort();
    for (unsigned mode = 0; mode < 16; mode++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "data:\n  source: \"%s\"\n  delim: \"%s\"\n  categorical: [a%s, b]\n  dense: [x]\n"
                 "  valid_frac: 0.2\n  test_frac: 0.2\n"
                 "tasks:\n  - {name: ctr, label: click}\n  - {name: cvr, label: buy, parent: ctr}\n"
                 "train: {threads: 1, skip_bad_rows: %s}\n",
                 s->path, (mode & 4) ? "\\t" : ",", (mode & 8) ? ":|" : "", (mode & 2) ? "true" : "false");
        rf_config *cfg = malloc(sizeof *cfg);
        rf_error err;
        rf_error_clear(&err);
        if (!cfg) abort();
        rf_config_default(cfg);
        if (rf_config_load_string(cfg, yaml, strlen(yaml), "fuzz", &err) || rf_config_validate(cfg, &err)) {
            fprintf(stderr, "fuzz_csv: the target's own configuration failed: %s\n", err.msg);
            abort();
        }
        rf_schema_from_tasks(cfg);
        s->cfg[mode] = cfg;
    }
    return s;
}

/* Compress [p, p + n) as gzip (members: 1 or 2) or zstd (members 0) into a new buffer. */
static unsigned char *compress_text(const unsigned char *p, size_t n, int members, size_t *out_n)
{
    size_t cap = (members ? deflateBound(NULL, (uLong)n) : ZSTD_compressBound(n)) + 64, len = 0;
    unsigned char *b = malloc(cap);
    if (!b) return NULL;
    if (!members) {
        len = ZSTD_compress(b, cap, p, n, 1);
        if (ZSTD_isError(len)) len = 0;
    }
    for (int m = 0; m < members; m++) {
        size_t lo = m ? n / 2 : 0, hi = members == 2 && !m ? n / 2 : n;
        z_stream z = {0};
        if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) break;
        z.next_in = (unsigned char *)(p + lo);
        z.avail_in = (uInt)(hi - lo);
        z.next_out = b + len;
        z.avail_out = (uInt)(cap - len);
        int rc = deflate(&z, Z_FINISH);
        len = cap - z.avail_out;
        deflateEnd(&z);
        if (rc != Z_STREAM_END) break;
    }
    *out_n = len;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_csv_state *s;
    if (!s) s = setup();
    if (size < 1) return 0;
    unsigned mode = data[0];
    data++, size--;
    const rf_config *cfg = s->cfg[mode & 15];
    char sep = (mode & 4) ? '\t' : ',';
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "a%cb%cx%cclick%cbuy\n", sep, sep, sep, sep);
    unsigned char *b = malloc(size + (size_t)hl + 1);
    if (!b) return 0;
    size_t n = 0;
    if (mode & 1) memcpy(b, hdr, (size_t)hl), n = (size_t)hl;
    memcpy(b + n, data, size);
    n += size;
    int packing = (mode >> 4) & 3;
    if (packing) {
        size_t cn = 0;
        unsigned char *c = compress_text(b, n, packing == 3 ? 0 : packing, &cn);
        free(b);
        if (!c) return 0;
        b = c;
        n = cn;
    }
    int ok = ftruncate(s->fd, 0) == 0 && pwrite(s->fd, b, n, 0) == (ssize_t)n;
    free(b);
    if (!ok) return 0;
    /* the predictions reader (eval/fusion --predictions): its header scan, then the same loader */
    char delim, **names = NULL;
    int ncols = 0;
    rf_error herr;
    rf_error_clear(&herr);
    if (rf_table_header(cfg->data.source, &delim, &names, &ncols, &herr) == RF_OK && (ncols < 1 || !names[0])) abort();
    free(names);
    rf_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.skip_bad_rows = cfg->train.skip_bad_rows;
    lo.threads = 1;
    lo.block_bytes = 4096;
    lo.valid_frac = cfg->data.valid_frac;
    lo.test_frac = cfg->data.test_frac;
    rf_encoders *enc = NULL;
    rf_dataset *all = NULL;
    rf_error err;
    rf_error_clear(&err);
    if (rf_load_csv(cfg->data.source, &cfg->data.schema, &enc, &lo, &all, &err) == RF_OK) {
        rf_splits sp;
        memset(&sp, 0, sizeof sp);
        if (rf_data_split(cfg, all, &sp, &err) == RF_OK) sp.enc = enc, enc = NULL;
        rf_splits_free(&sp);
        rf_dataset_free(all);
    }
    rf_encoders_free(enc);
    return 0;
}
