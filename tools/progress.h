/* progress.h - the training log sink of `resflow train`: a live progress line on a terminal
 * (percent of the epoch, ETA, samples/s, loss), plain lines otherwise, and the curves (training
 * loss, validation loss and AUC per evaluation) recorded for the HTML report (cmd_report.c).
 *
 * The curves are read from the library's log lines (src/nn/train.c: "epoch E step S | loss L |
 * R samples/s | T s" and "epoch E valid | TASK auc A | ... | loss L [| mse M]"; with
 * train.balance also "epoch E step S | weights METHOD | TASK W | ...", the balancer's task
 * weights); a line of another shape is passed through unchanged.
 */
#ifndef RESFLOW_PROGRESS_H
#define RESFLOW_PROGRESS_H

#include <stddef.h>

#include "resflow/resflow.h"

#define PG_MAX_TASKS 32

typedef struct {
    int n, cap;
    double *x, *y;
} pg_curve;

typedef struct {
    int tty;           /* stderr is a terminal: one line rewritten in place */
    int open;          /* a progress line is on screen without its newline */
    size_t per_epoch;  /* optimizer steps per epoch */
    int epochs, eval_every;
    long max_steps, last_eval_step;
    int K;
    char task[PG_MAX_TASKS][64];
    pg_curve train_loss;          /* x: epochs (step / per_epoch) */
    pg_curve valid_loss, valid_mse;
    pg_curve valid_auc[PG_MAX_TASKS];
    /* train.balance's task weights per log point: method, tasks, the point's (step, epoch) in
     * weight_at (x: step, y: epoch), each task's weight against epochs (step / per_epoch) */
    char balance[32];
    int wK;
    char wtask[PG_MAX_TASKS][64];
    pg_curve weight_at, weight[PG_MAX_TASKS];
    int oom;
} progress;

/* Set up for a run of `epochs` epochs of per_epoch steps (train.eval_every, train.max_steps). */
void progress_init(progress *p, size_t per_epoch, int epochs, int eval_every, long max_steps);
/* The rf_log_fn: ud is the progress. */
void progress_log(void *ud, const char *line);
/* End the live line (a newline if one is open). */
void progress_end(progress *p);
void progress_free(progress *p);
/* Task k's validation AUC curve by task name (-1 when absent). */
int progress_task(const progress *p, const char *name);

#endif
