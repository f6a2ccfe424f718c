/* index_build.c - an item index from raw item rows (index.h, `resflow index`): rows encoded with
 * the model's encoders, a batch at a time through the twin model's item towers, the vectors
 * gathered and written with rf_index_write. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/index.h"
#include "resflow/pipeline.h"
#include "resflow/twin.h"

#define MAX_COLS (RF_MAX_FIELDS + RF_MAX_DENSE)

struct rf_index_builder {
    const rf_loaded_model *lm;
    rf_row_encoder *enc;
    rf_row_batch *rb;
    rf_workspace *ws;
    size_t *rows;
    const char *const *cols;
    int ncols, batch, threads, K, d;
    int item_col[MAX_COLS];     /* 1: read by the item towers */
    const char *names[MAX_COLS], *values[MAX_COLS];
    int pending;                /* rows encoded, vectors not computed yet */
    size_t n, cap;              /* items */
    float *v, *vb;              /* (cap, K, d), (cap, K) */
    char **ids;
};

void rf_index_builder_free(rf_index_builder *b)
{
    if (!b) return;
    rf_row_batch_free(b->rb);
    rf_row_encoder_free(b->enc);
    rf_workspace_free(b->ws);
    free(b->rows);
    for (size_t i = 0; i < b->n + (size_t)b->pending; i++) free(b->ids[i]);
    free(b->ids);
    free(b->v);
    free(b->vb);
    free(b);
}

rf_status rf_index_builder_create(const rf_loaded_model *lm, int batch, int threads, rf_index_builder **out,
                                  rf_error *err)
{
    if (!lm || !out) return rf_errorf(err, RF_EUSAGE, "rf_index_builder_create: NULL argument");
    *out = NULL;
    const rf_model *m = lm->model;
    if (!rf_model_is_twin(m))
        return rf_errorf(err, RF_EUSAGE, "an item index needs a twin-tower model (model.type: twin), not %s",
                         rf_model_type_name(rf_model_spec_of(m)->model.type));
    rf_index_builder *b = calloc(1, sizeof *b);
    if (!b) return rf_errorf(err, RF_ENOMEM, "out of memory");
    b->lm = lm;
    b->batch = batch > 0 ? batch : 4096;
    b->threads = threads;
    b->K = rf_model_info_of(m)->K;
    b->d = rf_twin_dim(m);
    rf_status st = rf_row_encoder_for_model(lm, &b->enc, err);
    if (st) {
        free(b);
        return st;
    }
    b->ncols = rf_row_encoder_columns(b->enc, &b->cols);
    int F = rf_model_info_of(m)->F;
    for (int c = 0; c < b->ncols && c < MAX_COLS; c++)
        b->item_col[c] = (c < F ? rf_twin_field_side(m, c) : rf_twin_dense_side(m, c - F)) == 1;
    b->rb = rf_row_batch_create(b->enc, (size_t)b->batch);
    b->ws = rf_workspace_create(m, b->batch);
    b->rows = malloc((size_t)b->batch * sizeof *b->rows);
    if (!b->rb || !b->ws || !b->rows || b->ncols > MAX_COLS) {
        rf_index_builder_free(b);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < b->batch; i++) b->rows[i] = (size_t)i;
    *out = b;
    return RF_OK;
}

static int column_of(const rf_index_builder *b, const char *name)
{
    for (int c = 0; c < b->ncols; c++)
        if (!strcmp(b->cols[c], name)) return c;
    return -1;
}

int rf_index_builder_item_column(const rf_index_builder *b, const char *name)
{
    int c = name ? column_of(b, name) : -1;
    return c >= 0 && b->item_col[c];
}

static rf_status grow(rf_index_builder *b, size_t need, rf_error *err)
{
    if (need <= b->cap) return RF_OK;
    size_t cap = b->cap ? 2 * b->cap : 4096;
    while (cap < need) cap *= 2;
    float *v = realloc(b->v, cap * (size_t)b->K * b->d * sizeof *v);
    if (v) b->v = v;
    float *vb = realloc(b->vb, cap * (size_t)b->K * sizeof *vb);
    if (vb) b->vb = vb;
    char **ids = realloc(b->ids, cap * sizeof *ids);
    if (ids) b->ids = ids;
    if (!v || !vb || !ids) return rf_errorf(err, RF_ENOMEM, "out of memory (%zu items)", need);
    b->cap = cap;
    return RF_OK;
}

/* The vectors of the pending rows. */
static rf_status flush(rf_index_builder *b, rf_error *err)
{
    if (!b->pending) return RF_OK;
    rf_batch bt = {rf_row_batch_dataset(b->rb), b->rows, b->pending, NULL};
    int was = omp_get_max_threads();
    if (b->threads > 0) omp_set_num_threads(b->threads);
    rf_status st = rf_twin_item_vectors(b->lm->model, b->ws, &bt, b->v + b->n * (size_t)b->K * b->d,
                                        b->vb + b->n * (size_t)b->K, err);
    omp_set_num_threads(was);
    if (st) return st;
    b->n += (size_t)b->pending;
    b->pending = 0;
    rf_row_batch_clear(b->rb);
    return RF_OK;
}

rf_status rf_index_builder_add(rf_index_builder *b, const char *id, int n, const char *const *names,
                               const char *const *values, rf_error *err)
{
    if (!b || !id || n < 0 || (n && (!names || !values)))
        return rf_errorf(err, RF_EUSAGE, "rf_index_builder_add: bad arguments");
    size_t row = b->n + (size_t)b->pending;
    rf_status st = grow(b, row + 1, err);
    if (st) return st;
    int m = 0;
    for (int j = 0; j < n && m < MAX_COLS; j++) {
        int c = names[j] ? column_of(b, names[j]) : -1;
        if (c < 0 || !b->item_col[c]) continue;
        b->names[m] = names[j];
        b->values[m++] = values[j];
    }
    /* user-side dense columns: any valid number (the item towers do not read them) */
    int F = rf_model_info_of(b->lm->model)->F;
    for (int c = F; c < b->ncols && m < MAX_COLS; c++)
        if (!b->item_col[c]) b->names[m] = b->cols[c], b->values[m++] = "0";
    rf_error sub;
    if ((st = rf_row_encode(b->enc, b->rb, m, b->names, b->values, &sub)))
        return rf_errorf(err, st, "item '%s' (item %zu): %s", id, row + 1, sub.msg);
    if (!(b->ids[row] = strdup(id))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    if (++b->pending == b->batch) return flush(b, err);
    return RF_OK;
}

size_t rf_index_builder_count(const rf_index_builder *b) { return b->n + (size_t)b->pending; }

rf_status rf_index_builder_write(rf_index_builder *b, const char *path, rf_error *err)
{
    rf_status st = flush(b, err);
    if (st) return st;
    return rf_index_write(path, rf_index_model_fingerprint(b->lm->model), b->n, b->K, b->d,
                          (const char *const *)b->ids, b->v, b->vb, b->threads, err);
}
