/* keep_cols.h - raw columns of an input file, for `resflow predict --keep COLS` (and the group's
 * value with --with-labels): read from the text as typed, one value per data line. */
#ifndef RESFLOW_KEEP_COLS_H
#define RESFLOW_KEEP_COLS_H

#include <stddef.h>

#include "resflow/schema.h"

typedef struct {
    int ncols;
    char **name;  /* (ncols) */
    size_t rows;
    char **val;   /* (rows, ncols) row-major, tabs and newlines replaced by spaces */
} kept_cols;

/* The columns of list (comma-separated; NULL = none) and, when group is not NULL and the file
 * has it, that column too (last) from the plain text file path, read with the model's text
 * format s (delimiter, header or column names). want_rows: the rows the model scored; a file
 * with another count of data lines (rows skipped or filtered) is an error, as is an unknown
 * column (the message lists the file's columns). 0 or an exit code (printed). */
int kept_read(const char *path, const rf_schema *s, const char *list, const char *group, size_t want_rows,
              kept_cols *k);
/* The index of column name in k, -1 if absent. */
int kept_index(const kept_cols *k, const char *name);
void kept_free(kept_cols *k);

#endif
