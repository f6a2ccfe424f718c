/* names.h - the one name lookup of resflow's request paths: a stable sorted index of a few
 * dozen names (column names), and the binary search over it. The row encoder's columns
 * (rowenc.c) and the request parser's column list (serve/reqfast.c) use it. Internal, not
 * installed. */
#ifndef RESFLOW_NAMES_H
#define RESFLOW_NAMES_H

#include <string.h>

/* by[0..n) := the indices 0..n-1 in name order (strcmp), equal names in index order. */
static inline void rf_names_sort(const char *const *names, int n, int *by)
{
    for (int i = 0; i < n; i++) by[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: a few dozen names, once */
        for (int j = i; j > 0 && strcmp(names[by[j - 1]], names[by[j]]) > 0; j--) {
            int t = by[j];
            by[j] = by[j - 1];
            by[j - 1] = t;
        }
}

/* The lowest index i with names[i] equal to key (by from rf_names_sort), or -1. O(log n). */
static inline int rf_names_find(const char *const *names, const int *by, int n, const char *key)
{
    int lo = 0, hi = n;
    while (lo < hi) { /* the first position whose name is >= key */
        int mid = lo + (hi - lo) / 2;
        if (strcmp(names[by[mid]], key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && strcmp(names[by[lo]], key) == 0 ? by[lo] : -1;
}

#endif
