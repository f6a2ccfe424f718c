/* signif_cli.c - significance columns of the tool's comparison tables (compare, eval): the
 * --signif / --baseline options, one paired test per cell (signif.h), the cell text, the
 * entire-space CVR label of a task (cf_<label>, the simulator's counterfactual outcome). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int signif_parse(const char *s, signif_opts *so)
{
    memset(so, 0, sizeof *so);
    so->method = SIGNIF_DELONG;
    so->reps = 200;
    so->seed = 1;
    so->level = 0.95;
    if (!s || !strcmp(s, "delong")) return 0;
    if (!strcmp(s, "none")) {
        so->method = SIGNIF_NONE;
        return 0;
    }
    if (!strncmp(s, "bootstrap", 9)) {
        so->method = SIGNIF_BOOTSTRAP;
        if (s[9] == 0) return 0;
        char *end;
        long r = s[9] == ':' ? strtol(s + 10, &end, 10) : -1;
        if (s[9] != ':' || *end || r < 10 || r > 100000) return -1;
        so->reps = (int)r;
        return 0;
    }
    return -1;
}

rf_status signif_pair(const signif_opts *so, const float *a, size_t as, const float *b, size_t bs, const float *label,
                      size_t ls, const float *mask, size_t ms, const uint64_t *group, size_t n, int threads,
                      rf_auc_diff *d, rf_error *e)
{
    if (so->method == SIGNIF_BOOTSTRAP)
        return rf_auc_bootstrap(a, as, b, bs, label, ls, mask, ms, group, n, so->reps, so->seed, threads, so->level,
                                d, e);
    return rf_auc_delong(a, as, b, bs, label, ls, mask, ms, n, so->level, d, e);
}

const char *signif_cell(char *buf, size_t cap, const rf_auc_diff *d)
{
    snprintf(buf, cap, "%+.4f [%+.4f,%+.4f]%s", d->diff, d->lo, d->hi, rf_auc_diff_significant(d) ? "*" : " ");
    return buf;
}

const char *signif_name(const signif_opts *so)
{
    static char b[64]; /* tools/ only: one table at a time */
    if (so->method == SIGNIF_BOOTSTRAP) snprintf(b, sizeof b, "paired bootstrap over queries, %d replicates", so->reps);
    else snprintf(b, sizeof b, "DeLong");
    return b;
}

json_t *signif_json(const rf_auc_diff *d)
{
    json_t *j = json_object();
    json_object_set_new(j, "diff", json_real(d->diff));
    json_object_set_new(j, "lo", json_real(d->lo));
    json_object_set_new(j, "hi", json_real(d->hi));
    json_object_set_new(j, "se", json_real(d->se));
    json_object_set_new(j, "p", json_real(d->p));
    json_object_set_new(j, "significant", json_boolean(rf_auc_diff_significant(d)));
    return j;
}
