/* keep_cols.c - raw columns of an input file for predict --keep (keep_cols.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keep_cols.h"

/* Split line (modified in place) at delim into at most cap fields; double quotes around a field
 * are removed ("" inside is a quote). Returns the field count. */
static int split(char *line, const char *delim, char **f, int cap)
{
    size_t dl = strlen(delim);
    int n = 0;
    char *p = line;
    for (;;) {
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else if (!*p) {
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            char *end = strstr(p, delim);
            if (n < cap) f[n++] = start;
            *w = '\0';
            if (!end) return n;
            p = end + dl;
            continue;
        }
        char *end = strstr(p, delim);
        if (n < cap) f[n++] = start;
        if (!end) return n;
        *end = '\0';
        p = end + dl;
    }
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

int kept_index(const kept_cols *k, const char *name)
{
    for (int j = 0; j < k->ncols; j++)
        if (!strcmp(k->name[j], name)) return j;
    return -1;
}

void kept_free(kept_cols *k)
{
    for (size_t i = 0; k->val && i < k->rows * (size_t)k->ncols; i++) free(k->val[i]);
    for (int j = 0; k->name && j < k->ncols; j++) free(k->name[j]);
    free(k->val);
    free(k->name);
    memset(k, 0, sizeof *k);
}

#define MAXF 4096

int kept_read(const char *path, const rf_schema *s, const char *list, const char *group, size_t want_rows,
              kept_cols *k)
{
    memset(k, 0, sizeof *k);
    size_t pl = strlen(path);
    if ((pl > 3 && !strcmp(path + pl - 3, ".gz")) || (pl > 4 && !strcmp(path + pl - 4, ".zst")))
        return usage_error("predict", "--keep reads plain text files, not %s (decompress it first)", path);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "resflow: error: cannot open %s\n", path);
        return RF_EIO;
    }
    char dbuf[RF_DELIM_MAX];
    const char *delim = rf_schema_delim(s, dbuf);
    char *line = NULL, *hdr = NULL;
    size_t cap = 0;
    int rc = 0, nh = 0;
    char **f = malloc(MAXF * sizeof *f), **hf = malloc(MAXF * sizeof *hf);
    int want[MAXF];
    if (!f || !hf) rc = RF_ENOMEM;
    if (!rc && s->no_header) {
        nh = s->ncols;
        for (int j = 0; j < nh; j++) hf[j] = (char *)s->cols[j];
    } else if (!rc) {
        if (getline(&line, &cap, fp) < 0) rc = usage_error("predict", "--keep: %s is empty", path);
        if (!rc) {
            chomp(line);
            hdr = strdup(line);
            if (!hdr) rc = RF_ENOMEM;
            else nh = split(hdr, delim, hf, MAXF);
        }
    }
    /* the wanted columns: the list, then the group */
    char names[1024];
    snprintf(names, sizeof names, "%s", list ? list : "");
    k->name = calloc(MAXF, sizeof *k->name);
    if (!k->name) rc = RF_ENOMEM;
    for (char *save = NULL, *tok = rc ? NULL : strtok_r(names, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int c = -1;
        for (int j = 0; j < nh && c < 0; j++)
            if (!strcmp(hf[j], tok)) c = j;
        if (c < 0) {
            fprintf(stderr, "resflow predict: --keep: %s has no column '%s'; its columns:", path, tok);
            for (int j = 0; j < nh; j++) fprintf(stderr, "%s %s", j ? "," : "", hf[j]);
            fputc('\n', stderr);
            rc = RF_EUSAGE;
        } else if (kept_index(k, tok) < 0 && k->ncols < MAXF) {
            want[k->ncols] = c;
            k->name[k->ncols++] = strdup(tok);
        }
    }
    if (!rc && group && group[0] && kept_index(k, group) < 0)
        for (int j = 0; j < nh; j++)
            if (!strcmp(hf[j], group) && k->ncols < MAXF) {
                want[k->ncols] = j;
                k->name[k->ncols++] = strdup(group);
                break;
            }
    for (int j = 0; j < k->ncols && !rc; j++)
        if (!k->name[j]) rc = RF_ENOMEM;
    size_t rcap = 0;
    while (!rc && k->ncols && getline(&line, &cap, fp) >= 0) {
        chomp(line);
        if (!line[0]) continue; /* blank lines are not rows */
        int n = split(line, delim, f, MAXF);
        if (k->rows == rcap) {
            rcap = rcap ? 2 * rcap : 1024;
            char **nv = realloc(k->val, rcap * (size_t)k->ncols * sizeof *nv);
            if (!nv) {
                rc = RF_ENOMEM;
                break;
            }
            k->val = nv;
        }
        for (int j = 0; j < k->ncols; j++) {
            char *v = strdup(want[j] < n ? f[want[j]] : "");
            if (!v) {
                rc = RF_ENOMEM;
                v = NULL;
            }
            for (char *q = v; q && *q; q++)
                if (*q == '\t' || *q == '\n' || *q == '\r') *q = ' ';
            k->val[k->rows * (size_t)k->ncols + j] = v;
        }
        k->rows++;
    }
    if (rc == RF_ENOMEM) fprintf(stderr, "resflow: error: out of memory\n");
    if (!rc && k->ncols && k->rows != want_rows) {
        fprintf(stderr,
                "resflow predict: --keep: %s has %zu data lines but %zu rows were scored (rows skipped or "
                "removed by data.filter): the kept columns cannot be matched to the scores\n",
                path, k->rows, want_rows);
        rc = RF_EDATA;
    }
    free(line);
    free(hdr);
    free(f);
    free(hf);
    fclose(fp);
    if (rc) kept_free(k);
    return rc;
}
