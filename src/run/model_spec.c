/* model_spec.c - from an experiment configuration to a model specification (the architecture,
 * the task tree and the regression semantics of the config, the input schema of the data, the
 * seed of train.seed), and the model built from it. */
#include <string.h>

#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/synth.h"

/* Twin model: model.item_dense's names resolved to dense-feature indices, against data.dense
 * (a file source, or the schema of a loaded model), or the simulator's dense columns. */
static void twin_dense_sides(const rf_config *cfg, int D, rf_model_cfg *mc)
{
    const rf_schema *sc = &cfg->data.schema;
    rf_dataset *tiny = NULL;
    const char(*names)[RF_NAME_MAX] = NULL;
    if (mc->n_item_dense < 1) return;
    if (sc->D == D) {
        names = sc->dense;
    } else if (!strcmp(cfg->data.source, "synth")) { /* the simulator names its columns: one row */
        rf_synth_opts so = cfg->data.synth;
        rf_error e;
        so.rows = 1, so.n_users = so.n_items = so.n_queries = 1, so.threads = 1;
        if (rf_synth_generate(&so, &tiny, &e) == RF_OK && tiny->D == D) names = (const char(*)[RF_NAME_MAX])tiny->dense_names;
    }
    for (int i = 0; i < mc->n_item_dense && i < RF_MAX_TWIN_DENSE; i++) {
        int j = 0;
        while (names && j < D && strcmp(names[j], mc->item_dense[i])) j++;
        if (!names || j >= D || j >= RF_MAX_TWIN_DENSE_IDX) {
            mc->item_dense_bad = i + 1;
            break;
        }
        mc->item_dense_mask[j / 64] |= 1ull << (j % 64);
    }
    rf_dataset_free(tiny);
}

void rf_config_model_spec(const rf_config *cfg, int F, const rf_field *fields, int D, rf_model_spec *out)
{
    memset(out, 0, sizeof *out);
    out->model = cfg->model;
    out->K = cfg->K;
    memcpy(out->tasks, cfg->tasks, sizeof out->tasks);
    out->regression = cfg->regression;
    out->seed = cfg->train.seed;
    out->F = F < 0 ? 0 : F > RF_MAX_FIELDS ? RF_MAX_FIELDS + 1 : F; /* rf_model_create refuses > max */
    for (int f = 0; f < F && f < RF_MAX_FIELDS; f++) out->fields[f] = fields[f];
    out->D = D;
    if (out->model.type == RF_MODEL_TWIN) twin_dense_sides(cfg, D, &out->model);
}

rf_status rf_config_create_model(const rf_config *cfg, int F, const rf_field *fields, int D, rf_model **out,
                                 rf_error *err)
{
    rf_model_spec spec;
    rf_config_model_spec(cfg, F, fields, D, &spec);
    return rf_model_create(&spec, out, err);
}
