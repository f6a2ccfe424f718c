/* train_ckpt.c - resflow train's checkpoints (--checkpoint, --checkpoint-every), resume
 * (--resume), warm start (--init-model) and SIGINT/SIGTERM handling. The signal flag is the
 * tool's: the library only polls the cancel callback it is given (train.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "train_ckpt.h"

static volatile sig_atomic_t g_signal; /* the first SIGINT/SIGTERM seen */

static void on_signal(int sig)
{
    if (g_signal) { /* a second one: stop now, as without a handler */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_signal = sig;
}

void train_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int train_signal_seen(const train_ckpt *x) { return x && x->nproc > 1 ? x->agreed_sig : (int)g_signal; }

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int train_cancel(void *ud)
{
    train_ckpt *x = ud;
    if (!x || x->nproc <= 1) return g_signal != 0;
    /* one collective per step: SIGTERMs seen, SIGINTs seen, rank 0's time-based checkpoint due */
    int sig = (int)g_signal;
    double v[3] = {sig == SIGTERM, sig == SIGINT, x->writer && x->every_sec > 0 && mono() - x->last >= x->every_sec};
    rf_error e;
    rf_error_clear(&e);
    if (rf_comm_sum_f64(x->comm, v, 3, &e)) { /* the communicator failed: nothing can be agreed */
        fprintf(stderr, "resflow: error: %s\n", e.msg);
        rf_comm_abort(x->comm, (int)e.code);
    }
    x->agreed_sig = v[0] > 0 ? SIGTERM : v[1] > 0 ? SIGINT : 0;
    x->time_due = v[2] > 0;
    return x->agreed_sig != 0;
}

rf_status train_step_hook(void *ud, const rf_train_state *s, rf_error *err)
{
    train_ckpt *x = ud;
    double loss = s->loss;
    if (x->nproc > 1) { /* the mean of the processes' batch losses, the same everywhere */
        rf_status st = rf_comm_sum_f64(x->comm, &loss, 1, err);
        if (st) return st;
        loss /= x->nproc;
    }
    if (x->loss0 == 0) x->loss0 = loss > 0 ? loss : 1e-30;
    x->recent[x->n_recent++ % 16] = loss;
    if (x->n_recent >= 16) {
        double mean = 0;
        for (int i = 0; i < 16; i++) mean += x->recent[i] / 16;
        if (mean > 1000 * x->loss0 && !s->cancelled)
            return rf_errorf(err, RF_ENUMERIC,
                             "training diverged: the training loss rose from %.4g (first step) to a mean of %.4g over "
                             "steps %ld-%ld; try a lower train.lr",
                             x->loss0, mean, s->pos.steps - 15, s->pos.steps);
    }
    int due = s->cancelled || (x->every_steps > 0 && s->pos.steps % x->every_steps == 0) ||
              (x->nproc > 1 ? x->time_due : x->every_sec > 0 && mono() - x->last >= x->every_sec);
    if (!due) return RF_OK;
    if (x->writer && !x->hashed) { /* at the first checkpoint: a run that writes none pays nothing */
        x->data_hash = rf_checkpoint_data_hash(x->data[0], x->data[1], x->data[2]);
        x->hashed = 1;
    }
    rf_status st = x->writer ? rf_checkpoint_save(x->path, x->config, x->threads, x->data_hash, s, err) : RF_OK;
    if (x->nproc > 1) st = rf_comm_agree(x->comm, st, err); /* rank 0's write failed: every process stops */
    if (st) return st;
    x->last = mono();
    x->written++;
    if (s->cancelled) note("checkpoint written to %s (step %ld)", x->path, s->pos.steps);
    return RF_OK;
}

int train_ckpt_opts(int *argc, char **argv, train_ckpt *x)
{
    static const char *const names[] = {"--resume", "--init-model", "--checkpoint", "--checkpoint-every"};
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        int k = -1;
        const char *val = NULL;
        for (int j = 0; j < 4 && k < 0; j++) {
            size_t l = strlen(names[j]);
            if (strncmp(argv[i], names[j], l) != 0) continue;
            if (argv[i][l] == '=') k = j, val = argv[i] + l + 1;
            else if (!argv[i][l]) k = j;
        }
        if (strcmp(argv[i], "--") == 0) { /* the rest is the common parser's */
            while (i < *argc) argv[out++] = argv[i++];
            break;
        }
        if (k < 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (!val) {
            if (i + 1 >= *argc) return usage_error("train", "%s needs a value", names[k]);
            val = argv[++i];
        }
        if (!*val) return usage_error("train", "%s needs a value", names[k]);
        switch (k) {
        case 0: x->resume = val; break;
        case 1: x->init_model = val; break;
        case 2: x->path = val; break;
        default: {
            rf_error e;
            rf_error_clear(&e);
            if (rf_checkpoint_every(val, &x->every_steps, &x->every_sec, &e))
                return usage_error("train", "--checkpoint-every %s: expected a number of steps (e.g. 500) or a time "
                                   "(30s, 10m, 2h)", val);
            x->every_given = 1;
        }
        }
    }
    argv[out] = NULL;
    *argc = out;
    if (x->resume && x->init_model)
        return usage_error("train", "--resume and --init-model cannot be combined (a resumed run has its parameters)");
    x->last = mono();
    return 0;
}

int train_warm_start(const char *path, rf_model *m)
{
    rf_loaded_model lm;
    rf_error e;
    rf_error_clear(&e);
    if (rf_model_load(path, &lm, &e)) return die(&e);
    const rf_model_info *a = rf_model_info_of(lm.model), *b = rf_model_info_of(m);
    if (a->n_params != b->n_params || a->n_buffers != b->n_buffers || a->n_emb_rows != b->n_emb_rows ||
        a->E != b->E || rf_model_spec_of(lm.model)->model.type != rf_model_spec_of(m)->model.type) {
        fprintf(stderr,
                "resflow train: --init-model %s: the model does not fit this configuration and data (%s, %zu dense "
                "parameters, %zu embedding rows x %d; this run: %s, %zu, %zu x %d)\n",
                path, rf_model_type_name(rf_model_spec_of(lm.model)->model.type), a->n_params, a->n_emb_rows, a->E,
                rf_model_type_name(rf_model_spec_of(m)->model.type), b->n_params, b->n_emb_rows, b->E);
        rf_loaded_model_free(&lm);
        return RF_EUSAGE;
    }
    memcpy(rf_model_params(m), rf_model_params(lm.model), a->n_params * sizeof(float));
    if (a->n_buffers) memcpy(rf_model_buffers(m), rf_model_buffers(lm.model), a->n_buffers * sizeof(float));
    memcpy(rf_model_emb(m), rf_model_emb(lm.model), a->n_emb_rows * (size_t)a->E * sizeof(float));
    rf_loaded_model_free(&lm);
    note("warm start: parameters from %s", path);
    return 0;
}
