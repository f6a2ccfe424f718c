/* csv.c - the text loader (rf_load_csv): delimited text into an rf_dataset with fitted or
 * given encoders. This file runs a load: the plan, the rounds of text cut into pieces, their
 * merge in file order, fitting, the dataset. The parts live in files of their own (shared
 * declarations in loader.h): textin.c (input, decompression, hashing), tokenize.c (rows into
 * field spans), rows.c (a piece's rows into columns), plan.c, fit.c, expr.c (labels, filters),
 * join.c (side tables), columns.c (output columns, spill files); csvwrite.c writes CSV.
 *
 * Input: plain, gzip (zlib) or zstd (libzstd) files, detected by their magic bytes. The text is
 * read in rounds of `threads x block_bytes` bytes into one buffer. Each round is cut into one
 * piece per thread at a guessed row start (the first '\n' after the target offset outside
 * double quotes, by quote parity); the pieces are parsed in parallel (pool.c), then checked
 * in order: piece i is kept only if it starts exactly where piece i-1 ended, otherwise it is
 * parsed again from there (so a wrong guess - a literal '"' in an unquoted field - costs time,
 * never correctness). The unparsed tail (an incomplete last row) is carried into the next round.
 *
 * Rows: tokenized in place (RFC 4180 quotes with "" escapes unless quoting is off, LF or CRLF
 * line ends, a delimiter of 1..7 bytes) into field spans; joined side tables append their
 * columns to every row (looked up by the row's join-key text); only the columns the schema
 * names are converted. Nothing is allocated per field: numbers are parsed straight from the
 * buffer; quoted fields with "" escapes and ISO-8859-1 text are converted in a scratch buffer.
 *
 * Encoding. With given encoders (*enc != NULL) values are encoded while parsing: vocabulary
 * lookup (unknown -> the field's OOV id), hashing, bucket boundaries, dense fill + normaliser.
 * When fitting (*enc == NULL) categorical values get provisional ids (first-seen order;
 * each thread looks keys up in the global vocabulary, read-only during the parse, and fits the
 * new ones into a local vocabulary, merged in piece order, so the result does not depend on
 * the thread count), bucket fields keep their raw float bits and dense values stay raw (NaN =
 * missing); after the last row, the encoders are fitted on the training rows
 * [0, rf_split_points(...)) only: a key is kept if it occurs at least min_count times there (the
 * field's own :min:N, else data.min_count)
 * (keys seen only in held-out rows are unknown, as they would be to a deployed model),
 * quantile boundaries and dense statistics come from those rows, and every row is then
 * rewritten with the final ids and values.
 *
 * Numbers: numparse.h - exact, results equal (float)strtod(s). The dense fields of a row are
 * parsed as a batch (dense_batch: plain decimals 16 or 32 bytes at a time with SIMD, then one
 * vector division per 8 fields); the rest, and labels, weights and filters, field by field:
 * short decimals inline (Clinger's fast path, else Eisel-Lemire with a table of powers of
 * five), long mantissas exactly, anything unusual or ambiguous through strtod on a
 * NUL-terminated copy ("C" locale decimal point). Whitespace around numbers is not accepted.
 *
 * Speed: rows without quotes are split with 64-byte bitmaps of their delimiters and line ends
 * (AVX2 when the CPU has it, else SSE2; tokenize_row), other rows field by field (16-byte SSE2
 * scans between quotes); integer categorical values use the vocabularies' direct tables (no
 * hashing), other values are hashed first and their hash-table slots prefetched so the
 * lookups' cache misses overlap; the input is hashed (cache staleness) by a thread of its own;
 * the output arrays are pre-sized from the file size (plain files) and, like the other big
 * buffers, on transparent huge pages (bigmem.h).
 *
 * Conventions: completely empty lines are skipped (like pandas); a UTF-8 BOM at the start is
 * ignored; a '"' inside an unquoted field is literal; a lone CR inside a field is data.
 * A label spec that is literally the name of a column is that column (so "a*b" written by
 * rf_dataset_write_csv reads back directly). An empty multi-valued field is an empty bag (no
 * ids); empty pieces ("x||y") are skipped; a multi-valued field's separator defaults to '|'.
 * The group column's text is hashed with XXH3_64bits; the weight must be finite and >= 0.
 * A joined row that is missing (no side-table row has the key) gives empty values: id 0 for
 * categorical fields, "missing" for numeric ones. Side tables keep the first row of a key.
 *
 * Errors: data errors are RF_EDATA at file:line:col (1-based physical line, 1-based byte column
 * where the offending field starts; a wrong field count points at the row's first column;
 * values taken from a side table point at the row's join key). With opts->skip_bad_rows, rows
 * with a wrong field count, a bad number/weight/label or characters after a closing quote are
 * skipped and counted (they never reach the vocabularies); an unterminated quote, I/O errors,
 * a bad header and "no data rows" still fail.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "core/bigmem.h"
#include "core/pool.h"
#include "data/loader.h"


/* Appending a piece's rows to the output, in two steps: reserve_piece (serial, in file order)
 * merges the piece's new vocabulary keys into the global vocabularies and makes room for its
 * rows; copy_piece (the pieces of a round in parallel) copies them, remapping local ids. */
static rf_status reserve_piece(loader *L, piece *P)
{
    cols *o = &L->out, *c = &P->c;
    size_t n = c->n;
    P->dst = o->n;
    if (!n) return RF_OK;
    if (o->n + n > o->cap && rf_grow_rows_(L, o, o->n + n > L->est_rows ? o->n + n : L->est_rows)) {
        if (o->spill)
            return rf_errorf(L->err, RF_EIO, "cannot grow the spill files in %s: %s", o->spill->dir, strerror(errno));
        return rf_errorf(L->err, RF_ENOMEM, "out of memory loading %s", L->path);
    }
    /* merge local vocabularies: local id -> global provisional id */
    if (L->fitting && !L->direct)
        for (int f = 0; f < L->F; f++) {
            if (L->fp[f].kind != FK_VOCAB) continue;
            rf_vocab *lv = P->voc[f], *gv = L->fp[f].vocab;
            uint32_t m = rf_vocab_entries_(lv);
            if (m == P->mapped[f] && P->map[f]) continue; /* no new keys in this round */
            uint32_t *map = realloc(P->map[f], ((size_t)m + 1) * sizeof *map);
            if (!map) return rf_errorf(L->err, RF_ENOMEM, "out of memory");
            P->map[f] = map;
            map[0] = 0;
            for (uint32_t i = P->mapped[f] + 1; i <= m; i++) {
                size_t kl;
                const char *k = rf_vocab_key_len_(lv, i, &kl);
                uint32_t g = rf_vocab_fit_id_(gv, k, kl, rf_vocab_hash_(gv, k, kl));
                if (!g) return rf_errorf(L->err, RF_ENOMEM, "out of memory");
                map[i] = g;
            }
            P->mapped[f] = m;
        }
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        size_t m = c->mv_len[f], base = o->mv_len[f];
        if (base + m > o->mv_cap[f]) {
            size_t nc = o->mv_cap[f] ? o->mv_cap[f] : 4096;
            while (nc < base + m) nc *= 2;
            uint32_t *ni = rf_cgrow_(o, (void **)&o->mv_ids[f], nc * sizeof *ni);
            if (!ni) return rf_errorf(L->err, RF_ENOMEM, "out of memory loading %s", L->path);
            o->mv_ids[f] = ni;
            o->mv_cap[f] = nc;
        }
        P->mv_base[f] = base;
        o->mv_len[f] = base + m;
    }
    o->n += n;
    return RF_OK;
}

static void copy_piece(const loader *L, const piece *P)
{
    const cols *c = &P->c;
    const cols *o = &L->out;
    size_t n = c->n, at = P->dst;
    if (!n) return;
    int F = L->F ? L->F : 1;
    int remap = L->fitting && !L->direct;
    memcpy(o->cat + at * (size_t)F, c->cat, n * (size_t)F * sizeof *o->cat);
    if (remap) /* piece-local ids (tagged) -> global provisional ids */
        for (int f = 0; f < L->F; f++) {
            if (L->fp[f].kind != FK_VOCAB || L->fp[f].multi || !(P->local >> f & 1)) continue;
            uint32_t *col = o->cat + at * (size_t)F + f;
            const uint32_t *map = P->map[f];
            for (size_t i = 0; i < n; i++) {
                uint32_t id = col[i * (size_t)F];
                if (id & LOCAL_ID) col[i * (size_t)F] = map[id & ~LOCAL_ID];
            }
        }
    if (L->D && !L->dense_stream)
        memcpy(o->dense + at * (size_t)L->D, c->dense, n * (size_t)L->D * sizeof *o->dense);
    memcpy(o->labels + at * (size_t)(L->K ? L->K : 1), c->labels, n * (size_t)(L->K ? L->K : 1) * sizeof *o->labels);
    if (o->weight) memcpy(o->weight + at, c->weight, n * sizeof *o->weight);
    if (o->group) memcpy(o->group + at, c->group, n * sizeof *o->group);
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        size_t m = c->mv_len[f], base = P->mv_base[f];
        if (remap && L->fp[f].kind == FK_VOCAB) {
            const uint32_t *map = P->map[f];
            for (size_t j = 0; j < m; j++) {
                uint32_t id = c->mv_ids[f][j];
                o->mv_ids[f][base + j] = id & LOCAL_ID ? map[id & ~LOCAL_ID] : id;
            }
        } else if (m) {
            memcpy(o->mv_ids[f] + base, c->mv_ids[f], m * sizeof *o->mv_ids[f]);
        }
        for (size_t i = 1; i <= n; i++) o->mv_off[f][at + i] = base + c->mv_off[f][i];
    }
}

/* Copy the merged pieces [0, np) into the output in parallel; the streamed dense rows go to the
 * sink, in order, as one more task. */
typedef struct {
    loader *L;
    piece *P;
    int np, sink_failed;
} copy_ctx;

static void copy_task(void *ctx, int i)
{
    copy_ctx *c = ctx;
    const loader *L = c->L;
    if (i < c->np) {
        copy_piece(L, &c->P[i]);
        return;
    }
    for (int j = 0; j < c->np && !c->sink_failed; j++)
        if (c->P[j].c.n && L->hooks->dense_sink(L->hooks->ud, c->P[j].c.dense, c->P[j].c.n, L->D, L->err))
            c->sink_failed = 1;
}

static rf_status copy_pieces(loader *L, piece *P, int np)
{
    copy_ctx c = {L, P, np, 0};
    rf_pool_run(L->pool, np + (L->dense_stream ? 1 : 0), copy_task, &c);
    return c.sink_failed ? (L->err->code ? L->err->code : RF_EIO) : RF_OK;
}

typedef struct {
    const loader *L;
    piece *P;
} parse_ctx;

static void parse_task(void *ctx, int i)
{
    parse_ctx *c = ctx;
    rf_parse_piece_(c->L, &c->P[i]);
}

/* ---- rf_load_csv ------------------------------------------------------------------------------- */

#define DEFAULT_BLOCK ((size_t)4 << 20)

static void loader_free(loader *L)
{
    rf_cols_free_(&L->out);
    for (int j = 0; j < L->nside; j++) rf_side_free_(&L->sides[j]);
}

/* Shrink a buffer to its used size (best effort). */
static void *shrink(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    return q ? q : p;
}

/* Guess where row boundaries are: for each target offset the first '\n' at or after it with
 * an even number of quotes since the region start (RFC 4180 quote parity). */
static void guess_splits(const char *s, const char *e, int np, const char **st)
{
    size_t total = (size_t)(e - s);
    st[0] = s;
    const char *scan = s;
    size_t quotes = 0;
    for (int i = 1; i < np; i++) {
        const char *target = s + total * (size_t)i / (size_t)np;
        if (target < st[i - 1]) target = st[i - 1];
        const char *p = target;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl) {
                st[i] = e;
                break;
            }
            quotes += rf_count_quotes_(scan, (size_t)(nl - scan));
            scan = nl;
            if (!(quotes & 1)) {
                st[i] = nl + 1;
                break;
            }
            p = nl + 1;
        }
    }
}

rf_status rf_load_csv(const char *path, const rf_schema *schema, rf_encoders **enc,
                      rf_load_opts *opts, rf_dataset **out, rf_error *err)
{
    return rf_load_csv_hooked_(path, schema, enc, opts, NULL, out, err);
}

rf_status rf_load_csv_hooked_(const char *path, const rf_schema *schema, rf_encoders **enc, rf_load_opts *opts,
                              rf_load_hooks_ *hooks, rf_dataset **out, rf_error *err)
{
    if (!path || !schema || !enc || !out)
        return rf_errorf(err, RF_EINTERNAL, "rf_load_csv: NULL argument");
    *out = NULL;
    rf_status st = rf_check_schema_(schema, err);
    if (st) return st;
    if (*enc && ((*enc)->F != schema->F || (schema->F && !(*enc)->vocab)))
        return rf_errorf(err, RF_EUSAGE, "encoders have %d fields, schema has %d", (*enc)->F,
                         schema->F);
    for (int f = 0; *enc && !(*enc)->field && f < schema->F; f++)
        if (!(*enc)->vocab[f] && !((*enc)->id_size && (*enc)->id_size[f] > 0))
            return rf_errorf(err, RF_EUSAGE, "field %d (%s) has neither a vocabulary nor an id range", f,
                             schema->cat[f].name);

    loader *L = calloc(1, sizeof *L);
    piece *P = NULL;
    int np_alloc = 0;
    textbuf b = {0};
    b.in.fd = -1;
    if (!L) return rf_errorf(err, RF_ENOMEM, "out of memory");
    L->sc = schema;
    L->path = path;
    L->err = err;
    L->skip = opts && opts->skip_bad_rows;
    L->F = schema->F;
    L->D = schema->D;
    L->K = schema->K;
    L->latin1 = schema->latin1;
    L->weight_col = L->group_col = -1;
    L->hooks = hooks;
    if (hooks) hooks->hashed = 0;
    rf_schema_delim(schema, L->dstr);
    rf_tokctx_init_(&L->tx, L->cls, L->dstr, 1, opts ? opts->tokenizer : RF_TOKENIZER_AUTO);
    if (opts) opts->bad_rows = opts->fit_rows = opts->filtered_rows = 0;
    size_t max_rows = opts ? opts->max_rows : 0;
    int T = opts && opts->threads > 0 ? opts->threads : omp_get_max_threads();
    if (T < 1) T = 1;
    if (T > 64) T = 64;
    size_t block = opts && opts->block_bytes ? opts->block_bytes : DEFAULT_BLOCK;
    rf_dataset *ds = NULL;

    if (opts && opts->spill_dir && opts->spill_dir[0]) {
        if (!(L->out.spill = calloc(1, sizeof *L->out.spill))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(L->out.spill->dir, sizeof L->out.spill->dir, "%s", opts->spill_dir);
    }
    for (int j = 0; j < schema->njoin; j++) {
        if ((st = rf_load_side_(&schema->join[j], &L->sides[j], opts ? opts->tokenizer : RF_TOKENIZER_AUTO, err))) goto fail;
        L->nside = j + 1;
    }
    if ((st = rf_in_open_(&b.in, path, err))) goto fail;
    if (hooks && hooks->want_hash && b.in.kind == IN_PLAIN) {
        if (!(b.hs = rf_hs_create_())) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
    }
    b.cap = block * (size_t)T;
    if (b.cap < 4096) b.cap = 4096;
    b.threads = T;
    L->pool = rf_pool_create(T);
    b.pool = L->pool;
    if (b.in.kind != IN_PLAIN) b.pf = rf_pf_start_(&b.in, path);
    b.buf = rf_big_realloc_(NULL, b.cap + BUF_PAD);
    if (!b.buf) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    b.line = 1;
    if ((st = rf_tb_fill_(&b, path, err))) goto fail;
    if (b.len >= 3 && memcmp(b.buf, "\xEF\xBB\xBF", 3) == 0) b.pos = 3;
    /* plain file: estimate the row count from the size and the first block's line length */
    if (b.in.kind == IN_PLAIN && !b.eof && b.in.size > 0) {
        size_t nl = 0;
        for (const char *q = b.buf; (q = memchr(q, '\n', (size_t)(b.buf + b.len - q))); q++) nl++;
        if (nl > 1) {
            double est = (double)b.in.size * (double)nl / (double)b.len * 1.02 + 64;
            if (est < 1e12) L->est_rows = (size_t)est;
        }
    }
    if (max_rows && L->est_rows > max_rows) L->est_rows = max_rows;

    if (*enc) {
        L->enc = *enc;
    } else {
        if (!(L->enc = rf_encoders_new_(schema->F, schema->D))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int f = 0; f < schema->F; f++)
            if (!schema->cat[f].hash && !schema->cat[f].bucket && !(L->enc->vocab[f] = rf_vocab_create())) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        L->fitting = 1;
    }
    L->direct = T == 1;

    /* header (or the configured column names) */
    char (*names)[RF_NAME_MAX] = NULL;
    long header_line = 0;
    piece hp;
    memset(&hp, 0, sizeof hp);
    if (schema->no_header) {
        L->ncols = schema->ncols;
        names = calloc((size_t)L->ncols, sizeof *names);
        if (!names) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int c = 0; c < L->ncols; c++) memcpy(names[c], schema->cols[c], RF_NAME_MAX);
    } else {
        for (;;) {
            tokctx_set(&L->tx, &b);
            hp.row = b.buf + b.pos;
            int tk = rf_tokenize_row_(&L->tx, b.buf + b.pos, &hp.t);
            if (tk == TOK_MORE) {
                if ((st = rf_tb_fill_(&b, path, err))) break;
                continue;
            }
            if (tk == TOK_EOF) break;
            if (tk == TOK_NOMEM) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                break;
            }
            if (tk == TOK_UNTERM) {
                long line, col;
                rf_locate_(&hp, hp.t.unterm, &line, &col);
                st = rf_error_at(err, RF_EDATA, path, b.line + line, col, "unterminated quoted field");
                break;
            }
            const span *f0 = &hp.t.f[0];
            if (!(hp.t.n == 1 && f0->len == 0 && f0->start == f0->p)) {
                if (hp.t.bad) {
                    long line, col;
                    rf_locate_(&hp, hp.t.bad, &line, &col);
                    st = rf_error_at(err, RF_EDATA, path, b.line + line, col,
                                     "unexpected character after closing quote");
                    break;
                }
                L->ncols = hp.t.n;
                names = calloc((size_t)L->ncols, sizeof *names);
                if (!names) {
                    st = rf_errorf(err, RF_ENOMEM, "out of memory");
                    break;
                }
                for (int c = 0; c < L->ncols; c++) {
                    size_t n;
                    const char *s = rf_field_text_(&hp, &hp.t.f[c], &n);
                    if (!s) {
                        st = rf_errorf(err, RF_ENOMEM, "out of memory");
                        break;
                    }
                    if (n >= RF_NAME_MAX) n = RF_NAME_MAX - 1;
                    memcpy(names[c], s, n);
                }
                header_line = b.line;
                b.pos = (size_t)(hp.t.next - b.buf);
                b.line += hp.t.lines;
                break;
            }
            b.pos = (size_t)(hp.t.next - b.buf);
            b.line += hp.t.lines;
        }
        free(hp.t.f);
        free(hp.scratch);
        if (st) goto fail_names;
        if (!names) {
            st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
            goto fail_names;
        }
    }
    L->next = L->ncols;
    for (int j = 0; j < L->nside; j++) {
        side *s = &L->sides[j];
        s->base = L->next;
        L->next += s->ncols;
        s->on_col = -1;
        for (int c = 0; c < L->ncols; c++)
            if (!strcmp(names[c], schema->join[j].on)) s->on_col = c;
        if (s->on_col < 0) {
            st = rf_missing_column_(L, names, schema->join[j].on, "join");
            goto fail_names;
        }
    }
    if ((st = rf_make_plan_(L, names))) goto fail_names;
    free(names);
    names = NULL;
    /* dense values final as parsed: stream them to the sink instead of keeping them */
    if (hooks && hooks->dense_sink && L->D && !max_rows) {
        int ok = 1;
        if (L->fitting) {
            ok = schema->fill == RF_FILL_ERROR;
            for (int d = 0; d < L->D && ok; d++)
                ok = (schema->dense_norm[d] ? schema->dense_norm[d] - 1 : schema->norm) == RF_NORM_NONE;
        }
        L->dense_stream = ok;
    }

    P = calloc((size_t)T, sizeof *P);
    if (!P) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    np_alloc = T;
    int done = 0;
    while (!done) {
        if (b.pos == b.len && b.eof) break;
        tokctx_set(&L->tx, &b);
        const char *rs = b.buf + b.pos, *re = b.buf + b.len;
        size_t region = (size_t)(re - rs);
        int np = T;
        if (region < (size_t)np * 65536) np = (int)(region / 65536) + 1;
        if (np > T) np = T;
        const char *starts[64];
        guess_splits(rs, re, np, starts);
        for (int i = 0; i < np; i++) {
            P[i].start = starts[i];
            P[i].hint = i + 1 < np ? starts[i + 1] : re;
        }
        parse_ctx pc = {L, P};
        rf_pool_run(L->pool, np, parse_task, &pc);
        /* check and merge in order */
        const char *expect = rs;
        long line = b.line;
        int progressed = 0, merged = 0;
        for (int i = 0; i < np && !done; i++) {
            if (P[i].start != expect) {
                rf_piece_reset_vocab_(&P[i]); /* its parse started in the wrong place */
                if (expect >= P[i].hint && i + 1 < np) { /* swallowed by a long row: empty piece */
                    P[i].start = P[i].end = expect;
                    P[i].c.n = 0;
                    P[i].lines = 0;
                    P[i].more = 0;
                    P[i].failed = 0;
                    P[i].bad = P[i].filtered = 0;
                    continue;
                }
                P[i].start = expect;
                rf_parse_piece_(L, &P[i]);
            }
            if (P[i].failed) {
                *err = P[i].err;
                if (P[i].failed == 1) err->line += line;
                st = err->code ? err->code : RF_EDATA;
                goto fail;
            }
            if ((st = reserve_piece(L, &P[i]))) goto fail;
            merged = i + 1;
            L->bad_rows += P[i].bad;
            for (int j = 0; j < P[i].nshow && L->nshow < RF_BAD_SHOW; j++, L->nshow++) {
                L->show_line[L->nshow] = P[i].show_line[j] + line; /* as the error of a failed piece */
                L->show_col[L->nshow] = P[i].show_col[j];
                memcpy(L->show_msg[L->nshow], P[i].show_msg[j], sizeof L->show_msg[0]);
            }
            L->filtered += P[i].filtered;
            line += P[i].lines;
            expect = P[i].end;
            progressed |= P[i].end != P[i].start;
            if (max_rows && L->out.n >= max_rows) done = 1;
            if (P[i].more) break; /* everything after is inside an incomplete row */
        }
        /* pieces not merged this round parsed text that is parsed again next round: their
         * vocabularies would hold keys out of the file's order */
        for (int i = merged; i < np; i++) rf_piece_reset_vocab_(&P[i]);
        if (merged && (st = copy_pieces(L, P, merged))) goto fail;
        b.pos = (size_t)(expect - b.buf);
        b.line = line;
        if (done) break;
        if (b.eof && b.pos == b.len) break;
        if (!progressed && b.eof) break; /* cannot happen: at EOF every row completes */
        if ((st = rf_tb_fill_(&b, path, err))) goto fail;
    }
    if (max_rows && L->out.n > max_rows) {
        L->out.n = max_rows;
        for (int f = 0; f < L->F; f++)
            if (L->fp[f].multi) L->out.mv_len[f] = L->out.mv_off[f][max_rows];
    }
    if (L->out.n == 0) {
        long at = schema->no_header ? 1 : header_line + 1;
        if (L->bad_rows)
            st = rf_error_at(err, RF_EDATA, path, at, 1, "no data rows (%zu bad rows skipped)", L->bad_rows);
        else if (schema->no_header && !L->filtered)
            st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
        else
            st = rf_error_at(err, RF_EDATA, path, at, 1, "no data rows%s", L->filtered ? " (all filtered out)" : "");
        goto fail;
    }

    size_t n = L->out.n, fit_n = n;
    if (L->fitting) {
        size_t a, bb;
        uint8_t *role = NULL;
        if (opts && opts->split_random && opts->valid_frac + opts->test_frac > 0) { /* data.split: random */
            if (!(role = malloc(n))) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
            rf_split_roles(L->out.group, n, opts->split_seed, opts->valid_frac, opts->test_frac, role);
            a = 0;
            for (size_t i = 0; i < n; i++) a += role[i] == 0;
        } else {
            rf_split_points(L->out.group, n, opts ? opts->valid_frac : 0, opts ? opts->test_frac : 0, &a, &bb);
        }
        fit_n = a;
        st = rf_fit_all_(L, a, role);
        free(role);
        if (st) goto fail;
    }

    /* assemble the dataset: hand over the column arrays */
    ds = rf_dataset_alloc(0, L->F, L->D, L->K);
    if (!ds) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    cols *o = &L->out;
    ds->n = n;
    struct rf_mapping *sm = NULL;
    if (o->spill) { /* the spilled arrays become the dataset's mapping (unmapped when freed) */
        for (int f = 0; f < L->F; f++)
            if (L->fp[f].multi && !o->mv_ids[f] && !(o->mv_ids[f] = rf_cgrow_(o, (void **)&o->mv_ids[f], 4))) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory (spill files in %s)", o->spill->dir);
                goto fail;
            }
        sm = calloc(1, sizeof *sm);
        if (sm) sm->extra = calloc((size_t)o->spill->n + 1, sizeof *sm->extra);
        if (!sm || !sm->extra) {
            if (sm) free(sm);
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < o->spill->n; i++) {
            spill_ent *x = &o->spill->e[i];
            sm->extra[i].p = *x->slot;
            sm->extra[i].n = x->bytes;
            close(x->fd);
        }
        sm->nextra = o->spill->n;
        sm->refs = 1;
        o->spill->n = 0; /* owned by the mapping now */
    }
#define TAKE(x, bytes) (sm ? (void *)(x) : shrink((x), (bytes)))
    free(ds->cat);
    ds->cat = TAKE(o->cat, n * (size_t)(L->F ? L->F : 1) * sizeof *o->cat);
    o->cat = NULL;
    free(ds->dense);
    ds->dense = L->D && o->dense ? TAKE(o->dense, n * (size_t)L->D * sizeof *o->dense) : NULL;
    o->dense = NULL;
    free(ds->labels);
    ds->labels = TAKE(o->labels, n * (size_t)(L->K ? L->K : 1) * sizeof *o->labels);
    o->labels = NULL;
    if (o->weight) ds->weight = TAKE(o->weight, n * sizeof *o->weight);
    o->weight = NULL;
    if (o->group) ds->group = TAKE(o->group, n * sizeof *o->group);
    o->group = NULL;
    ds->map = sm;
    for (int f = 0; f < L->F; f++) {
        rf_field *fd = &ds->fields[f];
        const fplan *fp = &L->fp[f];
        snprintf(fd->name, sizeof fd->name, "%s", schema->cat[f].name);
        fd->multi = fp->multi;
        fd->pooling = fp->multi ? schema->cat[f].pooling : RF_POOL_SUM;
        fd->sep = fp->multi ? fp->sep : schema->cat[f].sep;
        if (L->enc->field) fd->vocab = L->enc->field[f].size;
        else fd->vocab = L->enc->vocab[f] ? rf_vocab_size(L->enc->vocab[f]) : L->enc->id_size[f];
        if (fd->multi) {
            ds->mv_off[f] = TAKE(o->mv_off[f], (n + 1) * sizeof *o->mv_off[f]);
            o->mv_off[f] = NULL;
            if (!o->mv_ids[f]) o->mv_ids[f] = malloc(sizeof *o->mv_ids[f]);
            ds->mv_ids[f] = o->mv_ids[f] ? TAKE(o->mv_ids[f], o->mv_len[f] * sizeof *o->mv_ids[f]) : NULL;
            o->mv_ids[f] = NULL;
            if (!ds->mv_ids[f]) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        }
    }
#undef TAKE
    for (int d = 0; d < L->D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", schema->dense[d]);
    for (int k = 0; k < L->K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "%s", schema->label[k]);

    if (opts) {
        opts->bad_rows = L->bad_rows;
        opts->fit_rows = fit_n;
        opts->filtered_rows = L->filtered;
        size_t w = 0;
        opts->bad_first[0] = '\0';
        for (int j = 0; j < L->nshow && w < sizeof opts->bad_first; j++)
            w += (size_t)snprintf(opts->bad_first + w, sizeof opts->bad_first - w, "%sline %ld column %ld: %s",
                                  j ? "; " : "", L->show_line[j], L->show_col[j], L->show_msg[j]);
    }
    if (L->fitting) *enc = L->enc;
    if (hooks) {
        if (b.hs && b.eof && b.pos == b.len) {
            hooks->hashed = 1;
            hooks->input_hash = rf_hs_digest_(b.hs);
        }
    }
    goto cleanup;

fail_names:
    free(names);
fail:
    if (opts) {
        opts->bad_rows = L->bad_rows;
        opts->filtered_rows = L->filtered;
    }
    rf_dataset_free(ds);
    ds = NULL;
    if (L->fitting) rf_encoders_free(L->enc);
cleanup:
    rf_pf_free_(b.pf);
    rf_pool_free(L->pool);
    rf_in_close_(&b.in);
    rf_hs_free_(b.hs); /* before the buffer it may be reading */
    free(b.buf);
    for (int i = 0; i < np_alloc; i++) rf_piece_free_(&P[i]);
    free(P);
    spill_set *spill = L->out.spill;
    loader_free(L);
    free(spill);
    free(L);
    *out = ds;
    if (!ds && st == RF_OK) st = RF_EINTERNAL;
    return ds ? RF_OK : st;
}

