/* exp_int.h - what the lab's experiment files share beyond the public headers (private). */
#ifndef RESFLOW_LAB_EXP_INT_H
#define RESFLOW_LAB_EXP_INT_H

#include <jansson.h>

#include "resflow/lab/experiment.h"

/* Append a copy of text (with its file:line:col) to *arr[0..*n) (exp_spec.c). */
rf_status rf_exp_push_set_(rf_exp_set **arr, int *n, const char *text, long line, long col, rf_error *err);
/* Why the override "key=value" may not be given at this level, or NULL (exp_spec.c). */
const char *rf_exp_forbidden_key_(const char *text, int dataset_level);
/* Add model NAME of TYPE (exp_spec.c). */
rf_status rf_exp_add_model_(rf_experiment *x, const char *name, const char *type, rf_error *err);
/* A finite number, or JSON null (exp_result.c). */
json_t *rf_exp_json_num_(double v);

#endif
