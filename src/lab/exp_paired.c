/* exp_paired.c - the paired difference of a metric between two items of an experiment over
 * the seeds they share (exp_table.h): the runs of one seed share data and initialisation seed,
 * so d_s = a_s - b_s removes what the seed does to both; mean and Student-t interval. */
#include <math.h>
#include <stdio.h>

#include "resflow/lab/exp_table.h"

/* two-sided 95 % Student-t quantiles t_{0.975, df}, df = 1..30; beyond, the normal's */
static double t975(int df)
{
    static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    return df >= 1 && df <= 30 ? t[df - 1] : 1.960;
}

rf_paired_diff rf_paired_seed_diff(const double *a, const double *b, int n)
{
    rf_paired_diff r = {NAN, NAN, NAN, 0, 0};
    double d[RF_EXP_MAX_SEEDS];
    int m = 0;
    for (int s = 0; s < n && s < RF_EXP_MAX_SEEDS; s++)
        if (isfinite(a[s]) && isfinite(b[s])) d[m++] = a[s] - b[s];
    r.n = m;
    if (m == 0) return r;
    double mean = 0, var = 0;
    for (int i = 0; i < m; i++) mean += d[i];
    mean /= m;
    r.mean = mean;
    if (m < 2) return r;
    for (int i = 0; i < m; i++) var += (d[i] - mean) * (d[i] - mean);
    double half = t975(m - 1) * sqrt(var / (m - 1) / m);
    r.lo = mean - half;
    r.hi = mean + half;
    r.significant = r.lo > 0 || r.hi < 0;
    return r;
}

void rf_paired_diff_format(char *buf, size_t n, const rf_paired_diff *d)
{
    if (d->n == 0) snprintf(buf, n, "-");
    else if (d->n < 2) snprintf(buf, n, "%+.4f (1 seed)", d->mean);
    else snprintf(buf, n, "%+.4f [%+.4f, %+.4f]%s", d->mean, d->lo, d->hi, d->significant ? " *" : "");
}
