/* regression.c - regression as progressive multi-task: threshold labels and the expected-value
 * prediction of a model's outputs (contract in include/resflow/regression.h, docs/regression.md;
 * thresholds and task generation of a configuration are in src/run/regression_cfg.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/metrics.h"
#include "resflow/regression.h"

/* v in the shortest %g form that reads back to the same float */
static void short_float(char *buf, size_t n, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

void rf_regression_label(const char *target, float v, char out[RF_SPEC_MAX])
{
    char num[48];
    short_float(num, sizeof num, v);
    snprintf(out, RF_SPEC_MAX, "%.*s>=%s", RF_NAME_MAX - 1, target, num);
}

rf_status rf_regression_predict(const rf_model_spec *sp, const float *P, size_t n, float *out, rf_error *err)
{
    const rf_regression_cfg *rg = &sp->regression;
    int K = sp->K;
    if (!rg->target[0]) return rf_errorf(err, RF_EUSAGE, "the model has no regression target");
    if (rg->head == RF_REG_TRADITIONAL) {
        int k = 0;
        while (k < K && sp->tasks[k].loss != RF_LOSS_MSE) k++;
        if (k == K) return rf_errorf(err, RF_EUSAGE, "the traditional regression head has no mse task");
        for (size_t i = 0; i < n; i++) out[i] = P[i * (size_t)K + (size_t)k];
        return RF_OK;
    }
    const rf_floats *thr = &rg->thresholds;
    int J = thr->n - 1, idx[RF_MAX_THRESHOLDS];
    if (J < 1) return rf_errorf(err, RF_EUSAGE, "regression: the model's thresholds are not resolved");
    for (int j = 0; j < J; j++) {
        char lab[RF_SPEC_MAX];
        rf_regression_label(rg->target, thr->v[j + 1], lab);
        idx[j] = -1;
        for (int k = 0; k < K && idx[j] < 0; k++)
            if (!strcmp(sp->tasks[k].label, lab)) idx[j] = k;
        if (idx[j] < 0) return rf_errorf(err, RF_EUSAGE, "regression: no task has the label %s", lab);
    }
    for (size_t i = 0; i < n; i++) {
        float q[RF_MAX_THRESHOLDS];
        for (int j = 0; j < J; j++) q[j] = P[i * (size_t)K + (size_t)idx[j]];
        out[i] = (float)rf_expected_value(q, 1, J, thr->v);
    }
    return RF_OK;
}
