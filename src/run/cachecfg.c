/* cachecfg.c - the dataset cache (cache.h) of a whole configuration: the hash of the keys that
 * decide a cache's content, rf_cache_build/rf_cache_check for an rf_config, and a
 * configuration's splits read from its cache (contracts in pipeline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "core/logf.h"
#include "resflow/cache.h"
#include "resflow/config.h"
#include "resflow/pipeline.h"

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Hash of everything that decides the cache content: the `data:` section of the resolved
 * configuration (without the cache and shuffle keys), the task labels and skip_bad_rows. */
static uint64_t config_hash(const rf_config *cfg)
{
    rf_config *c = malloc(sizeof *c);
    if (!c) return 0;
    *c = *cfg;
    memset(c->data.schema.cache, 0, sizeof c->data.schema.cache);
    c->data.schema.cache_spill = 0;
    c->data.schema.shuffle = 0;
    c->data.schema.shuffle_block = 0;
    c->data.schema.shuffle_window = 0;
    char *text = rf_config_dump(c);
    free(c);
    XXH3_state_t *s = XXH3_createState();
    if (!text || !s) {
        free(text);
        if (s) XXH3_freeState(s);
        return 0;
    }
    XXH3_64bits_reset(s);
    const char *d = strstr(text, "\ndata:\n");
    if (d) {
        const char *e = d + 7;
        while (*e && !(e[0] == '\n' && e[1] && e[1] != ' ' && e[1] != '#')) e++;
        XXH3_64bits_update(s, d, (size_t)(e - d));
    }
    free(text);
    char line[RF_SPEC_MAX + 64];
    for (int k = 0; k < cfg->K; k++) {
        int n = snprintf(line, sizeof line, "label %d %s\n", k, cfg->tasks[k].label);
        XXH3_64bits_update(s, line, (size_t)n);
    }
    int n = snprintf(line, sizeof line, "skip_bad_rows %d version %d\n", cfg->train.skip_bad_rows, RF_CACHE_VERSION);
    XXH3_64bits_update(s, line, (size_t)n);
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return h;
}

void rf_cache_args(const rf_config *cfg, rf_data_cfg *data, rf_cache_opts *o)
{
    rf_config c = *cfg;
    rf_schema_from_tasks(&c);
    *data = c.data;
    memset(o, 0, sizeof *o);
    o->config_hash = config_hash(cfg);
    o->skip_bad_rows = cfg->train.skip_bad_rows;
    o->threads = cfg->train.threads;
}

rf_status rf_cache_build_cfg(const rf_config *cfg, const char *path, rf_log_fn log, void *ud,
                             rf_cache_info *info, rf_error *err)
{
    rf_data_cfg data;
    rf_cache_opts o;
    rf_cache_args(cfg, &data, &o);
    return rf_cache_build(&data, &o, path, log, ud, info, err);
}

rf_status rf_cache_check_cfg(const rf_config *cfg, const char *path, rf_error *err)
{
    rf_data_cfg data;
    rf_cache_opts o;
    rf_cache_args(cfg, &data, &o);
    return rf_cache_check(&data, &o, path, err);
}

/* Rows [lo, hi) of the slice r of N of n rows starting at row `at` of a cache part. */
static rf_status verify_slice(rf_cache *c, int part, size_t at, size_t n, int r, int N, rf_error *err)
{
    size_t lo = n * (size_t)r / (size_t)N, hi = n * (size_t)(r + 1) / (size_t)N;
    return rf_cache_verify_rows(c, part, at + lo, at + hi, err);
}

/* Map the cache and verify what process r of N reads (all of it for one process), then split. */
static rf_status open_split(const rf_config *cfg, const char *path, int r, int N, rf_splits *out, rf_dataset **valid,
                            rf_dataset **test, rf_error *err)
{
    rf_cache *c;
    rf_dataset *all = NULL;
    rf_status st = rf_cache_map(path, &c, err);
    if (st) return st;
    if (N <= 1) st = rf_cache_verify(c, err);
    if (!st) st = rf_cache_datasets(c, &all, valid, test, &out->enc, err);
    if (!st) st = rf_data_split(cfg, all, out, err);
    if (!st && N > 1) {
        /* process r: its shard of the training rows and its slices of the validation and test
         * rows (rf_dist_create, rf_dist_evaluate); a random split gathers rows from the whole
         * source, so then the source is verified whole */
        size_t ntr = out->train->n, nva = *valid ? 0 : out->valid->n;
        if (cfg->data.split == RF_SPLIT_RANDOM) st = rf_cache_verify_rows(c, 0, 0, rf_cache_part_rows(c, 0), err);
        else if (!(st = verify_slice(c, 0, 0, ntr, r, N, err)) && !(st = verify_slice(c, 0, ntr, nva, r, N, err)))
            st = *test ? RF_OK : verify_slice(c, 0, ntr + nva, out->test->n, r, N, err);
        if (!st && *valid) st = verify_slice(c, 1, 0, (*valid)->n, r, N, err);
        if (!st && *test) st = verify_slice(c, 2, 0, (*test)->n, r, N, err);
    }
    rf_cache_verified(c, &out->cache_verified, &out->cache_bytes);
    rf_cache_close(c);
    rf_dataset_free(all);
    if (st) {
        rf_dataset_free(*valid);
        rf_dataset_free(*test);
        *valid = *test = NULL;
        uint64_t v = out->cache_verified, b = out->cache_bytes;
        rf_splits_free(out);
        out->cache_verified = v, out->cache_bytes = b;
    }
    return st;
}

rf_status rf_cache_load_splits(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud, rf_error *err)
{
    return rf_cache_load_shard(cfg, 0, 1, out, log, ud, err);
}

rf_status rf_cache_load_shard(const rf_config *cfg, int rank, int nproc, rf_splits *out, rf_log_fn log, void *ud,
                              rf_error *err)
{
    memset(out, 0, sizeof *out);
    if (nproc < 1 || rank < 0 || rank >= nproc)
        return rf_errorf(err, RF_EUSAGE, "cache: process %d of %d", rank, nproc);
    const char *path = cfg->data.schema.cache;
    rf_data_cfg data;
    rf_cache_opts co;
    rf_cache_args(cfg, &data, &co);
    rf_error why;
    rf_error_clear(&why);
    rf_status st = rf_cache_check(&data, &co, path, &why);
    if (st) {
        char msg[1400];
        logf_(log, ud, "cache %s: %s; building it", path,
              st == RF_EIO ? "not found" : rf_error_format(&why, msg, sizeof msg));
        if ((st = rf_cache_build(&data, &co, path, log, ud, NULL, err))) return st;
    }
    double t0 = now_sec();
    rf_dataset *valid = NULL, *test = NULL;
    rf_error bad;
    rf_error_clear(&bad);
    if ((st = open_split(cfg, path, rank, nproc, out, &valid, &test, &bad)) == RF_EFORMAT && rank == 0) {
        /* fresh by its metadata but damaged data (checksum, ids): build it again (the first
         * process only: in a data-parallel run the others open it after it) */
        char msg[1400];
        logf_(log, ud, "cache %s: %s; building it", path, rf_error_format(&bad, msg, sizeof msg));
        if ((st = rf_cache_build(&data, &co, path, log, ud, NULL, err))) return st;
        st = open_split(cfg, path, rank, nproc, out, &valid, &test, err);
    } else if (st && err) {
        *err = bad;
    }
    if (st) return st;
    if (!st && valid) {
        rf_dataset_free(out->valid);
        out->valid = valid;
        valid = NULL;
    }
    if (!st && test) {
        rf_dataset_free(out->test);
        out->test = test;
        test = NULL;
    }
    rf_dataset_free(valid);
    rf_dataset_free(test);
    if (st) {
        rf_splits_free(out);
        return st;
    }
    if (out->train->n == 0) {
        rf_splits_free(out);
        return rf_errorf(err, RF_EDATA, "no training rows left after the valid/test split");
    }
    const rf_schema *s = &cfg->data.schema;
    rf_dataset *tr = out->train;
    int block = s->shuffle != RF_SHUFFLE_FULL;
    tr->shuffle_block = block ? (s->shuffle_block ? s->shuffle_block : 65536) : 0;
    tr->shuffle_window = s->shuffle_window > 0 ? s->shuffle_window : 8;
    double row_bytes = tr->n ? rf_dataset_bytes(tr) / (double)tr->n : 0;
    double mapped = rf_dataset_bytes(out->train) + rf_dataset_bytes(out->valid) + rf_dataset_bytes(out->test);
    double window = block ? row_bytes * (double)tr->shuffle_block * tr->shuffle_window : rf_dataset_bytes(tr);
    if (window > rf_dataset_bytes(tr)) window = rf_dataset_bytes(tr);
    double order = block ? 8.0 * tr->shuffle_block * tr->shuffle_window : 8.0 * (double)tr->n;
    logf_(log, ud,
          "data: cache %s (%s %.1f of %.1f MB verified in %.2f s), train %zu | valid %zu | test %zu rows, %.1f MB "
          "mapped; training reads %s: resident data about %.1f MB + %.1f MB row order",
          path, nproc > 1 ? "this process's rows:" : "all", out->cache_verified / 1e6, out->cache_bytes / 1e6,
          now_sec() - t0, out->train->n, out->valid->n, out->test->n, mapped / 1e6,
          block ? "shuffled blocks" : "all rows shuffled", window / 1e6, order / 1e6);
    return RF_OK;
}
