/* cmd_prepare.c - resflow prepare: build (or check) the binary dataset cache of a config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "resflow/cache.h"

static const char *prepare_help =
    "usage: resflow prepare [-c CONFIG.yaml] [--set KEY=VALUE]... [-o CACHE] [--check] [--force]\n"
    "\n"
    "Parse, join and encode the configured data once into a binary cache (docs/data.md): the\n"
    "source (and the data.valid/data.test files) with the encoders fitted on the training rows,\n"
    "in a versioned, checksummed, memory-mappable file. `resflow train` with data.cache set maps\n"
    "it instead of parsing text, streams the training rows in shuffled blocks with bounded\n"
    "memory, and rebuilds it when an input file or the data configuration has changed.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (data.* keys; see configs/)\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "  -o, --out FILE        the cache file (default: data.cache)\n"
    "      --check           only check: exit 0 if the cache is fresh, 6 if stale or damaged,\n"
    "                        3 if missing\n"
    "      --force           rebuild even if the cache is fresh\n"
    "      --skip-bad-rows   skip malformed input rows and count them\n"
    "      --threads N       parser threads (default: all cores)\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

int cmd_prepare(int argc, char **argv)
{
    int check = 0, force = 0, j = 0;
    for (int i = 0; i < argc; i++) { /* our own flags, then the common options */
        if (i > 0 && !strcmp(argv[i], "--check")) check = 1;
        else if (i > 0 && !strcmp(argv[i], "--force")) force = 1;
        else argv[j++] = argv[i];
    }
    argc = j;
    opts o;
    int rc = parse_opts("prepare", argc, argv, &o, prepare_help);
    if (rc) return rc;
    rf_config cfg;
    if ((rc = load_config(&o, &cfg))) return rc;
    const char *path = o.out ? o.out : cfg.data.schema.cache;
    if (!path[0]) return usage_error("prepare", "no cache file: give -o FILE or set data.cache");
    if (!strcmp(cfg.data.source, "synth"))
        return usage_error("prepare", "data.source is the simulator; set it to a file to cache");
    const char *ins[] = {o.config, cfg.data.source, cfg.data.valid, cfg.data.test};
    if (!check && (rc = check_output("prepare", path, ins, 4))) return rc;
    if (path != cfg.data.schema.cache) /* -o: the cache to build (never copied onto itself) */
        snprintf(cfg.data.schema.cache, sizeof cfg.data.schema.cache, "%s", o.out);
    path = cfg.data.schema.cache;
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_cache_check_cfg(&cfg, path, &e);
    if (check) {
        if (st) return die(&e);
        rf_dataset *s = NULL, *v = NULL, *t = NULL; /* the data too: checksum and id ranges */
        rf_encoders *enc = NULL;
        if (rf_cache_open(path, &s, &v, &t, &enc, &e)) return die(&e);
        rf_dataset_free(s);
        rf_dataset_free(v);
        rf_dataset_free(t);
        rf_encoders_free(enc);
        printf("%s: fresh\n", path);
        return 0;
    }
    if (!st && !force) {
        note("%s is up to date (use --force to rebuild)", path);
        return 0;
    }
    if (st && st != RF_EIO) {
        char buf[2048];
        note("rebuilding: %s", rf_error_format(&e, buf, sizeof buf));
    }
    note_threads(&cfg);
    rf_cache_info info;
    rf_error_clear(&e);
    if (rf_cache_build_cfg(&cfg, path, log_line, NULL, &info, &e)) return die(&e);
    size_t rows = info.rows[0] + info.rows[1] + info.rows[2];
    double mb = (double)info.input_bytes / 1e6, secs = info.seconds > 0 ? info.seconds : 1e-9;
    printf("prepared %s: %zu rows (source %zu, valid file %zu, test file %zu), fitted on %zu training rows\n",
           path, rows, info.rows[0], info.rows[1], info.rows[2], info.fit_rows);
    printf("input %.1f MB -> cache %.1f MB in %.2f s: %.1f MB/s, %.0f rows/s\n", mb, info.file_bytes / 1e6, secs,
           mb / secs, (double)rows / secs);
    if (info.bad_rows) printf("skipped %zu bad rows\n", info.bad_rows);
    if (info.filtered_rows) printf("data.filter removed %zu rows\n", info.filtered_rows);
    /* what training from it will keep in memory: the block-shuffle window of rows */
    double row_bytes = rows ? (double)info.file_bytes / (double)rows : 0;
    double window_rows = (double)(cfg.data.schema.shuffle_block ? cfg.data.schema.shuffle_block : 65536) *
                         (cfg.data.schema.shuffle_window > 0 ? cfg.data.schema.shuffle_window : 8);
    if (window_rows > (double)info.rows[0]) window_rows = (double)info.rows[0];
    printf("training from it keeps about %.1f MB of rows resident (data.shuffle_block x data.shuffle_window = "
           "%.0f rows) plus the model\n",
           row_bytes * window_rows / 1e6, window_rows);
    return 0;
}
