/* cmd_index.c - resflow index: a twin-tower model's item vectors for every row of an items
 * file, written as an item index (.rfi, index.h) for top-K serving (docs/serving.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cli.h"
#include "resflow/index.h"

static const char *index_help =
    "usage: resflow index -m MODEL --items FILE -o OUT.rfi [--id-column C] [--dedupe] [--threads N]\n"
    "\n"
    "Compute every item's per-task vectors with a twin-tower model's item towers (model.type:\n"
    "twin) and write them as an item index for top-K serving ('resflow serve --index';\n"
    "docs/serving.md): fp32 vectors, item biases and an 8-bit compact copy, tied to the model\n"
    "(a server refuses an index built from another model).\n"
    "\n"
    "The items file is CSV or TSV (plain text, a header line; tab-separated when the header has a\n"
    "tab), one item per row: its id and the columns of the model's item side (model.item_fields,\n"
    "model.item_dense), as in the training data. Other columns are ignored; an item column\n"
    "missing from the file is a missing value. A training log works too, with --dedupe.\n"
    "\n"
    "  -m, --model FILE      twin-tower model file written by 'resflow train'\n"
    "      --items FILE      the items (CSV/TSV with a header)\n"
    "  -o, --output FILE     the index to write (atomically)\n"
    "      --id-column C     the column holding item ids (default: the model's first item-side\n"
    "                        field, e.g. item_id)\n"
    "      --dedupe          keep the first row of each id (default: a repeated id is an error)\n"
    "      --threads N       threads (default: all cores)\n"
    "  -q, --quiet           no progress output\n";

/* Split line (no newline) at delim into at most max fields, in place; a field in double quotes
 * may hold the delimiter and "" for a quote. Returns the count, or -1 on a bad quote. */
static int split(char *line, char delim, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return n;
        if (*p == '"') {
            char *w = ++p, *o = p;
            for (;;) {
                if (!*p) return -1;
                if (*p == '"' && p[1] == '"') *o++ = '"', p += 2;
                else if (*p == '"') break;
                else *o++ = *p++;
            }
            *o = '\0';
            p++;
            if (*p && *p != delim) return -1;
            f[n++] = w;
        } else {
            f[n++] = p;
            while (*p && *p != delim) p++;
        }
        if (!*p) return n;
        *p++ = '\0';
    }
}

/* A set of ids (open addressing over XXH64), for --dedupe. */
typedef struct {
    char **key;
    size_t cap, n;
} idset;

static int idset_add(idset *s, const char *id) /* 1 new, 0 seen, -1 out of memory */
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        char **k = calloc(cap, sizeof *k);
        if (!k) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->key[i]) {
                size_t h = XXH64(s->key[i], strlen(s->key[i]), 0) & (cap - 1);
                while (k[h]) h = (h + 1) & (cap - 1);
                k[h] = s->key[i];
            }
        free(s->key);
        s->key = k;
        s->cap = cap;
    }
    size_t h = XXH64(id, strlen(id), 0) & (s->cap - 1);
    for (; s->key[h]; h = (h + 1) & (s->cap - 1))
        if (!strcmp(s->key[h], id)) return 0;
    if (!(s->key[h] = strdup(id))) return -1;
    s->n++;
    return 1;
}

static void idset_free(idset *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->key[i]);
    free(s->key);
}

#define MAXF 4096

int cmd_index(int argc, char **argv)
{
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                       {"items", required_argument, 0, 'i'},
                                       {"output", required_argument, 0, 'o'},
                                       {"id-column", required_argument, 0, 'c'},
                                       {"dedupe", no_argument, 0, 'D'},
                                       {"threads", required_argument, 0, 't'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *model = NULL, *items = NULL, *out = NULL, *idcol = NULL;
    int dedupe = 0, threads = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': items = optarg; break;
        case 'o': out = optarg; break;
        case 'c': idcol = optarg; break;
        case 'D': dedupe = 1; break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 1024)
                return usage_error("index", "--threads must be an integer in 1..1024, not '%s'", optarg);
            threads = (int)v;
            break;
        }
        case 'q': g_quiet = 1; break;
        case 'h': fputs(index_help, stdout); return 0;
        default: return usage_error("index", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("index", "unexpected argument '%s'", argv[optind]);
    if (!model || !items || !out) return usage_error("index", "--model, --items and -o are required");
    const char *inputs[] = {model, items};
    int rc = check_output("index", out, inputs, 2);
    if (rc) return rc;

    rf_error e;
    rf_error_clear(&e);
    rf_loaded_model lm;
    if (rf_model_load(model, &lm, &e)) return die(&e);
    rf_index_builder *b = NULL;
    FILE *fp = NULL;
    char *line = NULL, *hdr = NULL, **f = malloc(MAXF * sizeof *f), **names = malloc(MAXF * sizeof *names);
    size_t cap = 0;
    idset seen = {0};
    rc = 0;
    if (!f || !names) {
        rf_errorf(&e, RF_ENOMEM, "out of memory");
        goto fail;
    }
    if (rf_index_builder_create(&lm, 0, threads, &b, &e)) goto fail;
    if (!(fp = fopen(items, "r"))) {
        rf_errorf(&e, RF_EIO, "%s: cannot open: %s", items, strerror(errno));
        goto fail;
    }
    ssize_t len = getline(&line, &cap, fp);
    if (len <= 0) {
        rf_errorf(&e, RF_EDATA, "%s: empty file (a header line is needed)", items);
        goto fail;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    char delim = strchr(line, '\t') ? '\t' : ',';
    if (!(hdr = strdup(line))) {
        rf_errorf(&e, RF_ENOMEM, "out of memory");
        goto fail;
    }
    int nc = split(hdr, delim, names, MAXF), id = -1;
    if (nc < 0) {
        rf_error_at(&e, RF_EDATA, items, 1, 0, "bad quotes in the header");
        goto fail;
    }
    for (int j = 0; j < nc; j++)
        if (idcol ? !strcmp(names[j], idcol) : rf_index_builder_item_column(b, names[j])) {
            id = j;
            break;
        }
    if (id < 0) {
        if (idcol) rf_errorf(&e, RF_EUSAGE, "%s: no column '%s' (--id-column)", items, idcol);
        else rf_errorf(&e, RF_EUSAGE, "%s: no item-side column of the model (give --id-column)", items);
        goto fail;
    }
    note("index: ids from column '%s'", names[id]);
    long ln = 1, dups = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        ln++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        int n = split(line, delim, f, MAXF);
        if (n != nc) {
            rf_error_at(&e, RF_EDATA, items, ln, 0, "%d fields, the header has %d%s", n < 0 ? 0 : n, nc,
                        n < 0 ? " (bad quotes)" : "");
            goto fail;
        }
        if (!f[id][0]) {
            rf_error_at(&e, RF_EDATA, items, ln, 0, "empty id in column '%s'", names[id]);
            goto fail;
        }
        int r = idset_add(&seen, f[id]);
        if (r < 0) {
            rf_errorf(&e, RF_ENOMEM, "out of memory");
            goto fail;
        }
        if (!r && !dedupe) {
            rf_error_at(&e, RF_EDATA, items, ln, 0, "item '%s' again (an id once per index; --dedupe keeps the first row)",
                        f[id]);
            goto fail;
        }
        if (!r) {
            dups++;
            continue;
        }
        rf_error sub;
        rf_error_clear(&sub);
        if (rf_index_builder_add(b, f[id], n, (const char *const *)names, (const char *const *)f, &sub)) {
            rf_error_at(&e, sub.code, items, ln, 0, "%s", sub.msg);
            goto fail;
        }
    }
    if (ferror(fp)) {
        rf_errorf(&e, RF_EIO, "%s: read error: %s", items, strerror(errno));
        goto fail;
    }
    if (!rf_index_builder_count(b)) {
        rf_errorf(&e, RF_EDATA, "%s: no items", items);
        goto fail;
    }
    if (rf_index_builder_write(b, out, &e)) goto fail;
    note("index: %zu items%s -> %s", rf_index_builder_count(b), dups ? " (repeated ids skipped)" : "", out);
    goto done;
fail:
    rc = die(&e);
done:
    if (fp) fclose(fp);
    free(line), free(hdr), free(f), free(names);
    idset_free(&seen);
    rf_index_builder_free(b);
    rf_loaded_model_free(&lm);
    return rc;
}
