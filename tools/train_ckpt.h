/* train_ckpt.h - resflow train's checkpoints, resume, warm start and signals (tools/ only). */
#ifndef RESFLOW_TRAIN_CKPT_H
#define RESFLOW_TRAIN_CKPT_H

#include "resflow/afile.h"
#include "resflow/checkpoint.h"
#include "resflow/config.h"
#include "resflow/dist.h"

typedef struct {
    const char *resume;      /* --resume FILE */
    const char *init_model;  /* --init-model FILE */
    const char *path;        /* --checkpoint FILE (default <out>.ckpt) */
    long every_steps;        /* --checkpoint-every N */
    double every_sec;        /* --checkpoint-every Ns / Nm / Nh */
    int every_given;         /* --checkpoint-every was given (else train.checkpoint_every rules) */
    /* run state */
    const char *config;      /* the run's configuration text, as stored in checkpoints */
    int threads;             /* the run's thread count */
    const rf_dataset *data[3]; /* the run's train, validation and test sets (the fingerprint's) */
    uint64_t data_hash;      /* rf_checkpoint_data_hash of data, once hashed is 1 */
    int hashed;
    double last;             /* clock of the last checkpoint */
    long written;            /* checkpoints written */
    rf_afile_lock *lock;     /* the checkpoint's writer lock for the whole run */
    double loss0;            /* the first step's training loss (0: none yet) */
    double recent[16];       /* the last training losses (a ring), for the divergence check */
    long n_recent;
    /* a data-parallel run (nproc > 1): the processes agree at every step boundary on a signal
     * seen by any of them and on a time-based checkpoint being due (rank 0's clock), so all stop
     * or checkpoint at the same step; only rank 0 (writer) writes */
    rf_comm *comm;
    int nproc, writer;
    int agreed_sig;          /* the signal any process saw (SIGTERM before SIGINT), 0: none */
    int time_due;            /* rank 0's clock says a checkpoint is due (agreed) */
} train_ckpt;

/* Take resflow train's own options out of argv (compacting it; *argc updated), so the common
 * parser sees the rest. 0 or an exit code (the error printed). */
int train_ckpt_opts(int *argc, char **argv, train_ckpt *x);
/* SIGINT/SIGTERM: the first asks the training to stop at the next step boundary (a second one
 * kills as usual). */
void train_signals_install(void);
/* 0, or the signal that asked to stop (in a data-parallel run: the one the processes agreed on). */
int train_signal_seen(const train_ckpt *x);
/* rf_train hooks: the cancel callback (a signal seen) and the step hook (a checkpoint when one
 * is due, and always on the last, cancelled, step; RF_ENUMERIC when the training loss has
 * exploded: the mean of the last 16 steps above 1000 times the first step's); ud is the
 * train_ckpt. With x->nproc > 1 both are collective (every process calls them at the same
 * steps, as rf_train_ex does): the cancel callback sums the processes' signal flags, the step
 * hook their losses (the divergence check sees the mean over processes) and agrees on the
 * checkpoint's write status. */
int train_cancel(void *ud);
rf_status train_step_hook(void *ud, const rf_train_state *s, rf_error *err);
/* Copy a model file's parameters into m (--init-model): same shapes required. 0 or exit code. */
int train_warm_start(const char *path, rf_model *m);

#endif
