/* config.h - experiment configuration: YAML file (libyaml) + `--set key=value` overrides.
 *
 * The configuration is a tree of YAML mappings flattened to dotted keys, e.g.
 *   model.type, model.hidden (a flow sequence [256, 128, 64] or "256,128,64"),
 *   tasks.0.name, tasks.1.parent, train.lr, data.source ...
 * Every key is declared in one table in src/run/config_keys.c (name, type, default, help;
 * the other files of the configuration: src/run/config_int.h); an
 * unknown key in a file or in --set is an error naming file:line:column (or the --set).
 * Overrides are applied after the file, so the command line wins.
 * rf_config_dump() writes the fully resolved configuration back as YAML that
 * rf_config_load() reads again to the same values (it is stored inside model files).
 */
#ifndef RESFLOW_CONFIG_H
#define RESFLOW_CONFIG_H

#include "data.h"
#include "resflow.h"
#include "source.h" /* rf_data_cfg */
#include "spec.h"
#include "trainopts.h"

#ifdef __cplusplus
extern "C" {
#endif



typedef struct {
    rf_model_cfg model;
    int K;
    rf_task_cfg tasks[RF_MAX_TASKS];
    rf_train_cfg train;
    rf_data_cfg data;
    rf_regression_cfg regression;
} rf_config;

/* Built-in defaults: the simulator with 2 tasks (ctr: label click; ctcvr: label order, the
 * entire-space click-and-order label), ResFlow. */
RF_API void rf_config_default(rf_config *cfg);

/* Load a YAML file on top of *cfg (which should hold defaults). */
RF_API rf_status rf_config_load_file(rf_config *cfg, const char *path, rf_error *err);
/* Load YAML text (name used in error messages). */
RF_API rf_status rf_config_load_string(rf_config *cfg, const char *text, size_t len,
                                       const char *name, rf_error *err);
/* Apply one "key=value" override (value parsed as YAML scalar or flow sequence). */
RF_API rf_status rf_config_set(rf_config *cfg, const char *assignment, rf_error *err);
/* Check cross-field consistency (task tree acyclic, parents exist, sizes > 0 ...). */
RF_API rf_status rf_config_validate(const rf_config *cfg, rf_error *err);
/* The fully resolved configuration as YAML text (malloc'ed; caller frees). */
RF_API char *rf_config_dump(const rf_config *cfg);
/* One line per key: name, type, default, help (for `resflow config --keys`). */
RF_API char *rf_config_describe(void);

/* ---- regression as progressive multi-task (docs/regression.md; the prediction: regression.h) */

/* The thresholds of cfg: regression.thresholds, or the quantiles of train's target column
 * (train may be NULL when the thresholds are explicit). */
RF_API rf_status rf_regression_thresholds(const rf_config *cfg, const rf_dataset *train, rf_floats *out,
                                          rf_error *err);

/* Resolve a regression configuration (no-op without regression.target) for a model:
 * thresholds made explicit (quantiles of train's target), and the tasks
 *   progressive: ge<v_1> -> ge<v_2> -> ... -> ge<v_K> with labels target>=v_k (a configured
 *                task list that is exactly that chain keeps its names and weights);
 *   traditional: one task named after the target, label = the target, loss mse.
 * Any other configured task list than these or the built-in default is an error, as is a
 * train.monitor that the resolved tasks cannot give (auc:<missing task>; mean_auc with the
 * traditional head), or a resolved configuration that does not validate (the traditional head
 * on a model without the mse loss). Idempotent. */
RF_API rf_status rf_regression_resolve(rf_config *cfg, const rf_dataset *train, rf_error *err);

/* Append the labels target>=v_k (k = 1..K) that ds lacks, computed from its target column
 * (not for a memory-mapped dataset). */
RF_API rf_status rf_regression_derive_labels(const rf_config *cfg, const rf_floats *thr, rf_dataset *ds,
                                             rf_error *err);

/* Index of task by name, -1 if absent. */
RF_API int rf_config_task_index(const rf_config *cfg, const char *name);

/* The model specification of a configuration for data with F fields (fields, with their
 * vocabulary sizes) and D dense features: model.*, tasks.*, regression.* and train.seed. */
RF_API void rf_config_model_spec(const rf_config *cfg, int F, const rf_field *fields, int D,
                                 rf_model_spec *out);
/* rf_model_create of that specification. */
struct rf_model;
RF_API rf_status rf_config_create_model(const rf_config *cfg, int F, const rf_field *fields, int D,
                                        struct rf_model **out, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
