/* progress.c - the training log sink: live progress line, plain lines, recorded curves (progress.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

void progress_init(progress *p, size_t per_epoch, int epochs, int eval_every, long max_steps)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO) && !g_quiet;
    p->per_epoch = per_epoch ? per_epoch : 1;
    p->epochs = epochs;
    p->eval_every = eval_every;
    p->max_steps = max_steps;
}

static void add(progress *p, pg_curve *c, double x, double y)
{
    if (c->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 64;
        double *nx = realloc(c->x, nc * sizeof *nx);
        if (!nx) {
            p->oom = 1;
            return;
        }
        c->x = nx;
        double *ny = realloc(c->y, nc * sizeof *ny);
        if (!ny) {
            p->oom = 1;
            return;
        }
        c->y = ny;
        c->cap = nc;
    }
    c->x[c->n] = x;
    c->y[c->n++] = y;
}

int progress_task(const progress *p, const char *name)
{
    for (int k = 0; k < p->K; k++)
        if (!strcmp(p->task[k], name)) return k;
    return -1;
}

/* The step of the next evaluation after the last one (train.c: every eval_every steps and at
 * each epoch's end, or only at epochs' ends; at max_steps). */
static long next_eval_step(progress *p)
{
    long s = p->last_eval_step, pe = (long)p->per_epoch;
    long ep_end = (s / pe + 1) * pe, n = ep_end;
    if (p->eval_every > 0) {
        long e = (s / p->eval_every + 1) * p->eval_every;
        if (e < n) n = e;
    }
    if (p->max_steps > 0 && n > p->max_steps) n = p->max_steps;
    return p->last_eval_step = n;
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* "epoch E valid | a auc 0.7 | b auc 0.6 | loss 0.3 [| mse 0.9]" into the curves */
static void record_valid(progress *p, const char *line)
{
    double x = (double)next_eval_step(p) / (double)p->per_epoch;
    const char *s = strstr(line, " | ");
    while (s) {
        s += 3;
        const char *e = strstr(s, " | ");
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char seg[160];
        snprintf(seg, sizeof seg, "%.*s", (int)(len < sizeof seg ? len : sizeof seg - 1), s);
        double v;
        char name[64];
        if (sscanf(seg, "loss %lf", &v) == 1) {
            add(p, &p->valid_loss, x, v);
        } else if (sscanf(seg, "mse %lf", &v) == 1) {
            add(p, &p->valid_mse, x, v);
        } else if (sscanf(seg, "%63s auc %lf", name, &v) == 2) {
            int k = progress_task(p, name);
            if (k < 0 && p->K < PG_MAX_TASKS) {
                k = p->K++;
                snprintf(p->task[k], sizeof p->task[k], "%s", name);
            }
            if (k >= 0) add(p, &p->valid_auc[k], x, v); /* NaN kept: the plot breaks the line there */
        }
        s = e;
    }
}

/* "epoch E step S | weights METHOD | a W | b W" into the weight curves; 0 when line is not one */
static int record_weights(progress *p, const char *line)
{
    int ep, n = 0;
    long step;
    char method[32];
    if (sscanf(line, "epoch %d step %ld | weights %31s%n", &ep, &step, method, &n) != 3) return 0;
    const char *s = strstr(line + n, " | ");
    double w[PG_MAX_TASKS];
    char name[PG_MAX_TASKS][64];
    int K = 0;
    while (s && K < PG_MAX_TASKS) {
        s += 3;
        int used = 0;
        if (sscanf(s, "%63s %lf%n", name[K], &w[K], &used) != 2) return 0;
        K++;
        s = strstr(s + used, " | ");
    }
    if (!K) return 0;
    if (!p->wK) { /* the first point names the method and the tasks */
        snprintf(p->balance, sizeof p->balance, "%s", method);
        for (int k = 0; k < K; k++) snprintf(p->wtask[k], sizeof p->wtask[k], "%.63s", name[k]);
        p->wK = K;
    }
    if (K != p->wK) return 1;
    add(p, &p->weight_at, (double)step, (double)ep);
    for (int k = 0; k < K; k++) add(p, &p->weight[k], (double)step / (double)p->per_epoch, w[k]);
    return 1;
}

void progress_log(void *ud, const char *line)
{
    progress *p = ud;
    int ep;
    long step;
    double loss, rate, secs;
    int is_step = sscanf(line, "epoch %d step %ld | loss %lf | %lf samples/s | %lf s", &ep, &step, &loss, &rate,
                         &secs) == 5;
    if (is_step) {
        add(p, &p->train_loss, (double)step / (double)p->per_epoch, loss);
    } else if (strstr(line, " valid | ") && !strncmp(line, "epoch ", 6)) {
        record_valid(p, line);
    } else {
        record_weights(p, line);
    }
    int warning = !strncmp(line, "warning:", 8);
    if (g_quiet && !warning) return;
    if (!is_step) {
        if (p->open) fputs("\r\033[K", stderr);
        p->open = 0;
        fprintf(stderr, "%s\n", line);
        return;
    }
    long total = (long)p->per_epoch * p->epochs;
    if (p->max_steps > 0 && p->max_steps < total) total = p->max_steps;
    long in_ep = step - (long)(ep - 1) * (long)p->per_epoch;
    double pct = 100.0 * (double)in_ep / (double)p->per_epoch;
    char eta[32];
    fmt_eta(secs / (double)step * (double)(total - step), eta, sizeof eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[Kepoch %d/%d %3.0f%% | step %ld/%ld | loss %.5f | %.0f samples/s | ETA %s", ep,
                p->epochs, pct, step, total, loss, rate, eta);
        fflush(stderr);
        p->open = 1;
    } else {
        fprintf(stderr, "%s | %.0f%% of epoch %d/%d | ETA %s\n", line, pct, ep, p->epochs, eta);
    }
}

void progress_end(progress *p)
{
    if (p->open) fputs("\r\033[K", stderr);
    p->open = 0;
}

void progress_free(progress *p)
{
    pg_curve *c[4 + 2 * PG_MAX_TASKS] = {&p->train_loss, &p->valid_loss, &p->valid_mse, &p->weight_at};
    for (int k = 0; k < PG_MAX_TASKS; k++) c[4 + k] = &p->valid_auc[k], c[4 + PG_MAX_TASKS + k] = &p->weight[k];
    for (int i = 0; i < 4 + 2 * PG_MAX_TASKS; i++) {
        free(c[i]->x);
        free(c[i]->y);
    }
    memset(p, 0, sizeof *p);
}
