/* expr.c - label and filter expressions ("col", "a*b", "col OP value") and the labels derived
 * from them for a loaded dataset (rf_dataset_derive_labels, simulator data). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "data/loader.h"


static void trim_copy(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Parse "col", "a*b", "col OP value" (OP: >= > <= < == = !=). Returns 0, or -1 with why. */
int rf_parse_expr_(const char *spec, expr *x, char *why, size_t wn)
{
    memset(x, 0, sizeof *x);
    const char *o = strpbrk(spec, "<>=!");
    if (!o) {
        const char *star = strchr(spec, '*');
        if (star) {
            x->kind = X_PROD;
            trim_copy(x->a, sizeof x->a, spec, (size_t)(star - spec));
            trim_copy(x->b, sizeof x->b, star + 1, strlen(star + 1));
            if (!x->a[0] || !x->b[0]) {
                snprintf(why, wn, "\"%s\": expected a*b", spec);
                return -1;
            }
            return 0;
        }
        x->kind = X_COL;
        trim_copy(x->a, sizeof x->a, spec, strlen(spec));
        return 0;
    }
    const char *val;
    if (*o == '>' || *o == '<') {
        int eq = o[1] == '=';
        x->op = *o == '>' ? (eq ? OP_GE : OP_GT) : (eq ? OP_LE : OP_LT);
        val = o + 1 + eq;
    } else if (*o == '=') {
        x->op = OP_EQ;
        val = o + 1 + (o[1] == '=');
    } else {
        if (o[1] != '=') {
            snprintf(why, wn, "\"%s\": expected != ", spec);
            return -1;
        }
        x->op = OP_NE;
        val = o + 2;
    }
    trim_copy(x->a, sizeof x->a, spec, (size_t)(o - spec));
    trim_copy(x->text, sizeof x->text, val, strlen(val));
    x->tlen = strlen(x->text);
    if (!x->a[0]) {
        snprintf(why, wn, "\"%s\": no column name before the operator", spec);
        return -1;
    }
    char *end;
    double v = x->tlen ? strtod(x->text, &end) : 0;
    if (x->tlen && *end == '\0' && isfinite(v)) {
        x->kind = X_NUM;
        x->v = v;
    } else {
        x->kind = X_STR;
        if (x->op != OP_EQ && x->op != OP_NE) {
            snprintf(why, wn, "\"%s\": %s needs a number", spec, x->op == OP_GE ? ">=" : x->op == OP_GT ? ">" : x->op == OP_LE ? "<=" : "<");
            return -1;
        }
    }
    return 0;
}

/* ---- derived labels (simulator data) ------------------------------------------------------------ */

rf_status rf_dataset_derive_labels(rf_dataset *ds, const char (*specs)[RF_SPEC_MAX], int n, rf_error *err)
{
    int add = 0;
    expr xs[RF_MAX_LABELS];
    int ca[RF_MAX_LABELS], cb[RF_MAX_LABELS], which[RF_MAX_LABELS];
    char why[256];
    for (int i = 0; i < n; i++) {
        if (rf_dataset_label_index(ds, specs[i]) >= 0) continue;
        int dup = 0;
        for (int j = 0; j < add; j++)
            if (!strcmp(specs[which[j]], specs[i])) dup = 1;
        if (dup) continue;
        if (strlen(specs[i]) >= RF_NAME_MAX)
            return rf_errorf(err, RF_EUSAGE, "label \"%s\": longer than %d characters", specs[i], RF_NAME_MAX - 1);
        expr *x = &xs[add];
        if (rf_parse_expr_(specs[i], x, why, sizeof why)) return rf_errorf(err, RF_EUSAGE, "label %s", why);
        if (x->kind == X_COL || x->kind == X_STR) {
            char have[512] = "";
            for (int k = 0; k < ds->K; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "", ds->label_names[k]);
            return rf_errorf(err, RF_EUSAGE, "label \"%s\" is not in the data (labels: %s)", specs[i], have);
        }
        ca[add] = rf_dataset_label_index(ds, x->a);
        cb[add] = x->kind == X_PROD ? rf_dataset_label_index(ds, x->b) : 0;
        if (ca[add] < 0 || cb[add] < 0)
            return rf_errorf(err, RF_EUSAGE, "label \"%s\": column \"%s\" is not a label of the data", specs[i],
                             ca[add] < 0 ? x->a : x->b);
        which[add++] = i;
    }
    if (!add) return RF_OK;
    /* a mapped dataset (a cache) gets its new label array as an anonymous mapping handed to the
     * file mapping, released with it */
    int mapped = ds->map != NULL;
    if (mapped && ds->truth) return rf_errorf(err, RF_EUSAGE, "cannot derive labels of a mapped dataset with truths");
    int K = ds->K, K2 = K + add;
    size_t lbytes = (ds->n ? ds->n : 1) * (size_t)K2 * sizeof(float);
    float *lab = NULL;
    if (!mapped) {
        lab = malloc(lbytes);
    } else {
        void *p = mmap(NULL, lbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        lab = p == MAP_FAILED ? NULL : p;
    }
    float *tr = ds->truth ? malloc((ds->n ? ds->n : 1) * (size_t)K2 * sizeof *tr) : NULL;
    char (*names)[RF_NAME_MAX] = calloc((size_t)K2, RF_NAME_MAX);
    if (!lab || (ds->truth && !tr) || !names || (mapped && rf_mapping_add_region_(ds->map, lab, lbytes))) {
        if (mapped && lab) munmap(lab, lbytes);
        else free(lab);
        free(tr);
        free(names);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    memcpy(names, ds->label_names, (size_t)K * RF_NAME_MAX);
    for (int j = 0; j < add; j++) snprintf(names[K + j], RF_NAME_MAX, "%s", specs[which[j]]);
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * (size_t)K;
        float *o = lab + i * (size_t)K2;
        memcpy(o, y, (size_t)K * sizeof *o);
        for (int j = 0; j < add; j++) {
            const expr *x = &xs[j];
            o[K + j] = x->kind == X_PROD ? y[ca[j]] * y[cb[j]] : (float)cmp_num(x->op, y[ca[j]], x->v);
        }
        if (tr) {
            memcpy(tr + i * (size_t)K2, ds->truth + i * (size_t)K, (size_t)K * sizeof *tr);
            for (int j = 0; j < add; j++) tr[i * (size_t)K2 + (size_t)K + (size_t)j] = NAN;
        }
    }
    if (!mapped) free(ds->labels); /* else it lies in the file mapping */
    free(ds->truth);
    free(ds->label_names);
    ds->labels = lab;
    ds->truth = tr;
    ds->label_names = names;
    ds->K = K2;
    return RF_OK;
}

