/* cmd_train.c - resflow train: train one model from a config and save it. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli.h"
#include "progress.h"
#include "report_cli.h"
#include "resflow/dist.h"

/* ---- train ------------------------------------------------------------------------------ */

static const char *train_help =
    "usage: resflow train [-c CONFIG.yaml] [--set KEY=VALUE]... [-o MODEL] [options]\n"
    "\n"
    "Train a model from a YAML experiment config (default: the built-in simulator config).\n"
    "Validation metrics are printed every epoch; training early-stops on the validation split\n"
    "(train.monitor, train.patience) and keeps the best model; test metrics are printed at the end.\n"
    "On a terminal progress is one line rewritten in place (percent of the epoch, ETA, samples/s,\n"
    "loss); in a pipe or file it is a plain line every train.log_every steps.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (see docs/config.md, configs/)\n"
    "      --set KEY=VALUE   override one key (repeatable; wins over the file), e.g.\n"
    "                        --set model.type=nse --set train.lr=5e-4 --set model.hidden=[256,128]\n"
    "  -o, --out FILE        model file to write (default resflow.model)\n"
    "      --skip-bad-rows   skip malformed input rows and count them (default: stop at the first)\n"
    "      --threads N       threads (default: all cores; same as --set train.threads=N)\n"
    "      --json[=FILE]     also write the final metrics as JSON (to FILE; without FILE stdout\n"
    "                        carries the JSON only and the table goes to stderr)\n"
    "      --report DIR      also write DIR/report.html: training curves, test metrics,\n"
    "                        calibration per task (one self-contained page; docs/report.md)\n"
    "      --show-config     print the resolved configuration (YAML) to stderr first (it is\n"
    "                        stored in the model either way: resflow config -m MODEL)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -v, --verbose         progress and the resolved configuration\n"
    "  -h, --help            this help\n"
    "\n"
    "Data-parallel (a `make MPI=1` build): mpirun -np N resflow train ... splits every batch over\n"
    "N processes (docs/distributed.md); only rank 0 prints and writes the model.\n";

/* Data-parallel runs (`mpirun -np N resflow train`, dist.h): every process runs this; only rank
 * 0 logs, prints and writes. A failure every process reaches is agreed on (rf_comm_agree: rank 0
 * prints the failing rank's message, all return its code); a failure inside training, where the
 * others wait in a collective, is printed by its process, which then ends them all
 * (rf_comm_abort). Nothing is saved after a failure, so there is no partial model. */

/* 0 if every process got here with rc 0; else the lowest failing rank's code (it printed). */
static int agree_rc(rf_comm *c, int rc)
{
    rf_error e;
    rf_error_clear(&e);
    return (int)rf_comm_agree(c, (rf_status)rc, &e);
}

/* A library error every process reached: one message (rank 0's copy of the failing rank's). */
static int agree_die(rf_comm *c, rf_status st, rf_error *e)
{
    if (!(st = rf_comm_agree(c, st, e))) return 0;
    if (rf_comm_rank(c) == 0) die(e);
    return (int)st;
}

/* A collective check's failure (every process has the same error): rank 0 prints it. */
static int collective_die(rf_comm *c, rf_status st, const rf_error *e)
{
    if (st && rf_comm_rank(c) == 0) die(e);
    return (int)st;
}

/* A failure only this process may have seen: print it and stop every process. */
static int die_abort(rf_comm *c, const rf_error *e)
{
    int rc = die(e);
    fflush(stderr);
    rf_comm_abort(c, rc);
    return rc;
}

static void log_rank0(void *ud, const char *line)
{
    if (rf_comm_rank(ud) == 0) log_line(NULL, line);
}

/* The run's data: with a binary cache rank 0 first (it builds a missing or stale cache), then the
 * others map it; else every process at once. */
static int load_data(rf_comm *c, const rf_config *cfg, rf_splits *sp, rf_error *e)
{
    int first = rf_comm_size(c) > 1 && cfg->data.schema.cache[0];
    rf_status st = RF_OK;
    if (!first || rf_comm_rank(c) == 0) st = rf_data_load(cfg, sp, log_rank0, c, e);
    if (first) {
        if ((st = rf_comm_agree(c, st, e))) return collective_die(c, st, e); /* rank 0 failed: all stop */
        if (rf_comm_rank(c) > 0) st = rf_data_load(cfg, sp, NULL, NULL, e);
    }
    return agree_die(c, st, e);
}

/* Threads per process when several share a node: cores / processes on the node (>= 1). */
static void dist_threads(rf_comm *c, rf_config *cfg)
{
    int local = rf_comm_local_size(c), cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (local <= 1) return;
    if (cores < 1) cores = 1;
    if (cfg->train.threads <= 0) cfg->train.threads = cores / local > 0 ? cores / local : 1;
    else if (cfg->train.threads * local > cores && rf_comm_rank(c) == 0)
        fprintf(stderr, "warning: %d processes x train.threads %d on a node of %d cores: oversubscribed\n", local,
                cfg->train.threads, cores);
}

static int train_run(rf_comm *comm, const opts *op)
{
    int rank = rf_comm_rank(comm), nproc = rf_comm_size(comm);
    opts o = *op;
    if (rank > 0) g_quiet = 1;
    rf_config cfg;
    int rc = load_config(&o, &cfg);
    if (!rc) rc = check_data_paths(&o, &cfg);
    if ((rc = agree_rc(comm, rc))) return rc;
    rf_error e;
    rf_error_clear(&e);
    char *dump = rf_config_dump(&cfg);
    if (!dump) return die_abort(comm, &(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
    if (nproc > 1 && collective_die(comm, rf_comm_check_same(comm, dump, strlen(dump), "configuration", &e), &e)) {
        free(dump);
        return (int)e.code;
    }
    if (rank == 0) show_config(&o, &cfg);
    free(dump);
    const char *out = o.out ? o.out : "resflow.model";
    const char *ins[] = {o.config, cfg.data.source, cfg.data.valid, cfg.data.test};
    if (rank == 0) rc = check_output("train", out, ins, 4);
    if (rank == 0 && !rc && o.report && mkdirs(o.report)) {
        fprintf(stderr, "resflow: error: cannot create the report directory %s\n", o.report);
        rc = RF_EIO;
    }
    if ((rc = agree_rc(comm, rc))) return rc;
    dist_threads(comm, &cfg);
    note_threads(&cfg);
    if (nproc > 1) note("data-parallel: %d processes (%s), %d threads each", nproc, rf_comm_kind(), cfg.train.threads);
    rf_splits sp;
    if ((rc = load_data(comm, &cfg, &sp, &e))) return rc;
    note("split: train %zu | valid %zu | test %zu rows%s", sp.train->n, sp.valid->n, sp.test->n,
         sp.bad_rows ? " (some bad rows skipped)" : "");
    if (sp.bad_rows) note("skipped %zu bad rows", sp.bad_rows);
    rf_model *m = NULL;
    rf_status st = rf_regression_resolve(&cfg, sp.train, &e); /* thresholds and tasks (regression.h) */
    if (!st) st = rf_config_create_model(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e);
    if (!st) st = rf_dist_check_model(comm, m, &e);
    if ((rc = agree_die(comm, st, &e))) {
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    const rf_model_info *mi = rf_model_info_of(m);
    size_t shape[5] = {sp.train->n, sp.valid->n, sp.test->n, mi->n_params, mi->n_emb_rows};
    if (nproc > 1 && (rc = collective_die(comm, rf_comm_check_same(comm, shape, sizeof shape, "data or model shape", &e), &e))) {
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    double emb_mb = mi->n_emb_rows * (double)mi->E * 4 / 1e6;
    double est = dataset_mb(sp.train) + dataset_mb(sp.valid) + dataset_mb(sp.test) + 3 * emb_mb * 2 +
                 4.0 * mi->n_params * 4 / 1e6 + cfg.train.batch_size * 4.0 * (mi->In * 2 + 6.0 * mi->K * mi->H[0]) / 1e6;
    note("model: %s, %d tasks, %zu dense parameters, %zu embedding rows x %d; memory estimate %.0f MB",
         type_name(cfg.model.type), mi->K, mi->n_params, mi->n_emb_rows, mi->E, est);
    rf_train_summary ts;
    progress pg;
    progress_init(&pg, (sp.train->n + (size_t)cfg.train.batch_size - 1) / (size_t)cfg.train.batch_size, cfg.train.epochs,
                  cfg.train.eval_every, cfg.train.max_steps);
    rf_train_hooks hooks = {log_rank0, comm, NULL, NULL, NULL};
    if (rank == 0) hooks = (rf_train_hooks){progress_log, &pg, NULL, NULL, NULL};
    rf_dist *dist = nproc > 1 ? rf_dist_create(comm, m, sp.train->n, cfg.train.threads) : NULL;
    if (nproc > 1 && !dist) {
        progress_free(&pg);
        return die_abort(comm, &(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
    }
    if (dist) rf_dist_hooks(dist, &hooks);
    st = dist ? rf_train_parallel(m, &cfg.train, &hooks, rf_dist_train_dist(dist), sp.train, sp.valid, &ts, &e)
              : rf_train(m, &cfg.train, &hooks, sp.train, sp.valid, &ts, &e);
    progress_end(&pg);
    if (!st && dist) st = rf_dist_check_params(dist, m, &e); /* the same model everywhere */
    if (st && dist) {
        progress_free(&pg);
        return die_abort(comm, &e);
    }
    if (st) {
        die(&e);
        if (st == RF_ENUMERIC && ts.best_epoch >= 0) {
            rf_error e2;
            if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e2) == RF_OK)
                fprintf(stderr, "resflow: the last good model (epoch %d) was saved to %s\n", ts.best_epoch, out);
        }
        rf_model_free(m);
        rf_splits_free(&sp);
        progress_free(&pg);
        return (int)st;
    }
    note("trained %ld steps in %.1f s (%.0f samples/s)%s; best epoch %d", ts.steps, ts.seconds,
         ts.samples_per_sec, ts.stopped_early ? ", early-stopped" : "", ts.best_epoch);
    rf_eval_result te;
    if (sp.test->n > 0) {
        st = dist ? rf_dist_evaluate(dist, m, sp.test, &te, &e) : rf_evaluate(m, sp.test, cfg.train.threads, &te, &e);
        if (st) {
            progress_free(&pg);
            return dist ? die_abort(comm, &e) : die(&e);
        }
    }
    if (dist) {
        uint64_t bytes, rows;
        double secs;
        long steps;
        rf_comm_stats(comm, &bytes, &secs);
        rf_dist_stats(dist, &rows, &steps);
        note("data-parallel: rank 0 sent %.1f MB (%.1f KB per step, %.0f embedding rows per step), %.1f s in "
             "communication",
             bytes / 1e6, steps ? bytes / 1e3 / steps : 0.0, steps ? (double)rows / steps : 0.0, secs);
        rf_dist_free(dist);
    }
    if (rank > 0) { /* only rank 0 writes */
        progress_free(&pg);
        rf_model_free(m);
        rf_splits_free(&sp);
        return 0;
    }
    if (sp.test->n > 0) {
        /* --json to stdout: stdout is the JSON only, the table goes to stderr (not with -q) */
        FILE *hout = o.json && !o.json_path ? (g_quiet ? NULL : stderr) : stdout;
        if (hout) {
            fprintf(hout, "test set: %zu rows\n", sp.test->n);
            print_metrics(hout, rf_model_spec_of(m), mi->parent, &te);
        }
    }
    if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e)) {
        rc = die(&e);
    } else {
        note("model saved to %s", out);
    }
    if (!rc && o.report) {
        char path[4096];
        snprintf(path, sizeof path, "%s/report.html", o.report);
        rc = report_run(path, m, &cfg, sp.test, sp.test->n ? &te : NULL, &pg, &ts);
    }
    progress_free(&pg);
    if (!rc && o.json && sp.test->n > 0) rc = write_json(metrics_json(rf_model_spec_of(m), mi->parent, &te), o.json_path);
    rf_model_free(m);
    rf_splits_free(&sp);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("train", argc, argv, &o, train_help); /* before MPI starts: --help is quick */
    if (rc) return rc;
    rf_comm *comm;
    rf_error e;
    if (rf_comm_create(&comm, &e)) return die(&e);
    rc = train_run(comm, &o);
    rf_comm_free(comm);
    return rc;
}
