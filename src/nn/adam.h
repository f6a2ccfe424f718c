/* adam.h - Adam's moments and updates, shared by the optimizers of the nn wing (optim.c's Adam,
 * balance.c's PUB): the dense update (torch.optim.Adam) and the lazy row-sparse update
 * (torch.optim.SparseAdam) at step t, and the moments' allocation and byte form. Internal. */
#ifndef RESFLOW_NN_ADAM_H
#define RESFLOW_NN_ADAM_H

#include <stddef.h>
#include <stdint.h>

#include "resflow/trainopts.h"

typedef struct {
    float *m, *v;   /* (n) dense moments */
    float *em, *ev; /* (ne) embedding moments (rows x E) */
    size_t n, ne;
} rf_adam_moments_;

/* Zeroed moments for n dense parameters and ne embedding floats; -1 when out of memory (free
 * what was made with rf_adam_moments_free_). */
int rf_adam_moments_alloc_(rf_adam_moments_ *s, size_t n, size_t ne);
void rf_adam_moments_free_(rf_adam_moments_ *s);
/* The moments as little-endian floats: m, v, em, ev (4 (2n + 2ne) bytes). */
size_t rf_adam_moments_bytes_(const rf_adam_moments_ *s);
void rf_adam_moments_save_(const rf_adam_moments_ *s, unsigned char *p);
void rf_adam_moments_load_(rf_adam_moments_ *s, const unsigned char *p);

/* Adam at step t (>= 1) on n dense parameters p with gradients g, moments m, v (tc's lr, betas,
 * eps, weight_decay). */
void rf_adam_dense_(const rf_train_cfg *tc, long t, float *p, float *m, float *v, const float *g, size_t n);
/* Lazy Adam at step t on nr embedding rows (rows[i] of the table emb, E floats each) with
 * gradients eg (nr, E) and moments em, ev (tc's emb_lr or lr, emb_weight_decay). */
void rf_adam_sparse_(const rf_train_cfg *tc, long t, float *emb, float *em, float *ev, int E, const uint32_t *rows,
                     const float *eg, size_t nr);

#endif
