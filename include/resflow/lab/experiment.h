/* experiment.h - experiments: models x datasets x seeds, each run's resolved configuration,
 * run results on disk (so finished runs are not redone), and mean ± std tables. An umbrella:
 *
 *   exp_spec.h    the experiment (datasets, models, seeds, overrides; the experiment file),
 *                 the configuration of each run and its identity (rf_run_hash)
 *   exp_result.h  one run (train, evaluate) and its result file
 *   exp_table.h   statistics over seeds and the tables
 *
 * An experiment (docs/experiments.md) names datasets, models and seeds; the configuration of
 * each run is built in layers (exp_spec.h). All runs of one dataset share its data, so a caller
 * loads the data once per dataset; a result whose hash matches the current configuration is
 * reused instead of training again.
 *
 * Statistics over seeds: the mean and the sample standard deviation (n - 1 denominator) of the
 * runs that finished; diverged runs (non-finite loss) are counted separately. Metrics are
 * matched by task name across the models of a dataset (models may have different tasks, e.g.
 * the progressive and the traditional regression heads); runs with a regression target also
 * report MSE, RMSE and MAE (lower is better).
 * Tables: Markdown, CSV (one row per dataset, model and metric) and JSON (every run's values
 * and the summaries). Library code: no printing, errors as rf_status + rf_error.
 */
#ifndef RESFLOW_EXPERIMENT_H
#define RESFLOW_EXPERIMENT_H

#include "exp_result.h"
#include "exp_spec.h"
#include "exp_table.h"

#endif
