/* test_modelfile.c - model files: exact round trip (config, schema, names, vocabularies,
 * weights, forward outputs), corruption/truncation/version detection, structural validation
 * of re-sealed (valid checksum) files, a byte-flip fuzz, and the atomic-write guarantees. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xxhash.h>

#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/modelfile.h"

static char g_dir[256]; /* per-run scratch directory */

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", g_dir, name);
}

/* ---- fixtures ------------------------------------------------------------------------- */

typedef struct {
    rf_config cfg;
    rf_field fields[3];
    rf_model *m;
    rf_encoders *enc;
    char dense[2][RF_NAME_MAX];
    char labels[2][RF_NAME_MAX];
} fixture;

static rf_vocab *make_vocab(const char *const *keys, int n)
{
    rf_vocab *v = rf_vocab_create();
    assert_non_null(v);
    /* the normal fitting path: count (with repeats) then freeze */
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < n; i++) assert_int_equal(rf_vocab_count(v, keys[i], strlen(keys[i])), RF_OK);
    rf_vocab_freeze(v, 1);
    assert_int_equal(rf_vocab_size(v), (uint32_t)n + 1);
    return v;
}

/* 3 fields (user: vocab, item: integer ids, tags: multi-valued mean with vocab), D=2,
 * 2 tasks, emb 4, hidden [8,4], PReLU, BatchNorm, projected dense, ResFlow. */
static void fixture_init(fixture *fx, int with_schema, uint32_t item_vocab)
{
    memset(fx, 0, sizeof *fx);
    rf_config *c = &fx->cfg;
    rf_config_default(c);
    c->model.type = RF_MODEL_RESFLOW;
    c->model.emb_dim = 4;
    c->model.n_hidden = 2;
    c->model.hidden[0] = 8;
    c->model.hidden[1] = 4;
    c->model.act = RF_ACT_PRELU;
    c->model.bn = RF_BN_BATCH;
    c->model.bn_eps = 1e-3f;
    c->model.dense_mode = RF_DENSE_PROJECT;
    c->train.seed = 1234;
    assert_int_equal(c->K, 2);
    const char *names[3] = {"user", "item", "tags"};
    if (with_schema) {
        c->data.schema.F = 3;
        for (int f = 0; f < 3; f++) snprintf(c->data.schema.cat[f].name, RF_NAME_MAX, "%s", names[f]);
        c->data.schema.cat[2].multi = 1;
        c->data.schema.cat[2].pooling = RF_POOL_MEAN;
        c->data.schema.cat[2].sep = '|';
    }
    for (int f = 0; f < 3; f++) snprintf(fx->fields[f].name, RF_NAME_MAX, "%s", names[f]);
    fx->fields[0].vocab = 5;
    fx->fields[1].vocab = item_vocab;
    fx->fields[2].vocab = 4;
    fx->fields[2].multi = 1;
    fx->fields[2].pooling = RF_POOL_MEAN;
    fx->fields[2].sep = '|';
    rf_error err;
    assert_int_equal(rf_config_create_model(c, 3, fx->fields, 2, &fx->m, &err), RF_OK);
    rf_model *m = fx->m;
    assert_true(m->n_buffers > 0);
    /* perturb everything away from the seeded initialisation */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.01f * (float)sin(0.37 * (double)i + 1);
    for (int l = 0; l < m->L; l++)
        for (int j = 0; j < m->K * m->H[l]; j++) {
            m->buffers[m->run_off[l] + (size_t)j] = 0.05f * (float)(j % 5) - 0.1f;
            m->buffers[m->run_off[l] + (size_t)(m->K * m->H[l] + j)] = 0.5f + 0.1f * (float)(j % 7);
        }
    for (size_t i = 0; i < m->emb_off[3] * (size_t)m->E; i++) m->emb[i] = 0.1f * (float)cos(0.71 * (double)i);

    static const char *const users[] = {"alice", "bob", "carol"};
    static const char *const tags[] = {"red", "green", "blue"};
    fx->enc = calloc(1, sizeof *fx->enc);
    assert_non_null(fx->enc);
    fx->enc->F = 3;
    fx->enc->vocab = calloc(3, sizeof *fx->enc->vocab);
    assert_non_null(fx->enc->vocab);
    fx->enc->vocab[0] = make_vocab(users, 3);
    fx->enc->vocab[1] = NULL;
    fx->enc->vocab[2] = make_vocab(tags, 3);
    snprintf(fx->dense[0], RF_NAME_MAX, "price");
    snprintf(fx->dense[1], RF_NAME_MAX, "age");
    snprintf(fx->labels[0], RF_NAME_MAX, "click");
    snprintf(fx->labels[1], RF_NAME_MAX, "order");
}

static void free_enc(rf_encoders *enc)
{
    if (!enc) return;
    for (int f = 0; f < enc->F; f++) rf_vocab_free(enc->vocab[f]);
    free(enc->vocab);
    free(enc);
}

static void fixture_free(fixture *fx)
{
    rf_model_free(fx->m);
    free_enc(fx->enc);
}

static void save_fx(const fixture *fx, const char *path)
{
    rf_error err;
    rf_error_clear(&err);
    rf_status st = rf_model_save(fx->m, &fx->cfg, fx->enc, (const char(*)[RF_NAME_MAX])fx->dense,
                                 (const char(*)[RF_NAME_MAX])fx->labels, path, &err);
    if (st) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(st, RF_OK);
}

/* ---- file helpers --------------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    *n = (size_t)sz;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void wr64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i); }

/* Recompute the payload checksum and the header checksum (after editing a file image). */
static void reseal(unsigned char *b, size_t n)
{
    wr64(b + 16, n - 64);
    wr64(b + 24, XXH64(b + 64, n - 64, 0));
    wr64(b + 56, XXH64(b, 56, 0));
}

/* Offset of the body of section tag (its length at body-8), or 0 if absent. */
static size_t find_section(const unsigned char *b, size_t n, const char *tag, uint64_t *len)
{
    size_t off = 64;
    uint32_t nsec = rd32(b + 32);
    for (uint32_t i = 0; i < nsec && off + 12 <= n; i++) {
        uint64_t l = rd64(b + off + 4);
        if (memcmp(b + off, tag, 4) == 0) {
            if (len) *len = l;
            return off + 12;
        }
        off += 12 + (size_t)l;
    }
    return 0;
}

static rf_status load_expect(const char *path, rf_status want, const char *needle)
{
    rf_loaded_model lm;
    rf_error err;
    rf_error_clear(&err);
    rf_status st = rf_model_load(path, &lm, &err);
    if (st != want || (needle && !strstr(err.msg, needle))) {
        char buf[2048];
        fprintf(stderr, "  load %s: status %d (want %d), message \"%s\" (want \"%s\")\n", path, st,
                want, rf_error_format(&err, buf, sizeof buf), needle ? needle : "");
    }
    assert_int_equal(st, want);
    if (needle) assert_non_null(strstr(err.msg, needle));
    if (st == RF_OK) {
        assert_non_null(lm.model);
        rf_loaded_model_free(&lm);
    } else {
        assert_null(lm.model); /* nothing leaks into out on failure */
        assert_null(lm.fields);
    }
    return st;
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ---- forward on a tiny dataset ---------------------------------------------------------- */

#define NROWS 6
static rf_dataset *tiny_dataset(const rf_field *fields)
{
    rf_dataset *ds = rf_dataset_alloc(NROWS, 3, 2, 2);
    assert_non_null(ds);
    memcpy(ds->fields, fields, 3 * sizeof *fields);
    static const uint64_t off[NROWS + 1] = {0, 1, 3, 3, 6, 7, 9};
    static const uint32_t ids[9] = {1, 2, 3, 1, 2, 3, 0, 3, 3};
    ds->mv_off[2] = malloc(sizeof off);
    ds->mv_ids[2] = malloc(sizeof ids);
    assert_non_null(ds->mv_off[2]);
    assert_non_null(ds->mv_ids[2]);
    memcpy(ds->mv_off[2], off, sizeof off);
    memcpy(ds->mv_ids[2], ids, sizeof ids);
    for (size_t r = 0; r < NROWS; r++) {
        ds->cat[r * 3 + 0] = (uint32_t)(r % 5);
        ds->cat[r * 3 + 1] = (uint32_t)((r * 3) % fields[1].vocab);
        ds->dense[r * 2 + 0] = 0.3f * (float)r - 0.5f;
        ds->dense[r * 2 + 1] = 1.0f / (1.0f + (float)r);
        ds->labels[r * 2 + 0] = (float)(r % 2);
        ds->labels[r * 2 + 1] = (float)(r % 3 == 0);
    }
    return ds;
}

/* Logits and probabilities (train = 0) of every row: out (2 * NROWS * K). */
static void forward_all(rf_model *m, const rf_dataset *ds, float *out)
{
    rf_workspace *ws = rf_workspace_create(m, NROWS);
    assert_non_null(ws);
    size_t rows[NROWS];
    for (size_t i = 0; i < NROWS; i++) rows[i] = i;
    int label_col[2] = {0, 1};
    rf_batch b = {ds, rows, NROWS, label_col};
    rf_error err;
    assert_int_equal(rf_model_forward(m, ws, &b, 0, &err), RF_OK);
    memcpy(out, rf_ws_logits(ws), (size_t)NROWS * m->K * sizeof(float));
    memcpy(out + NROWS * m->K, rf_ws_probs(ws), (size_t)NROWS * m->K * sizeof(float));
    rf_workspace_free(ws);
}

/* ---- round trip ------------------------------------------------------------------------ */

static void test_roundtrip_full(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 1, 7);
    char path[512];
    path_in(path, sizeof path, "full.rfm");
    save_fx(&fx, path);
    assert_int_equal(count_tmp_files(g_dir), 0);

    rf_loaded_model lm;
    rf_error err;
    rf_status st = rf_model_load(path, &lm, &err);
    if (st) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(st, RF_OK);
    rf_model *a = fx.m, *b = lm.model;

    /* configuration: identical resolved text */
    char *da = rf_config_dump(&fx.cfg), *db = rf_config_dump(&lm.cfg);
    assert_non_null(da);
    assert_non_null(db);
    assert_string_equal(da, db);
    free(da);
    free(db);

    /* shape and weights, bit for bit */
    assert_int_equal(b->F, 3);
    assert_int_equal(b->D, 2);
    assert_int_equal(b->K, 2);
    assert_int_equal(b->E, 4);
    assert_int_equal(b->n_params, a->n_params);
    assert_int_equal(b->n_buffers, a->n_buffers);
    assert_int_equal(b->emb_off[3], a->emb_off[3]);
    assert_memory_equal(b->params, a->params, a->n_params * sizeof(float));
    assert_memory_equal(b->buffers, a->buffers, a->n_buffers * sizeof(float));
    assert_memory_equal(b->emb, a->emb, a->emb_off[3] * (size_t)a->E * sizeof(float));
    for (int f = 0; f < 3; f++) {
        assert_int_equal(b->vocab[f], a->vocab[f]);
        assert_int_equal(b->pooling[f], a->pooling[f]);
    }

    /* schema and names */
    assert_int_equal(lm.F, 3);
    assert_int_equal(lm.D, 2);
    assert_int_equal(lm.K_labels, 2);
    for (int f = 0; f < 3; f++) {
        assert_string_equal(lm.fields[f].name, fx.fields[f].name);
        assert_int_equal(lm.fields[f].multi, fx.fields[f].multi);
        assert_int_equal(lm.fields[f].pooling, fx.fields[f].pooling);
        assert_int_equal(lm.fields[f].sep, fx.fields[f].sep);
        assert_int_equal(lm.fields[f].vocab, fx.fields[f].vocab);
    }
    assert_string_equal(lm.dense_names[0], "price");
    assert_string_equal(lm.dense_names[1], "age");
    assert_non_null(lm.label_names);
    assert_string_equal(lm.label_names[0], "click");
    assert_string_equal(lm.label_names[1], "order");

    /* vocabularies: same keys, same ids, NULL stays NULL */
    assert_non_null(lm.enc);
    assert_int_equal(lm.enc->F, 3);
    assert_null(lm.enc->vocab[1]);
    static const char *const probe[] = {"alice", "bob", "carol", "red", "green", "blue", "zzz", ""};
    for (int f = 0; f < 3; f += 2) {
        const rf_vocab *va = fx.enc->vocab[f], *vb = lm.enc->vocab[f];
        assert_non_null(vb);
        assert_int_equal(rf_vocab_size(vb), rf_vocab_size(va));
        for (uint32_t id = 1; id < rf_vocab_size(va); id++)
            assert_string_equal(rf_vocab_key(vb, id), rf_vocab_key(va, id));
        for (size_t i = 0; i < sizeof probe / sizeof *probe; i++)
            assert_int_equal(rf_vocab_lookup(vb, probe[i], strlen(probe[i])),
                             rf_vocab_lookup(va, probe[i], strlen(probe[i])));
    }
    assert_int_equal(rf_vocab_lookup(lm.enc->vocab[0], "bob", 3), 2);
    assert_int_equal(rf_vocab_lookup(lm.enc->vocab[2], "blue", 4), 3);
    assert_int_equal(rf_vocab_lookup(lm.enc->vocab[2], "zzz", 3), 0);

    /* forward outputs identical */
    rf_dataset *ds = tiny_dataset(fx.fields);
    float oa[4 * NROWS], ob[4 * NROWS];
    forward_all(a, ds, oa);
    forward_all(b, ds, ob);
    for (int i = 0; i < 4 * NROWS; i++) assert_true(isfinite(oa[i]));
    assert_memory_equal(oa, ob, sizeof oa);
    /* and the comparison is sensitive: a different model gives different outputs */
    b->params[0] += 0.5f;
    b->emb[b->emb_off[1] * 4] += 0.5f;
    forward_all(b, ds, ob);
    assert_true(memcmp(oa, ob, sizeof oa) != 0);

    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    assert_null(lm.model);
    fixture_free(&fx);
}

/* No encoders, no names, no schema in the config: loads with enc NULL, label_names NULL,
 * empty dense names; field names come from the model itself (they travel with it). */
static void test_roundtrip_minimal(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 0, 7);
    char path[512];
    path_in(path, sizeof path, "minimal.rfm");
    rf_error err;
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, NULL, NULL, NULL, path, &err), RF_OK);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(path, &lm, &err), RF_OK);
    assert_null(lm.enc);
    assert_null(lm.label_names);
    assert_int_equal(lm.K_labels, 0);
    assert_int_equal(lm.D, 2);
    assert_non_null(lm.dense_names);
    assert_string_equal(lm.dense_names[0], "");
    assert_string_equal(lm.dense_names[1], "");
    assert_string_equal(lm.fields[0].name, "user");
    assert_string_equal(lm.fields[2].name, "tags");
    assert_int_equal(lm.fields[2].multi, 1);
    assert_int_equal(lm.fields[2].pooling, RF_POOL_MEAN);
    assert_int_equal(lm.fields[1].vocab, 7);
    assert_memory_equal(lm.model->params, fx.m->params, fx.m->n_params * sizeof(float));
    assert_memory_equal(lm.model->emb, fx.m->emb, fx.m->emb_off[3] * 4 * sizeof(float));
    rf_loaded_model_free(&lm);
    rf_loaded_model_free(&lm); /* idempotent on a freed (zeroed) struct */
    fixture_free(&fx);
}

/* Saving with encoders inconsistent with the model is refused and writes nothing. */
static void test_save_rejects_bad_encoders(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 1, 7);
    char path[512];
    path_in(path, sizeof path, "badenc.rfm");
    rf_error err;
    fx.enc->F = 2;
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, fx.enc, NULL, NULL, path, &err), RF_EUSAGE);
    fx.enc->F = 3;
    /* a vocabulary with more ids than the field has embedding rows */
    static const char *const many[] = {"a", "b", "c", "d", "e", "f"};
    rf_vocab_free(fx.enc->vocab[0]);
    fx.enc->vocab[0] = make_vocab(many, 6); /* 7 ids, 5 rows */
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, fx.enc, NULL, NULL, path, &err), RF_EUSAGE);
    assert_non_null(strstr(err.msg, "embedding rows"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_tmp_files(g_dir), 0);
    fixture_free(&fx);
}

/* ---- corruption ------------------------------------------------------------------------ */

static void good_image(const char *name, char *path, size_t pn, unsigned char **img, size_t *n)
{
    fixture fx;
    fixture_init(&fx, 1, 7);
    path_in(path, pn, name);
    save_fx(&fx, path);
    fixture_free(&fx);
    *img = slurp(path, n);
    assert_true(*n > 1000);
}

static void test_truncated(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *img;
    size_t n;
    good_image("trunc_src.rfm", good, sizeof good, &img, &n);
    path_in(bad, sizeof bad, "trunc.rfm");
    size_t cuts[] = {0, 1, 7, 8, 10, 63, 64, 64 + 6, 64 + (n - 64) / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(bad, img, cuts[i]);
        load_expect(bad, RF_EFORMAT, "truncated");
    }
    /* the message gives both sizes */
    char want[128];
    snprintf(want, sizeof want, "truncated: expected %zu bytes, file has %zu", n, n - 1);
    spit(bad, img, n - 1);
    load_expect(bad, RF_EFORMAT, want);
    /* every other length fails cleanly too */
    for (size_t len = 0; len < n; len++) {
        spit(bad, img, len);
        load_expect(bad, RF_EFORMAT, NULL);
    }
    /* an extra byte is an error as well */
    unsigned char *longer = malloc(n + 1);
    assert_non_null(longer);
    memcpy(longer, img, n);
    longer[n] = 0;
    spit(bad, longer, n + 1);
    load_expect(bad, RF_EFORMAT, "unexpected bytes");
    free(longer);
    /* and the untouched file loads */
    spit(bad, img, n);
    load_expect(bad, RF_OK, NULL);
    free(img);
}

static void test_payload_flip(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *img;
    size_t n;
    good_image("flip_src.rfm", good, sizeof good, &img, &n);
    path_in(bad, sizeof bad, "flip.rfm");
    size_t pos[] = {64, 64 + 4, 100, 64 + (n - 64) / 3, 64 + (n - 64) / 2, n - 1};
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            img[pos[i]] ^= (unsigned char)(1u << bit);
            spit(bad, img, n);
            load_expect(bad, RF_EFORMAT, "checksum mismatch: file is corrupted");
            img[pos[i]] ^= (unsigned char)(1u << bit);
        }
    }
    free(img);
}

static void test_header_flip(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *img;
    size_t n;
    good_image("hdr_src.rfm", good, sizeof good, &img, &n);
    path_in(bad, sizeof bad, "hdr.rfm");
    /* every header byte after magic and version: flags, sizes, sums, count, marker, reserved,
     * the header checksum itself */
    for (size_t p = 12; p < 64; p++) {
        img[p] ^= 0x10;
        spit(bad, img, n);
        load_expect(bad, RF_EFORMAT, "corrupted");
        img[p] ^= 0x10;
    }
    spit(bad, img, n);
    load_expect(bad, RF_OK, NULL);
    free(img);
}

static void test_bad_magic(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *img;
    size_t n;
    good_image("magic_src.rfm", good, sizeof good, &img, &n);
    path_in(bad, sizeof bad, "magic.rfm");
    img[0] = 'X';
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "not a resflow model file");
    img[0] = 'R';
    img[7] = 'Z';
    reseal(img, n); /* even with a consistent checksum */
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "not a resflow model file");
    const char *text = "model:\n  type: resflow\n";
    spit(bad, (const unsigned char *)text, strlen(text));
    load_expect(bad, RF_EFORMAT, "not a resflow model file");
    if (access("/dev/zero", R_OK) == 0) /* endless input: stops at the magic */
        load_expect("/dev/zero", RF_EFORMAT, "not a resflow model file");
    spit(bad, (const unsigned char *)"RESF", 4); /* a prefix of the magic: truncated */
    load_expect(bad, RF_EFORMAT, "truncated");
    free(img);
}

static void test_version(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *img;
    size_t n;
    good_image("ver_src.rfm", good, sizeof good, &img, &n);
    path_in(bad, sizeof bad, "ver.rfm");
    assert_int_equal(rd32(img + 8), RF_MODEL_VERSION);
    wr32(img + 8, 2);
    reseal(img, n);
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "model format version 2, this build reads version 1");
    load_expect(bad, RF_EFORMAT, "newer");
    wr32(img + 8, 0);
    reseal(img, n);
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "model format version 0, this build reads version 1");
    load_expect(bad, RF_EFORMAT, "older");
    /* a newer version is reported even when its header is not laid out like version 1 */
    wr32(img + 8, 7);
    wr64(img + 56, 0);
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "model format version 7");
    /* byte order */
    wr32(img + 8, 1);
    wr32(img + 36, 0x04030201u);
    reseal(img, n);
    spit(bad, img, n);
    load_expect(bad, RF_EFORMAT, "byte order");
    free(img);
}

static void test_io_errors(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "does-not-exist.rfm");
    load_expect(p, RF_EIO, "No such file");
    load_expect(g_dir, RF_EIO, NULL); /* a directory */
}

/* ---- structure of files with valid checksums -------------------------------------------- */

static void load_edited(const char *path, unsigned char *img, size_t n, rf_status want,
                        const char *needle)
{
    reseal(img, n);
    spit(path, img, n);
    load_expect(path, want, needle);
}

static void test_structure(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *orig;
    size_t n;
    good_image("struct_src.rfm", good, sizeof good, &orig, &n);
    path_in(bad, sizeof bad, "struct.rfm");
    unsigned char *img = malloc(n + 64);
    assert_non_null(img);
    uint64_t len;
#define RESET() memcpy(img, orig, n)

    RESET();
    load_edited(bad, img, n, RF_OK, NULL); /* resealing an intact image changes nothing */

    size_t flds = find_section(orig, n, "FLDS", &len);
    assert_true(flds > 0);
    RESET();
    wr32(img + flds, 65);
    load_edited(bad, img, n, RF_EFORMAT, "65 fields (max 64)");
    RESET();
    wr32(img + flds, 2);
    load_edited(bad, img, n, RF_EFORMAT, "does not match 2 fields");
    RESET();
    memset(img + flds + 4, 'a', RF_NAME_MAX); /* field 0 name without NUL */
    load_edited(bad, img, n, RF_EFORMAT, "not NUL-terminated");
    RESET();
    img[flds + 4 + RF_NAME_MAX] = 3; /* multi flag */
    load_edited(bad, img, n, RF_EFORMAT, "bad multi/pooling");
    RESET();
    wr32(img + flds + 4 + RF_NAME_MAX + 4, 6); /* field 0 vocab 5 -> 6: embedding rows */
    load_edited(bad, img, n, RF_EFORMAT, "rows");

    size_t dnam = find_section(orig, n, "DNAM", &len);
    assert_true(dnam > 0);
    RESET();
    wr32(img + dnam, 3);
    load_edited(bad, img, n, RF_EFORMAT, "does not match 3 names");
    RESET();
    wr32(img + dnam, 1u << 30);
    load_edited(bad, img, n, RF_EFORMAT, "dense features (max");
    RESET();
    memset(img + dnam + 4 + RF_NAME_MAX, 'x', RF_NAME_MAX);
    load_edited(bad, img, n, RF_EFORMAT, "not NUL-terminated");

    size_t lnam = find_section(orig, n, "LNAM", &len);
    assert_true(lnam > 0);
    RESET();
    memcpy(img + lnam - 12, "DNAM", 4); /* a duplicate section */
    load_edited(bad, img, n, RF_EFORMAT, "appears twice");
    RESET();
    memcpy(img + lnam - 12, "ZZZZ", 4); /* LNAM is optional: unknown tag skipped */
    reseal(img, n);
    spit(bad, img, n);
    {
        rf_loaded_model lm;
        rf_error err;
        assert_int_equal(rf_model_load(bad, &lm, &err), RF_OK);
        assert_null(lm.label_names);
        assert_int_equal(lm.K_labels, 0);
        rf_loaded_model_free(&lm);
    }

    size_t parm = find_section(orig, n, "PARM", &len);
    assert_true(parm > 0);
    RESET();
    memcpy(img + parm - 12, "parm", 4);
    load_edited(bad, img, n, RF_EFORMAT, "section PARM is missing");
    RESET();
    wr64(img + parm, rd64(orig + parm) - 1);
    load_edited(bad, img, n, RF_EFORMAT, "do not match its length");
    RESET();
    wr64(img + parm - 8, len + 1000000); /* section longer than the payload */
    load_edited(bad, img, n, RF_EFORMAT, "exceeds the remaining");
    RESET();
    wr64(img + parm - 8, UINT64_MAX);
    load_edited(bad, img, n, RF_EFORMAT, "exceeds the remaining");
    {
        /* PARM one float shorter, with a consistent count: the model has more parameters */
        uint64_t cnt = rd64(orig + parm);
        memcpy(img, orig, parm + 8 + 4 * (cnt - 1));
        memcpy(img + parm + 8 + 4 * (cnt - 1), orig + parm + 8 + 4 * cnt, n - (parm + 8 + 4 * cnt));
        wr64(img + parm - 8, len - 4);
        wr64(img + parm, cnt - 1);
        load_edited(bad, img, n - 4, RF_EFORMAT, "the model has");
    }

    size_t embd = find_section(orig, n, "EMBD", &len);
    assert_true(embd > 0);
    RESET();
    wr32(img + embd + 8, 5);
    load_edited(bad, img, n, RF_EFORMAT, "embedding dimension 5");
    RESET();
    wr64(img + embd, rd64(orig + embd) + 1);
    load_edited(bad, img, n, RF_EFORMAT, "do not match its length");
    RESET();
    wr64(img + embd, UINT64_MAX / 2);
    load_edited(bad, img, n, RF_EFORMAT, "do not match its length");

    size_t buff = find_section(orig, n, "BUFF", &len);
    assert_true(buff > 0);
    RESET();
    wr64(img + buff, 0);
    load_edited(bad, img, n, RF_EFORMAT, "BUFF");

    /* section count */
    RESET();
    wr32(img + 32, rd32(orig + 32) + 1);
    load_edited(bad, img, n, RF_EFORMAT, "extends past the payload");
    RESET();
    wr32(img + 32, rd32(orig + 32) - 1);
    load_edited(bad, img, n, RF_EFORMAT, "unexpected bytes after the last");
    RESET();
    wr32(img + 32, UINT32_MAX);
    load_edited(bad, img, n, RF_EFORMAT, "extends past the payload");

    /* an unknown section appended is skipped (forward compatible) */
    RESET();
    memcpy(img + n, "XTRA", 4);
    wr64(img + n + 4, 5);
    memcpy(img + n + 12, "hello", 5);
    wr32(img + 32, rd32(orig + 32) + 1);
    load_edited(bad, img, n + 17, RF_OK, NULL);

    /* vocabularies */
    size_t vocb = find_section(orig, n, "VOCB", &len);
    assert_true(vocb > 0);
    RESET();
    wr32(img + vocb, 4);
    load_edited(bad, img, n, RF_EFORMAT, "4 fields");
    RESET();
    wr32(img + vocb + 4, 2); /* presence flag of field 0 */
    load_edited(bad, img, n, RF_EFORMAT, "presence flag");
    RESET();
    wr32(img + vocb + 8, 4); /* 4 keys + OOV = 5 ids: fits the 5 rows but the section ends */
    load_edited(bad, img, n, RF_EFORMAT, "VOCB");
    RESET();
    wr32(img + vocb + 8, 5); /* 6 ids for 5 embedding rows */
    load_edited(bad, img, n, RF_EFORMAT, "embedding rows");
    RESET();
    wr32(img + vocb + 8, UINT32_MAX);
    load_edited(bad, img, n, RF_EFORMAT, "keys cannot fit");
    RESET();
    assert_int_equal(rd32(orig + vocb + 12), 5); /* "alice" */
    wr32(img + vocb + 12, 1000);
    load_edited(bad, img, n, RF_EFORMAT, "extends past the section");
    RESET();
    memcpy(img + vocb + 16, "bob\0\0", 5); /* "alice" -> "bob\0\0": NUL inside a key */
    load_edited(bad, img, n, RF_EFORMAT, "NUL byte");
    RESET();
    /* "alice" -> "bob" (shorter, 2 bytes dropped): duplicate of id 2 */
    memcpy(img, orig, vocb + 12);
    wr32(img + vocb + 12, 3);
    memcpy(img + vocb + 16, "bob", 3);
    memcpy(img + vocb + 19, orig + vocb + 21, n - (vocb + 21));
    wr64(img + vocb - 8, len - 2);
    load_edited(bad, img, n - 2, RF_EFORMAT, "duplicate key");

    /* configuration text */
    size_t conf = find_section(orig, n, "CONF", &len);
    assert_true(conf > 0);
    RESET();
    img[conf + 3] = 0;
    load_edited(bad, img, n, RF_EFORMAT, "NUL byte");
    RESET();
    memset(img + conf, '@', 8); /* invalid YAML / unknown key */
    load_edited(bad, img, n, RF_EFORMAT, "stored configuration is invalid");

    free(img);
    free(orig);
#undef RESET
}

/* Flip every payload byte (with valid checksums, so structure parsing sees it) and every
 * byte (without): never a crash (run under ASan/UBSan), always OK or a clean error. */
static void test_fuzz(void **state)
{
    (void)state;
    char good[512], bad[512];
    unsigned char *orig;
    size_t n;
    good_image("fuzz_src.rfm", good, sizeof good, &orig, &n);
    path_in(bad, sizeof bad, "fuzz.rfm");
    unsigned char *img = malloc(n);
    assert_non_null(img);
    int ok = 0, failed = 0;
    static const unsigned char masks[] = {0xff, 0x01, 0x80};
    size_t parm = find_section(orig, n, "PARM", NULL);
    assert_true(parm > 0);
    for (size_t p = 64; p < n; p++) {
        /* the float data is large and uninteresting: sample it */
        if (p > parm + 16 && p < n - 16 && (p % 97) != 0) continue;
        for (size_t mi = 0; mi < sizeof masks; mi++) {
            memcpy(img, orig, n);
            img[p] ^= masks[mi];
            reseal(img, n);
            spit(bad, img, n);
            rf_loaded_model lm;
            rf_error err;
            rf_status st = rf_model_load(bad, &lm, &err);
            assert_true(st == RF_OK || st == RF_EFORMAT || st == RF_ENOMEM);
            if (st == RF_OK) {
                ok++;
                rf_loaded_model_free(&lm);
            } else {
                failed++;
                assert_null(lm.model);
                assert_true(err.msg[0] != '\0');
            }
        }
    }
    assert_true(ok > 0);
    assert_true(failed > 0);
    for (size_t p = 0; p < n; p += (p < 64 ? 1 : 13)) {
        memcpy(img, orig, n);
        img[p] ^= 0x24;
        spit(bad, img, n);
        load_expect(bad, RF_EFORMAT, NULL);
    }
    free(img);
    free(orig);
}

/* ---- atomic writes ---------------------------------------------------------------------- */

static void test_save_missing_dir(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 1, 7);
    char dir[512], path[600];
    path_in(dir, sizeof dir, "no-such-dir");
    snprintf(path, sizeof path, "%s/m.rfm", dir);
    rf_error err;
    rf_error_clear(&err);
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, fx.enc, NULL, NULL, path, &err), RF_EIO);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(count_tmp_files(g_dir), 0);
    fixture_free(&fx);
}

/* rename onto a directory fails after the whole file was written: the temporary file goes. */
static void test_save_onto_directory(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 1, 7);
    char path[512];
    path_in(path, sizeof path, "is-a-dir.rfm");
    assert_int_equal(mkdir(path, 0755), 0);
    rf_error err;
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, fx.enc, NULL, NULL, path, &err), RF_EIO);
    assert_int_equal(count_tmp_files(g_dir), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rmdir(path), 0);
    fixture_free(&fx);
}

/* Issue #17: weights that are not finite (NaN, Inf) are refused at load even with valid
 * checksums (before: loaded, predicted NaN), and a diverged model is never saved (the old file
 * stays). */
static void test_nonfinite_weights(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, 1, 7);
    char path[512], bad[512];
    path_in(path, sizeof path, "finite.rf");
    path_in(bad, sizeof bad, "nan.rf");
    save_fx(&fx, path);
    size_t n;
    unsigned char *b = slurp(path, &n);
    const char *tags[] = {"PARM", "BUFF", "EMBD"};
    const size_t skip[] = {8, 8, 16}; /* count (and width) before the floats */
    const float vals[] = {NAN, INFINITY, -INFINITY};
    for (int t = 0; t < 3; t++) {
        uint64_t len;
        size_t off = find_section(b, n, tags[t], &len);
        assert_true(off > 0 && len > skip[t]);
        unsigned char *c = malloc(n);
        assert_non_null(c);
        memcpy(c, b, n);
        memcpy(c + off + skip[t] + 4 * ((len - skip[t]) / 4 / 2), &vals[t], 4); /* a middle value */
        reseal(c, n);
        spit(bad, c, n);
        load_expect(bad, RF_EFORMAT, "diverged");
        free(c);
    }
    /* save: a NaN parameter -> RF_ENUMERIC, the existing file byte for byte as it was */
    rf_model_params(fx.m)[3] = NAN;
    rf_error err;
    rf_error_clear(&err);
    assert_int_equal(rf_model_save(fx.m, &fx.cfg, fx.enc, (const char(*)[RF_NAME_MAX])fx.dense,
                                   (const char(*)[RF_NAME_MAX])fx.labels, path, &err),
                     RF_ENUMERIC);
    assert_non_null(strstr(err.msg, "diverged"));
    size_t n2;
    unsigned char *b2 = slurp(path, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    free(b);
    fixture_free(&fx);
}

/* A save that fails midway (file size limit: the write fails with EFBIG, like a full disk)
 * leaves the existing model file byte for byte as it was, and no temporary file. */
static void test_failed_save_keeps_old_file(void **state)
{
    (void)state;
    fixture a, b;
    fixture_init(&a, 1, 7);
    fixture_init(&b, 1, 300); /* a different, larger model */
    char path[512];
    path_in(path, sizeof path, "keep.rfm");
    save_fx(&a, path);
    size_t n0;
    unsigned char *before = slurp(path, &n0);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1024;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        free(before);
        fixture_free(&a);
        fixture_free(&b);
        skip();
    }
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    rf_error err;
    rf_error_clear(&err);
    rf_status st = rf_model_save(b.m, &b.cfg, b.enc, NULL, NULL, path, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);

    assert_int_equal(st, RF_EIO);
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_int_equal(count_tmp_files(g_dir), 0);
    size_t n1;
    unsigned char *after = slurp(path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);

    /* without the limit the same save replaces the file completely */
    save_fx(&b, path);
    assert_int_equal(count_tmp_files(g_dir), 0);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(path, &lm, &err), RF_OK);
    assert_int_equal(lm.fields[1].vocab, 300);
    assert_memory_equal(lm.model->emb, b.m->emb, b.m->emb_off[3] * 4 * sizeof(float));
    rf_loaded_model_free(&lm);
    fixture_free(&a);
    fixture_free(&b);
}

/* A smaller model saved over a larger one: the file is exactly the new one. */
static void test_save_replaces(void **state)
{
    (void)state;
    fixture big, small;
    fixture_init(&big, 1, 500);
    fixture_init(&small, 1, 7);
    char path[512], ref[512];
    path_in(path, sizeof path, "replace.rfm");
    path_in(ref, sizeof ref, "replace_ref.rfm");
    save_fx(&big, path);
    size_t nb, ns, nr;
    unsigned char *b = slurp(path, &nb);
    save_fx(&small, path);
    save_fx(&small, ref);
    unsigned char *s = slurp(path, &ns), *r = slurp(ref, &nr);
    assert_true(ns < nb);
    assert_int_equal(ns, nr);
    assert_memory_equal(s, r, ns); /* deterministic bytes */
    assert_int_equal(count_tmp_files(g_dir), 0);
    rf_loaded_model lm;
    rf_error err;
    assert_int_equal(rf_model_load(path, &lm, &err), RF_OK);
    assert_int_equal(lm.fields[1].vocab, 7);
    rf_loaded_model_free(&lm);
    free(b);
    free(s);
    free(r);
    fixture_free(&big);
    fixture_free(&small);
}

/* ---- main ------------------------------------------------------------------------------- */

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/rf_modelfile_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_save_rejects_bad_encoders),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_payload_flip),
        cmocka_unit_test(test_header_flip),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_save_missing_dir),
        cmocka_unit_test(test_save_onto_directory),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_nonfinite_weights),
        cmocka_unit_test(test_save_replaces),
    };
    int rc = cmocka_run_group_tests_name("modelfile", tests, NULL, NULL);
    rm_tree(g_dir);
    return rc;
}
