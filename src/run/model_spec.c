/* model_spec.c - from an experiment configuration to a model specification (the architecture,
 * the task tree and the regression semantics of the config, the input schema of the data, the
 * seed of train.seed), and the model built from it. */
#include <string.h>

#include "resflow/config.h"
#include "resflow/model.h"

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
}

rf_status rf_config_create_model(const rf_config *cfg, int F, const rf_field *fields, int D, rf_model **out,
                                 rf_error *err)
{
    rf_model_spec spec;
    rf_config_model_spec(cfg, F, fields, D, &spec);
    return rf_model_create(&spec, out, err);
}
