/* cmd_train.c - resflow train: train one model from a config and save it. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
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
#include "train_ckpt.h"

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
    "                        carries the JSON only and the table goes to stderr); with\n"
    "                        train.balance also the task-weight history (docs/balance.md)\n"
    "      --report DIR      also write DIR/report.html: training curves (and train.balance's\n"
    "                        task weights), test metrics, calibration per task (one\n"
    "                        self-contained page; docs/report.md)\n"
    "      --show-config     print the resolved configuration (YAML) to stderr first (it is\n"
    "                        stored in the model either way: resflow config -m MODEL)\n"
    "      --checkpoint FILE  where checkpoints go (default MODEL.ckpt); removed when the model is saved\n"
    "      --checkpoint-every N|Ns|Nm|Nh\n"
    "                        write a checkpoint every N steps or every N seconds/minutes/hours\n"
    "                        (overrides the config key train.checkpoint_every, which a resumed\n"
    "                        run keeps from its checkpoint)\n"
    "      --resume FILE     continue the run of checkpoint FILE (its configuration and thread count;\n"
    "                        -c and --set are refused): same final model, byte for byte, as a run\n"
    "                        that was never stopped; refused when the data read now differs from\n"
    "                        the checkpoint's (a fingerprint of the loaded rows)\n"
    "      --init-model FILE warm start: begin from the parameters of model file FILE (same\n"
    "                        architecture and vocabulary sizes; a fresh optimizer)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -v, --verbose         progress and the resolved configuration\n"
    "  -h, --help            this help\n"
    "\n"
    "SIGINT or SIGTERM stops the training at the end of the current step, writes a checkpoint and\n"
    "the best model so far, and exits 130 (SIGINT) or 143 (SIGTERM); a second signal kills at once.\n"
    "A diverged run (non-finite loss or parameters) exits 4 and never saves a model as if fine.\n"
    "\n"
    "Data-parallel (a `make MPI=1` build): mpirun -np N resflow train ... splits every batch over\n"
    "N processes (docs/distributed.md); only rank 0 prints and writes the model and checkpoints.\n"
    "The processes agree at every step on a signal any of them got and on a due checkpoint, so\n"
    "they stop together; --resume continues with any number of processes (every process reads\n"
    "the checkpoint: put it where all of them see it).\n";

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
    int rank = rf_comm_rank(c), N = rf_comm_size(c), first = N > 1 && cfg->data.schema.cache[0];
    rf_status st = RF_OK;
    /* from a cache, each process verifies only the rows it reads */
    if (!first || rank == 0) st = rf_data_load_shard(cfg, rank, N, sp, log_rank0, c, e);
    if (first) {
        if ((st = rf_comm_agree(c, st, e))) return collective_die(c, st, e); /* rank 0 failed: all stop */
        if (rank > 0) st = rf_data_load_shard(cfg, rank, N, sp, NULL, NULL, e);
    }
    int rc = agree_die(c, st, e);
    if (!rc && first) { /* what each process verified of the cache */
        uint64_t mine[2] = {sp->cache_verified, sp->cache_bytes}, *all = calloc((size_t)N * 2, sizeof *all);
        if (!all) return die_abort(c, &(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
        if (collective_die(c, rf_comm_allgather(c, mine, sizeof mine, all, e), e)) {
            free(all);
            return (int)e->code;
        }
        char line[1024];
        size_t o = 0;
        for (int r = 0; r < N && o < sizeof line; r++)
            o += (size_t)snprintf(line + o, sizeof line - o, "%s rank %d %.1f MB (%.0f%%)", r ? "," : "", r,
                                  all[2 * r] / 1e6, all[2 * r + 1] ? 100.0 * all[2 * r] / all[2 * r + 1] : 0.0);
        note("data-parallel: cache data verified per process (of %.1f MB):%s", all[1] / 1e6, line);
        free(all);
    }
    return rc;
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

/* The run's configuration: from -c/--set, or from the checkpoint being resumed. */
static int run_config(const opts *o, train_ckpt *x, rf_checkpoint *ck, rf_config *cfg)
{
    if (!x->resume) return load_config(o, cfg);
    if (o->config || o->n_sets || o->threads || o->skip_bad)
        return usage_error("train", "--resume takes the configuration and thread count from the checkpoint; "
                                    "-c, --set, --threads and --skip-bad-rows cannot be combined with it");
    rf_error e;
    rf_error_clear(&e);
    if (rf_checkpoint_load(x->resume, ck, &e)) return die(&e);
    rf_config_default(cfg);
    if (rf_config_load_string(cfg, ck->config, strlen(ck->config), x->resume, &e) || rf_config_validate(cfg, &e))
        return die(&e);
    rf_schema_from_tasks(cfg);
    note("resuming %s: epoch %d, step %ld", x->resume, ck->pos.epoch + 1, ck->pos.steps);
    return 0;
}

/* The checkpoint of a single-process run: its path (default OUT.ckpt, into ckdef), not an
 * output or input of the run, absent or a checkpoint, and its writer lock taken. 0 or exit code. */
static int ckpt_setup(train_ckpt *x, const char *out, const char *const *ins, int n_ins, char *ckdef, size_t n)
{
    if (!x->path) {
        if (x->resume) x->path = x->resume;
        else if (snprintf(ckdef, n, "%s.ckpt", out) < (int)n) x->path = ckdef;
        else return usage_error("train", "the output path is too long");
    }
    rf_error e;
    rf_error_clear(&e);
    if (rf_same_file(x->path, out)) return usage_error("train", "the checkpoint %s is the model output", x->path);
    for (int i = 0; i < n_ins; i++)
        if (ins[i] && ins[i][0] && rf_same_file(x->path, ins[i]))
            return usage_error("train", "the checkpoint %s is also an input of this run (%s)", x->path, ins[i]);
    rf_status st = rf_checkpoint_claim(x->path, &x->lock, &e);
    return st == RF_EUSAGE ? usage_error("train", "%s", e.msg) : st ? die(&e) : 0;
}

static int train_body(rf_comm *comm, const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp,
                      const char *out);

/* --json's "balance" member when train.balance ran: the method, the tasks and the weight
 * history, one point per train.log_every steps: {"step", "epoch", "weights": [K]}. j is
 * returned (NULL stays NULL: write_json reports it). */
static json_t *balance_json(json_t *j, const progress *pg)
{
    if (!j || !pg->wK) return j;
    json_t *b = json_object(), *tasks = json_array(), *hist = json_array();
    for (int k = 0; k < pg->wK; k++) json_array_append_new(tasks, json_string(pg->wtask[k]));
    for (int i = 0; i < pg->weight_at.n; i++) {
        json_t *w = json_array();
        for (int k = 0; k < pg->wK; k++) json_array_append_new(w, json_real(pg->weight[k].y[i]));
        json_array_append_new(hist, json_pack("{s:I, s:i, s:o}", "step", (json_int_t)pg->weight_at.x[i], "epoch",
                                              (int)pg->weight_at.y[i], "weights", w));
    }
    json_object_set_new(b, "method", json_string(pg->balance));
    json_object_set_new(b, "tasks", tasks);
    json_object_set_new(b, "history", hist);
    json_object_set_new(j, "balance", b);
    return j;
}

static int train_run(rf_comm *comm, const opts *op, train_ckpt *x, rf_checkpoint *ck)
{
    int rank = rf_comm_rank(comm), nproc = rf_comm_size(comm);
    opts o = *op;
    if (rank > 0) g_quiet = 1;
    rf_config cfg;
    int rc = run_config(&o, x, ck, &cfg);
    if (!rc) rc = check_data_paths(&o, &cfg);
    rf_error e;
    rf_error_clear(&e);
    /* the configuration's schedule (validated with it) unless --checkpoint-every overrides it */
    if (!rc && !x->every_given && rf_checkpoint_every(cfg.train.checkpoint_every, &x->every_steps, &x->every_sec, &e))
        rc = die(&e);
    if ((rc = agree_rc(comm, rc))) return rc;
    char *dump = rf_config_dump(&cfg);
    if (!dump) return die_abort(comm, &(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
    if (nproc > 1 && collective_die(comm, rf_comm_check_same(comm, dump, strlen(dump), "configuration", &e), &e)) {
        free(dump);
        return (int)e.code;
    }
    if (rank == 0) show_config(&o, &cfg);
    const char *out = o.out ? o.out : "resflow.model";
    const char *ins[] = {o.config, cfg.data.source, cfg.data.valid, cfg.data.test, x->init_model};
    char ckdef[4096];
    if (rank == 0) rc = check_output("train", out, ins, 5);
    if (rank == 0 && !rc) rc = ckpt_setup(x, out, ins, 5, ckdef, sizeof ckdef); /* rank 0 writes them */
    if (rank == 0 && !rc && o.report && mkdirs(o.report)) {
        fprintf(stderr, "resflow: error: cannot create the report directory %s\n", o.report);
        rc = RF_EIO;
    }
    if ((rc = agree_rc(comm, rc))) {
        free(dump);
        return rc;
    }
    dist_threads(comm, &cfg);
    note_threads(&cfg);
    if (nproc > 1) note("data-parallel: %d processes (%s), %d threads each", nproc, rf_comm_kind(), cfg.train.threads);
    /* what a checkpoint stores: the configuration as resumed, and the thread count it ran with */
    x->config = x->resume ? ck->config : dump;
    x->threads = x->resume ? ck->threads : cfg.train.threads > 0 ? cfg.train.threads : omp_get_max_threads();
    rc = train_body(comm, &o, x, ck, &cfg, out);
    free(dump);
    return rc;
}

static int train_body(rf_comm *comm, const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp,
                      const char *out)
{
    int rank = rf_comm_rank(comm), nproc = rf_comm_size(comm);
    opts o = *op;
    rf_config cfg = *cfgp;
    int rc = 0;
    rf_error e;
    rf_error_clear(&e);
    rf_splits sp;
    if ((rc = load_data(comm, &cfg, &sp, &e))) return rc;
    note("split: train %zu | valid %zu | test %zu rows%s", sp.train->n, sp.valid->n, sp.test->n,
         sp.bad_rows ? " (some bad rows skipped)" : "");
    if (sp.bad_rows) note("skipped %zu bad rows", sp.bad_rows);
    rf_model *m = NULL;
    rf_train_resume rs;
    rf_status st = rf_regression_resolve(&cfg, sp.train, &e); /* thresholds and tasks (regression.h) */
    if (!st) st = rf_config_create_model(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e);
    if (!st) st = rf_dist_check_model(comm, m, &e);
    x->data[0] = sp.train, x->data[1] = sp.valid, x->data[2] = sp.test;
    if (!st && x->resume) { /* every process: the same data (fingerprint), then the same state */
        x->data_hash = rf_checkpoint_data_hash(sp.train, sp.valid, sp.test);
        x->hashed = 1;
        if (!ck->has_data_hash) note("%s predates data fingerprints: the data is not checked", x->resume);
        st = rf_checkpoint_check_data(ck, x->data_hash, &e);
        if (!st) st = rf_checkpoint_resume(ck, m, &rs, &e);
    }
    if ((rc = agree_die(comm, st, &e))) {
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    if (x->init_model && (rc = agree_rc(comm, train_warm_start(x->init_model, m)))) {
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
    rf_train_cfg tcfg = cfg.train; /* the thread count of the run (a resumed run: the checkpoint's) */
    tcfg.threads = x->threads;
    rf_train_summary ts;
    progress pg;
    progress_init(&pg, (sp.train->n + (size_t)tcfg.batch_size - 1) / (size_t)tcfg.batch_size, tcfg.epochs,
                  tcfg.eval_every, tcfg.max_steps);
    rf_train_hooks hooks = {log_rank0, comm, NULL, NULL, NULL};
    if (rank == 0) hooks = (rf_train_hooks){progress_log, &pg, NULL, NULL, NULL};
    rf_dist *dist = nproc > 1 ? rf_dist_create(comm, m, sp.train->n, tcfg.threads) : NULL;
    if (nproc > 1 && !dist) {
        progress_free(&pg);
        return die_abort(comm, &(rf_error){.code = RF_ENOMEM, .msg = "out of memory"});
    }
    if (dist) rf_dist_hooks(dist, &hooks);
    /* checkpoints, signals and the divergence check (train_ckpt.c); in a data-parallel run the
     * processes agree on them at every step boundary and rank 0 writes */
    x->comm = comm;
    x->nproc = nproc;
    x->writer = rank == 0;
    rf_train_ctl ctl = {0};
    ctl.step_hook = train_step_hook;
    ctl.step_ud = x;
    ctl.cancel = train_cancel;
    ctl.cancel_ud = x;
    ctl.resume = x->resume ? &rs : NULL;
    if (dist) ctl.dist = rf_dist_train_dist(dist);
    train_signals_install();
    st = rf_train_ex(m, &tcfg, &hooks, &ctl, sp.train, sp.valid, &ts, &e);
    progress_end(&pg);
    if (!st && dist) st = rf_dist_check_params(dist, m, &e); /* the same model everywhere */
    if (st && dist) {
        progress_free(&pg);
        return die_abort(comm, &e);
    }
    if (!st && ts.cancelled) {
        int sig = train_signal_seen(x);
        rc = 128 + sig;
        if (dist) rf_dist_free(dist);
        if (rank == 0) { /* only rank 0 writes */
            if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e) == RF_OK)
                fprintf(stderr, "resflow: stopped by %s after %ld steps; the best model so far was saved to %s; "
                                "continue with: %sresflow train --resume %s -o %s\n",
                        sig == SIGINT ? "SIGINT" : "SIGTERM", ts.steps, out, nproc > 1 ? "mpirun -np N " : "", x->path,
                        out);
            else
                die(&e);
        }
        progress_free(&pg);
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    if (st) {
        die(&e);
        if (st == RF_ENUMERIC) { /* diverged: never saved as the model; the last good one beside it */
            char lg[4096];
            rf_error e2;
            int saved = ts.best_epoch >= 0 && snprintf(lg, sizeof lg, "%s.lastgood", out) < (int)sizeof lg &&
                        rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, lg, &e2) == RF_OK;
            fprintf(stderr, "resflow: %s was not written (the run diverged)", out);
            if (saved) fprintf(stderr, "; the best validated model before it (epoch %d) was saved to %s", ts.best_epoch, lg);
            fputc('\n', stderr);
        }
        progress_free(&pg);
        rf_model_free(m);
        rf_splits_free(&sp);
        return (int)st;
    }
    note("trained %ld steps in %.1f s (%.0f samples/s)%s; best epoch %d", ts.steps, ts.seconds,
         ts.samples_per_sec, ts.stopped_early ? ", early-stopped" : "", ts.best_epoch);
    rf_eval_result te;
    if (sp.test->n > 0) {
        st = dist ? rf_dist_evaluate(dist, m, sp.test, &te, &e) : rf_evaluate(m, sp.test, tcfg.threads, &te, &e);
        if (st) {
            progress_free(&pg);
            if (dist) return die_abort(comm, &e);
            rf_model_free(m);
            rf_splits_free(&sp);
            return die(&e);
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
        if (x->path && (x->written || x->resume) && unlink(x->path) == 0)
            note("checkpoint %s removed (the run is complete)", x->path);
    }
    if (!rc && o.report) {
        char path[4096];
        snprintf(path, sizeof path, "%s/report.html", o.report);
        rc = report_run(path, m, &cfg, sp.test, sp.test->n ? &te : NULL, &pg, &ts);
    }
    if (!rc && o.json && sp.test->n > 0) rc = write_json(balance_json(metrics_json(rf_model_spec_of(m), mi->parent, &te), &pg), o.json_path);
    progress_free(&pg);
    rf_model_free(m);
    rf_splits_free(&sp);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    opts o;
    train_ckpt x = {0};
    int rc = train_ckpt_opts(&argc, argv, &x); /* before MPI starts: --help is quick */
    if (rc || (rc = parse_opts("train", argc, argv, &o, train_help))) return rc;
    rf_comm *comm;
    rf_error e;
    if (rf_comm_create(&comm, &e)) return die(&e);
    rf_checkpoint ck = {0};
    rc = train_run(comm, &o, &x, &ck);
    rf_checkpoint_free(&ck);
    rf_afile_lock_release(x.lock);
    rf_comm_free(comm);
    return rc;
}
