/* train.c - the training loop (shuffled mini-batches, Adam, validation early stopping,
 * best-model restore, non-finite guard), batched prediction and evaluation. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/logf.h"
#include "nn/model_impl.h"
#include "resflow/balance.h"
#include "resflow/optim.h"
#include "resflow/regression.h"
#include "resflow/train.h"
#include "core/rng.h"

/* Fewer optimizer steps than this in a whole run: a warning. */
#define MIN_STEPS 100

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

rf_status rf_resolve_labels(const rf_model *m, const rf_dataset *ds, int *label_col, rf_error *err)
{
    for (int k = 0; k < m->K; k++) {
        label_col[k] = rf_dataset_label_index(ds, m->spec.tasks[k].label);
        if (label_col[k] < 0) {
            char have[512] = "";
            for (int j = 0; j < ds->K; j++) {
                size_t l = strlen(have);
                snprintf(have + l, sizeof have - l, "%s%s", j ? ", " : "", ds->label_names[j]);
            }
            return rf_errorf(err, RF_EUSAGE, "task %s: label \"%s\" is not in the data (labels: %s)",
                             m->spec.tasks[k].name, m->spec.tasks[k].label, have);
        }
    }
    return RF_OK;
}

typedef struct {
    rf_optimizer *opt;
    rf_model *m;
} sparse_apply;

static void apply_sparse(void *ud, const rf_grads *rows)
{
    sparse_apply *sa = ud;
    rf_optimizer_update_sparse(sa->opt, sa->m, rows);
}

rf_status rf_train_step(rf_model *m, rf_workspace *ws, rf_grads *g, rf_optimizer *opt, const rf_batch *bt,
                        rf_grad_hook hook, void *hook_ud, double *loss, rf_error *err)
{
    rf_status st;
    if (bt->B == 0) { /* a data-parallel process with no row of this batch: it still takes part
                       * in the exchange (hook) and makes the same update as the others */
        if (loss) *loss = 0;
        rf_grads_zero(g);
        if (ws->bns.fn) { /* synchronised BatchNorm: its sums with zeros, the global statistics */
            if ((st = rf_model_bn_idle_(m, ws, g, err))) return st;
            rf_model_adopt_buffers(m, ws);
        }
        if (hook && (st = hook(hook_ud, m, g, err))) {
            rf_grads_emb_clear(g);
            return st;
        }
        rf_optimizer_step(opt, m, g);
        rf_grads_emb_clear(g);
        return RF_OK;
    }
    st = rf_model_forward(m, ws, bt, 1, err);
    if (st) return st;
    double l = rf_model_loss(m, ws, bt, NULL, NULL);
    if (loss) *loss = l;
    if (!isfinite(l)) return rf_errorf(err, RF_ENUMERIC, "non-finite training loss (%g)", l);
    rf_model_adopt_buffers(m, ws);
    rf_grads_zero(g);
    if ((st = rf_model_backward_dense(m, ws, bt, g, err))) return st;
    if (hook || !rf_optimizer_sparse_rowwise(opt)) { /* whole gradients (to the hook: the seam), then the optimizer */
        rf_model_backward_w0(m, ws, g);
        rf_model_backward_emb(m, ws, bt, g);
        if (hook && (st = hook(hook_ud, m, g, err))) {
            rf_grads_emb_clear(g);
            return st;
        }
        rf_optimizer_step(opt, m, g);
    } else {
        /* each part on all threads: the layer-0 weight gradient (a GEMM), then the fields in
         * parallel, each field's rows updated as soon as they are summed (docs/performance.md) */
        rf_optimizer_begin(opt);
        rf_model_backward_w0(m, ws, g);
        rf_optimizer_update_dense(opt, m, g);
        sparse_apply sa = {opt, m};
        rf_model_backward_emb_each(m, ws, bt, g, apply_sparse, &sa);
    }
    rf_grads_emb_clear(g);
    return RF_OK;
}

/* The bookkeeping of a resumed run, checked against what a run can reach. */
static rf_status resume_pos(const rf_train_resume *rs, size_t per_epoch, rf_train_summary *sum, int *bad_evals, int *by_loss,
                            long *seen, rf_error *err)
{
    const rf_train_pos *p = &rs->pos;
    if (p->epoch < 0 || p->batch < 0 || p->steps < 0 || p->seen < 0 || p->bad_evals < 0 || p->best_epoch < -1 ||
        p->best_epoch > p->epoch + 1 || (size_t)p->batch >= per_epoch)
        return rf_errorf(err, RF_EFORMAT, "resume: impossible position (epoch %d, batch %ld, step %ld)", p->epoch,
                         p->batch, p->steps);
    sum->steps = p->steps;
    sum->epochs_run = p->epoch;
    sum->best_score = p->best_score;
    sum->best_epoch = p->best_epoch;
    sum->best_valid = p->best_valid;
    *bad_evals = p->bad_evals;
    *by_loss = p->by_loss != 0;
    *seen = p->seen;
    return RF_OK;
}

/* A copy of everything training changes, to restore the best model. */
typedef struct {
    float *params, *buffers, *emb;
} snapshot;

static int snap_alloc(snapshot *s, const rf_model *m)
{
    s->params = malloc(m->n_params * sizeof(float));
    s->buffers = malloc((m->n_buffers ? m->n_buffers : 1) * sizeof(float));
    s->emb = malloc((m->emb_off[m->F] ? m->emb_off[m->F] : 1) * m->E * sizeof(float));
    return s->params && s->buffers && s->emb;
}
static void snap_take(snapshot *s, const rf_model *m)
{
    memcpy(s->params, m->params, m->n_params * sizeof(float));
    memcpy(s->buffers, m->buffers, m->n_buffers * sizeof(float));
    memcpy(s->emb, m->emb, m->emb_off[m->F] * m->E * sizeof(float));
}
static void snap_restore(const snapshot *s, rf_model *m)
{
    memcpy(m->params, s->params, m->n_params * sizeof(float));
    memcpy(m->buffers, s->buffers, m->n_buffers * sizeof(float));
    memcpy(m->emb, s->emb, m->emb_off[m->F] * m->E * sizeof(float));
}
static void snap_free(snapshot *s)
{
    free(s->params);
    free(s->buffers);
    free(s->emb);
}


double rf_monitor_value(const rf_model *m, const char *mon, const rf_eval_result *r)
{
    if (strcmp(mon, "loss") == 0) return -r->loss;
    if (strcmp(mon, "mse") == 0) return -r->reg.mse;
    if (strncmp(mon, "auc:", 4) == 0) {
        int k = rf_spec_task_index(&m->spec, mon + 4);
        return k >= 0 ? r->task[k].auc : NAN;
    }
    double s = 0;
    for (int k = 0; k < m->K; k++) s += r->task[k].auc;
    return s / m->K;
}

/* The monitored value is not a number (a task with one class in the validation split has no
 * AUC): say why, and that early stopping uses the validation loss from now on. */
static void warn_monitor_nan(const rf_model *m, const char *mon, const rf_eval_result *r, rf_log_fn log, void *ud)
{
    char why[640] = "";
    size_t o = 0;
    int one = strncmp(mon, "auc:", 4) == 0 ? rf_spec_task_index(&m->spec, mon + 4) : -1;
    for (int k = 0; k < m->K && o < sizeof why; k++) {
        if (one >= 0 && k != one) continue;
        const rf_task_metrics *t = &r->task[k];
        if (m->spec.tasks[k].loss == RF_LOSS_MSE)
            o += snprintf(why + o, sizeof why - o, "%stask %s is a squared-error task (no AUC)", o ? "; " : "",
                          m->spec.tasks[k].name);
        else if (t->positives == 0 || t->positives >= t->n)
            o += snprintf(why + o, sizeof why - o, "%stask %s has one class in the validation split (%zu of %zu rows positive)",
                          o ? "; " : "", m->spec.tasks[k].name, t->positives, t->n);
    }
    logf_(log, ud,
          "warning: the validation %s is NaN%s%s; early stopping falls back to the validation loss (the best model by "
          "loss is kept). Set train.monitor: loss to silence this, or give a validation split with both classes.",
          mon, why[0] ? ": " : "", why);
}

static void format_eval(const rf_model *m, const rf_eval_result *r, char *buf, size_t n)
{
    size_t o = 0;
    for (int k = 0; k < m->K && o < n; k++)
        o += snprintf(buf + o, n - o, "%s%s auc %.4f", k ? " | " : "", m->spec.tasks[k].name, r->task[k].auc);
    if (o < n) o += snprintf(buf + o, n - o, " | loss %.5f", r->loss);
    if (o < n && m->spec.regression.target[0]) snprintf(buf + o, n - o, " | mse %.5f", r->reg.mse);
}

/* The balancer's task weights of the last step: "epoch E step S | weights pub | ctr 1.0123 | ..." */
static void log_weights(const rf_model *m, const rf_balancer *b, int method, int ep, long step, rf_log_fn log, void *ud)
{
    double w[RF_MAX_TASKS];
    char buf[512];
    size_t o = 0;
    int K = rf_balancer_weights(b, w);
    for (int k = 0; k < K && o < sizeof buf; k++)
        o += snprintf(buf + o, sizeof buf - o, " | %s %.6g", m->spec.tasks[k].name, w[k]);
    logf_(log, ud, "epoch %d step %ld | weights %s%s", ep, step, rf_balance_name(method), buf);
}

rf_status rf_train(rf_model *m, const rf_train_cfg *tc, const rf_train_hooks *hooks, const rf_dataset *train,
                   const rf_dataset *valid, rf_train_summary *out, rf_error *err)
{
    return rf_train_ex(m, tc, hooks, NULL, train, valid, out, err);
}

rf_status rf_train_parallel(rf_model *m, const rf_train_cfg *tc, const rf_train_hooks *hooks,
                            const rf_train_dist *dist, const rf_dataset *train, const rf_dataset *valid,
                            rf_train_summary *out, rf_error *err)
{
    rf_train_ctl ctl = {0};
    ctl.dist = dist;
    return rf_train_ex(m, tc, hooks, &ctl, train, valid, out, err);
}

rf_status rf_train_ex(rf_model *m, const rf_train_cfg *tc, const rf_train_hooks *hooks, const rf_train_ctl *ctl,
                      const rf_dataset *train, const rf_dataset *valid, rf_train_summary *out, rf_error *err)
{
    rf_train_hooks hk = {0};
    if (hooks) hk = *hooks;
    rf_train_ctl cx = {0};
    if (ctl) cx = *ctl;
    const rf_train_dist *dist = cx.dist;
    rf_log_fn log = hk.log;
    void *ud = hk.log_ud;
    int omp_was = omp_get_max_threads();
    if (tc->threads > 0) omp_set_num_threads(tc->threads); /* this thread's OpenMP teams only */
    rf_train_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.best_score = -INFINITY;
    sum.best_epoch = -1;
    int lc[RF_MAX_TASKS];
    rf_status st = RF_OK;
    rf_workspace *ws = NULL;
    rf_grads *grads = NULL;
    rf_optimizer *own_opt = NULL, *opt = hk.opt;
    rf_balancer *bal = NULL; /* train.balance: per-task gradients through a balancer */
    rf_grads *per_task[RF_MAX_TASKS] = {0};
    rf_row_order *order = NULL;
    size_t *local = NULL; /* data-parallel: this process's rows of a batch */
    snapshot best = {0};
    double t0 = now_sec();
    long seen = 0;
    if (train->n == 0) {
        st = rf_errorf(err, RF_EDATA, "the training set is empty");
        goto done;
    }
    if ((st = rf_resolve_labels(m, train, lc, err))) goto done;
    const rf_train_resume *rs = cx.resume;
    for (int k = 0; k < m->K && m->bout && !rs; k++) { /* a squared-error head starts at the training mean */
        if (m->spec.tasks[k].loss != RF_LOSS_MSE) continue;
        double s = 0;
        for (size_t i = 0; i < train->n; i++) s += train->labels[i * train->K + lc[k]];
        m->bout[k] = (float)(s / (double)train->n);
    }
    int B = tc->batch_size;
    double tlog = t0, run_loss = 0;
    long run_n = 0, seen_log = 0;
    ws = rf_workspace_create(m, B);
    grads = rf_grads_create(m);
    if (ws && dist) rf_ws_set_batch_sum(ws, dist->sum, dist->ud); /* BatchNorm over the global batch */
    if (ws && tc->precision && (st = rf_ws_set_precision(ws, m, (rf_precision)tc->precision, err))) goto done;
    if (tc->balance != RF_BALANCE_NONE) {
        if (hk.opt || hk.grad_hook) {
            st = rf_errorf(err, RF_EUSAGE, "train.balance: %s replaces the optimizer and sees per-task gradients; "
                           "it cannot be combined with a caller's optimizer or gradient hook", rf_balance_name(tc->balance));
            goto done;
        }
        bal = rf_balancer_create(m, tc, tc->balance);
        opt = bal ? rf_balancer_optimizer(bal) : NULL;
        for (int k = 0; k < m->K; k++)
            if (!(per_task[k] = rf_grads_create(m))) opt = NULL;
    } else if (!opt) opt = own_opt = rf_adam_create(m, tc);
    /* row order (rf_row_order, dataset.c): a full shuffle per epoch, or shuffled blocks for
     * datasets streamed from a cache (bounded resident memory) */
    order = rf_row_order_create(train, tc->seed, B);
    if (dist) local = malloc((size_t)B * sizeof *local);
    if (!ws || !grads || !opt || !order || (dist && !local) || !snap_alloc(&best, m)) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory for training state");
        goto done;
    }
    snap_take(&best, m);
    int bad_evals = 0, stop = 0;
    int by_loss = 0; /* the monitor is NaN: early stopping on the validation loss instead */
    int ep0 = 0;
    long b0 = 0;
    if (rs) { /* continue a run: the optimizer, the kept best, the position and bookkeeping */
        if ((st = rf_optimizer_load_state(opt, rs->opt_state, rs->opt_state_n, err))) goto done;
        if (rs->best_params) {
            memcpy(best.params, rs->best_params, m->n_params * sizeof(float));
            if (m->n_buffers) memcpy(best.buffers, rs->best_buffers, m->n_buffers * sizeof(float));
            memcpy(best.emb, rs->best_emb, m->emb_off[m->F] * m->E * sizeof(float));
        }
        if ((st = resume_pos(rs, (train->n + B - 1) / B, &sum, &bad_evals, &by_loss, &seen, err))) goto done;
        ep0 = rs->pos.epoch;
        b0 = rs->pos.batch;
        /* an epoch's full shuffle starts from the previous epoch's permutation: replay them */
        for (int e = 0; e < ep0 && e < tc->epochs; e++) rf_row_order_epoch(order, e);
    }
    rf_batch bt = {train, NULL, 0, lc};
    size_t per_epoch = (train->n + B - 1) / B;
    long planned = (long)per_epoch * tc->epochs;
    if (planned > 0 && planned < MIN_STEPS && !(tc->max_steps > 0 && tc->max_steps < planned)) {
        long rows = (long)train->n * tc->epochs / MIN_STEPS, b = 1; /* a batch size giving >= 100 steps */
        while (b * 2 <= rows) b *= 2;
        logf_(log, ud,
              "warning: training takes only %ld optimizer steps (%zu training rows / train.batch_size %d = %zu "
              "per epoch, x %d epochs); fewer than %d rarely train a model: use a smaller train.batch_size "
              "(e.g. %ld) or more train.epochs",
              planned, train->n, B, per_epoch, tc->epochs, MIN_STEPS, b);
    }
    size_t n_batches = per_epoch;
    for (int ep = ep0; ep < tc->epochs && !stop; ep++) {
        rf_row_order_epoch(order, ep); /* seeded by (train.seed, epoch) */
        size_t bstart = ep == ep0 ? (size_t)b0 : 0;
        for (size_t bi = 0; bi < bstart; bi++) rf_row_order_next(order, &bt.B); /* resumed: done */
        for (size_t bi = bstart; bi < n_batches && !stop; bi++) {
            bt.rows = rf_row_order_next(order, &bt.B);
            if (bt.B <= 0) break;
            int global_B = bt.B;
            if (dist) {
                bt.B = dist->local_rows(dist->ud, bt.rows, global_B, local);
                bt.rows = local;
            }
            double loss = 0;
            st = bal ? rf_train_step_balanced(m, ws, per_task, bal, &bt, &loss, err)
                     : rf_train_step(m, ws, grads, opt, &bt, hk.grad_hook, hk.hook_ud, &loss, err);
            if (st == RF_ENUMERIC) {
                snap_restore(&best, m);
                st = rf_errorf(err, RF_ENUMERIC,
                               "non-finite training loss (%g) at epoch %d step %ld; training stopped, "
                               "the last good model (%s) was restored. Try a lower train.lr.",
                               loss, ep + 1, sum.steps + 1,
                               sum.best_epoch >= 0 ? "best validated" : "initial");
                goto done;
            }
            if (st) goto done;
            sum.steps++;
            seen += global_B;
            run_loss += loss * bt.B;
            run_n += bt.B;
            if (tc->log_every > 0 && sum.steps % tc->log_every == 0) {
                if (dist) { /* the loss over all processes' rows */
                    double v[2] = {run_loss, (double)run_n};
                    if ((st = dist->sum(dist->ud, v, 2, err))) goto done;
                    run_loss = v[0];
                    run_n = (long)v[1];
                }
                double t = now_sec();
                logf_(log, ud, "epoch %d step %ld | loss %.5f | %.0f samples/s | %.1f s", ep + 1,
                      sum.steps, run_loss / run_n, (seen - seen_log) / (t - tlog), t - t0);
                if (bal) log_weights(m, bal, tc->balance, ep + 1, sum.steps, log, ud);
                tlog = t;
                seen_log = seen;
                run_loss = 0;
                run_n = 0;
            }
            int last = bi + 1 == n_batches;
            int do_eval = valid && valid->n > 0 &&
                          (tc->eval_every > 0 ? sum.steps % tc->eval_every == 0 || last : last);
            if (tc->max_steps > 0 && sum.steps >= tc->max_steps) stop = 1;
            if (do_eval || (stop && valid && valid->n > 0)) {
                double te = now_sec();
                rf_eval_result ev;
                st = dist ? dist->evaluate(dist->ud, m, valid, &ev, err) : rf_evaluate(m, valid, 0, &ev, err);
                if (st) goto done;
                double score = rf_monitor_value(m, tc->monitor, &ev);
                if (!by_loss && !isfinite(score) && strcmp(tc->monitor, "loss") != 0) {
                    warn_monitor_nan(m, tc->monitor, &ev, log, ud);
                    by_loss = 1;
                    if (sum.best_epoch >= 0) sum.best_score = -sum.best_valid.loss; /* same scale */
                }
                if (by_loss) score = -ev.loss;
                char line[512];
                format_eval(m, &ev, line, sizeof line);
                int improved = score > sum.best_score;
                logf_(log, ud, "epoch %d valid | %s%s (%.1f s)", ep + 1, line, improved ? " *" : "",
                      now_sec() - te);
                if (improved) {
                    sum.best_score = score;
                    sum.best_epoch = ep + 1;
                    sum.best_valid = ev;
                    snap_take(&best, m);
                    bad_evals = 0;
                } else if (++bad_evals >= tc->patience && tc->patience > 0) {
                    logf_(log, ud, "early stop: no improvement of %s for %d evaluations",
                          by_loss ? "the validation loss" : tc->monitor, bad_evals);
                    sum.stopped_early = 1;
                    stop = 1;
                }
            }
            if (!stop && (cx.step_hook || cx.cancel)) { /* a step boundary: checkpoint, cancel */
                rf_train_state ts = {{0}, m, opt, best.params, best.buffers, best.emb, 0, loss};
                ts.cancelled = cx.cancel && cx.cancel(cx.cancel_ud);
                ts.pos = (rf_train_pos){last ? ep + 1 : ep, last ? 0 : (long)bi + 1, sum.steps, seen, bad_evals,
                                        by_loss, sum.best_score, sum.best_epoch, sum.best_valid};
                if (cx.step_hook && (st = cx.step_hook(cx.step_ud, &ts, err))) {
                    snap_restore(&best, m);
                    goto done;
                }
                if (ts.cancelled) {
                    logf_(log, ud, "training cancelled at epoch %d step %ld", ep + 1, sum.steps);
                    sum.cancelled = stop = 1;
                }
            }
        }
        sum.epochs_run = ep + 1;
    }
    if (valid && valid->n > 0 && sum.best_epoch >= 0) snap_restore(&best, m);
    st = RF_OK;
done:
    sum.seconds = now_sec() - t0;
    sum.samples_per_sec = sum.seconds > 0 ? seen / sum.seconds : 0;
    if (out) *out = sum;
    snap_free(&best);
    free(local);
    rf_row_order_free(order);
    rf_optimizer_free(own_opt);
    rf_balancer_free(bal);
    for (int k = 0; k < RF_MAX_TASKS; k++) rf_grads_free(per_task[k]);
    rf_grads_free(grads);
    rf_workspace_free(ws);
    omp_set_num_threads(omp_was);
    return st;
}
