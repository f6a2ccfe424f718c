/* dist.c - data-parallel training over a communicator (dist.h): the shard of every global
 * batch, the gradient exchange (dense: one flat all-reduce; embeddings: the touched rows
 * gathered everywhere and merged in rank order), evaluation over all processes, and the check
 * that every process holds the same parameters. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "resflow/dist.h"

struct rf_dist {
    rf_comm *c;
    int rank, size, threads, E;
    size_t lo, hi;          /* this process's training rows */
    int local_B, global_B;  /* of the current step */
    rf_train_dist td;
    unsigned char *send, *recv;
    size_t send_cap, recv_cap;
    size_t *counts;         /* (size) */
    uint64_t *nrows;        /* (size) */
    uint64_t emb_sent;
    long steps;
};

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 1;
    size_t nc = need > 2 * *cap ? need : 2 * *cap;
    unsigned char *p = realloc(*buf, nc);
    if (!p) return 0;
    *buf = p;
    *cap = nc;
    return 1;
}

static int local_rows(void *ud, const size_t *rows, int B, size_t *out)
{
    rf_dist *d = ud;
    int n = 0;
    for (int i = 0; i < B; i++)
        if (rows[i] >= d->lo && rows[i] < d->hi) out[n++] = rows[i];
    d->local_B = n;
    d->global_B = B;
    return n;
}

static rf_status sum_doubles(void *ud, double *v, int n, rf_error *err)
{
    rf_dist *d = ud;
    return rf_comm_sum_f64(d->c, v, (size_t)n, err);
}

static rf_status evaluate(void *ud, const rf_model *m, const rf_dataset *ds, rf_eval_result *out, rf_error *err)
{
    return rf_dist_evaluate(ud, m, ds, out, err);
}

/* The sparse rows of all processes, merged in rank order into g (the same sums everywhere). */
static rf_status exchange_emb(rf_dist *d, rf_grads *g, float scale, rf_error *err)
{
    const uint32_t *rows;
    float *vals;
    size_t n = rf_grads_emb(g, &rows, &vals), E = (size_t)d->E, row_bytes = 4 + 4 * E;
    if (!grow(&d->send, &d->send_cap, n ? n * row_bytes : 1))
        return rf_errorf(err, RF_ENOMEM, "out of memory for the embedding exchange");
    memcpy(d->send, rows, n * 4);
    float *sv = (float *)(d->send + n * 4);
    for (size_t i = 0; i < n * E; i++) sv[i] = vals[i] * scale;
    uint64_t mine = n;
    rf_status st = rf_comm_allgather(d->c, &mine, sizeof mine, d->nrows, err);
    if (st) return st;
    size_t total = 0;
    for (int r = 0; r < d->size; r++) total += d->counts[r] = (size_t)d->nrows[r] * row_bytes;
    if (!grow(&d->recv, &d->recv_cap, total ? total : 1))
        return rf_errorf(err, RF_ENOMEM, "out of memory for the embedding exchange");
    if ((st = rf_comm_allgatherv(d->c, d->send, d->recv, d->counts, err))) return st;
    d->emb_sent += n;
    rf_grads_emb_clear(g);
    const unsigned char *p = d->recv;
    for (int r = 0; r < d->size && !st; r++) {
        size_t nr = (size_t)d->nrows[r];
        st = rf_grads_emb_add(g, (const uint32_t *)p, (const float *)(p + nr * 4), nr, err);
        p += d->counts[r];
    }
    return st;
}

static rf_status grad_hook(void *ud, const rf_model *m, rf_grads *g, rf_error *err)
{
    (void)m;
    rf_dist *d = ud;
    d->steps++;
    if (d->size == 1) return RF_OK;
    /* each process's batch mean over its B_r rows, times B_r / B: the global batch mean */
    float scale = d->global_B > 0 ? (float)((double)d->local_B / d->global_B) : 0.0f;
    size_t nd;
    float *dense = rf_grads_dense(g, &nd);
    for (size_t i = 0; i < nd; i++) dense[i] *= scale;
    rf_status st = rf_comm_sum_f32(d->c, dense, nd, err);
    return st ? st : exchange_emb(d, g, scale, err);
}

rf_dist *rf_dist_create(rf_comm *c, const rf_model *m, size_t n_train, int threads)
{
    rf_dist *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->c = c;
    d->rank = rf_comm_rank(c);
    d->size = rf_comm_size(c);
    d->threads = threads;
    d->E = rf_model_info_of(m)->E;
    d->lo = n_train * (size_t)d->rank / (size_t)d->size;
    d->hi = n_train * (size_t)(d->rank + 1) / (size_t)d->size;
    d->counts = calloc((size_t)d->size, sizeof *d->counts);
    d->nrows = calloc((size_t)d->size, sizeof *d->nrows);
    d->td = (rf_train_dist){d, local_rows, sum_doubles, evaluate};
    if (!d->counts || !d->nrows) {
        rf_dist_free(d);
        return NULL;
    }
    return d;
}

void rf_dist_free(rf_dist *d)
{
    if (!d) return;
    free(d->send);
    free(d->recv);
    free(d->counts);
    free(d->nrows);
    free(d);
}

rf_status rf_dist_check_model(const rf_comm *c, const rf_model *m, rf_error *err)
{
    /* every model trains data-parallel: BatchNorm is synchronised over the processes through
     * rf_train_dist's sum (rf_ws_set_batch_sum, model.h) */
    (void)c;
    (void)m;
    (void)err;
    return RF_OK;
}

void rf_dist_hooks(rf_dist *d, rf_train_hooks *h)
{
    h->grad_hook = grad_hook;
    h->hook_ud = d;
}

const rf_train_dist *rf_dist_train_dist(const rf_dist *d) { return &d->td; }

rf_status rf_dist_evaluate(rf_dist *d, const rf_model *m, const rf_dataset *ds, rf_eval_result *out, rf_error *err)
{
    size_t n = ds->n, K = (size_t)rf_model_info_of(m)->K, N = (size_t)d->size;
    size_t lo = n * (size_t)d->rank / N, hi = n * (size_t)(d->rank + 1) / N;
    float *P = malloc((n ? n : 1) * K * sizeof *P), *C = malloc((n ? n : 1) * K * sizeof *C);
    float *Pl = malloc((hi - lo ? hi - lo : 1) * K * sizeof *Pl), *Cl = malloc((hi - lo ? hi - lo : 1) * K * sizeof *Cl);
    rf_dataset *part = d->size > 1 ? rf_dataset_range(ds, lo, hi) : NULL;
    rf_status st = RF_OK;
    if (!P || !C || !Pl || !Cl || (d->size > 1 && !part)) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    else st = rf_predict(m, part ? part : ds, d->threads, Pl, Cl, err);
    if ((st = rf_comm_agree(d->c, st, err))) goto done; /* nobody waits for a failed process */
    for (int r = 0; r < d->size; r++) d->counts[r] = (n * (r + 1) / N - n * r / N) * K * sizeof(float);
    if ((st = rf_comm_allgatherv(d->c, Pl, P, d->counts, err))) goto done;
    if ((st = rf_comm_allgatherv(d->c, Cl, C, d->counts, err))) goto done;
    st = rf_evaluate_probs(m, ds, P, C, out, err);
done:
    rf_dataset_free(part);
    free(P);
    free(C);
    free(Pl);
    free(Cl);
    return st;
}

rf_status rf_dist_check_params(rf_dist *d, const rf_model *m, rf_error *err)
{
    const rf_model_info *in = rf_model_info_of(m);
    XXH3_state_t *s = XXH3_createState();
    if (!s) return rf_errorf(err, RF_ENOMEM, "out of memory");
    XXH3_64bits_reset(s);
    XXH3_64bits_update(s, rf_model_params(m), in->n_params * sizeof(float));
    XXH3_64bits_update(s, rf_model_buffers(m), in->n_buffers * sizeof(float));
    XXH3_64bits_update(s, rf_model_emb(m), in->n_emb_rows * (size_t)in->E * sizeof(float));
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    rf_status st = rf_comm_check_same(d->c, &h, sizeof h, "parameters", err);
    if (st == RF_EUSAGE) err->code = st = RF_EINTERNAL;
    return st;
}

void rf_dist_stats(const rf_dist *d, uint64_t *emb_rows_sent, long *steps)
{
    if (emb_rows_sent) *emb_rows_sent = d->emb_sent;
    if (steps) *steps = d->steps;
}
