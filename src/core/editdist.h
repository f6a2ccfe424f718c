/* editdist.h - edit distance for "did you mean" suggestions (unknown config keys, unknown
 * column names); internal, header-only, no state. */
#ifndef RESFLOW_EDITDIST_H
#define RESFLOW_EDITDIST_H

#include <limits.h>
#include <string.h>

#define RF_EDIT_MAX 256 /* longer strings count as far apart */

/* Edit distance with adjacent transpositions (optimal string alignment). */
static inline int rf_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    int r0[RF_EDIT_MAX + 1], r1[RF_EDIT_MAX + 1], r2[RF_EDIT_MAX + 1]; /* rows i-2, i-1, i */
    int *pp = r0, *prev = r1, *cur = r2;
    if (n > RF_EDIT_MAX || m > RF_EDIT_MAX) return INT_MAX / 2;
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

/* Is distance d between a typo of length n and a candidate close enough to suggest? */
static inline int rf_edit_close(int d, size_t n) { return d <= 1 || (size_t)d * 4 <= n; }

#endif
