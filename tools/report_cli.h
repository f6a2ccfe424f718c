/* report_cli.h - the HTML report of one model (cmd_report.c), for train --report and resflow report. */
#ifndef RESFLOW_REPORT_CLI_H
#define RESFLOW_REPORT_CLI_H

#include "progress.h"
#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/train.h"

/* Write the page to path: summary, curves (pg; NULL = none recorded), the test metrics te on
 * test (NULL = none) and a calibration plot per probability task. 0 or the exit code (printed). */
int report_run(const char *path, const rf_model *m, const rf_config *cfg, const rf_dataset *test,
               const rf_eval_result *te, const progress *pg, const rf_train_summary *ts);

#endif
