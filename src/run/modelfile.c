/* modelfile.c - save/load self-contained model files (see include/resflow/modelfile.h and
 * docs/formats.md, "Model file", for the exact layout).
 *
 * Saving streams the sections through the one atomic writer (afile.h: a unique temporary file
 * beside path) while hashing them, then rewrites the header and commits durably (fsync, rename,
 * directory fsync). On any failure the temporary file is removed and an existing file at path
 * is left untouched.
 *
 * Loading reads the whole file into memory and validates it in this order: size >= header,
 * magic, version, endian marker, header checksum, payload length vs file size, payload
 * checksum, then every section's bounds and structure. Every read goes through a
 * bounds-checked cursor (bytes.h), so no input can make it read outside the buffer.
 *
 * All integers and floats are little-endian in the file, whatever the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/bytes.h"
#include "resflow/afile.h"
#include "resflow/modelfile.h"

#define HDR_SIZE 64u
#define HDR_SUM_OFF 56u
#define SEC_HDR 12u
#define FIELD_REC (RF_NAME_MAX + 8u) /* name | u8 multi | u8 pooling | u8 sep | u8 0 | u32 vocab */
#define MAX_F 64
#define MAX_D 65536
#define MAX_EMB_DIM 65536
#define MAX_HIDDEN (1 << 24)

static const char *const section_tags[] = {"CONF", "FLDS", "DNAM", "LNAM",
                                           "VOCB", "PARM", "BUFF", "EMBD"};
enum { S_CONF, S_FLDS, S_DNAM, S_LNAM, S_VOCB, S_PARM, S_BUFF, S_EMBD, S_COUNT };

/* ---- writing --------------------------------------------------------------------------- */

typedef struct {
    FILE *fp;
    XXH64_state_t *h;
    uint64_t bytes; /* payload bytes written */
    int err_no;     /* first write error, 0 if none */
} writer;

static void w_bytes(writer *w, const void *p, size_t n)
{
    if (w->err_no || !n) return;
    XXH64_update(w->h, p, n);
    w->bytes += n;
    if (fwrite(p, 1, n, w->fp) != n) w->err_no = errno ? errno : EIO;
}
static void w_u8(writer *w, unsigned v)
{
    unsigned char b = (unsigned char)v;
    w_bytes(w, &b, 1);
}
static void w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    wr32(b, v);
    w_bytes(w, b, 4);
}
static void w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    wr64(b, v);
    w_bytes(w, b, 8);
}
static void w_sec(writer *w, const char *tag, uint64_t len)
{
    w_bytes(w, tag, 4);
    w_u64(w, len);
}
static void w_floats(writer *w, const float *x, size_t n)
{
    if (rf_host_le()) {
        w_bytes(w, x, n * sizeof(float));
        return;
    }
    unsigned char buf[4096];
    while (n) {
        size_t c = n < sizeof buf / 4 ? n : sizeof buf / 4;
        rf_put_f32s(buf, x, c);
        w_bytes(w, buf, 4 * c);
        x += c;
        n -= c;
    }
}
/* A name as a fixed RF_NAME_MAX record (NUL-padded; always NUL-terminated). */
static void w_name(writer *w, const char *s)
{
    char rec[RF_NAME_MAX];
    memset(rec, 0, sizeof rec);
    if (s) {
        size_t l = strnlen(s, RF_NAME_MAX - 1);
        memcpy(rec, s, l);
    }
    w_bytes(w, rec, sizeof rec);
}

/* Open the output through the one atomic writer (afile.h) with a hashing writer on it. */
static rf_status out_open(const char *path, writer *w, rf_afile **af, rf_error *err)
{
    memset(w, 0, sizeof *w);
    rf_status st = rf_afile_open(path, O_CLOEXEC, af, err);
    if (st) return st;
    w->fp = rf_afile_fp(*af);
    w->h = XXH64_createState();
    if (!w->fp || !w->h) {
        XXH64_freeState(w->h);
        rf_afile_abort(*af);
        return rf_errorf(err, RF_ENOMEM, "out of memory writing %s", path);
    }
    XXH64_reset(w->h, 0);
    return RF_OK;
}

/* Rewrite the header in place, then commit durably (fsync, rename, directory fsync). */
static rf_status out_finish(writer *w, rf_afile *af, const unsigned char *hdr, int e, const char *path,
                            rf_error *err)
{
    if (!e && fseek(w->fp, 0, SEEK_SET) != 0) e = errno ? errno : EIO;
    if (!e && fwrite(hdr, 1, HDR_SIZE, w->fp) != HDR_SIZE) e = errno ? errno : EIO;
    if (e) {
        rf_afile_abort(af);
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot write the model file: %s", strerror(e));
    }
    rf_error sub;
    if (rf_afile_commit(af, RF_AFILE_DURABLE, &sub))
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot write the model file: %s", sub.msg);
    return RF_OK;
}

/* The first non-finite value of x[0..n) ("" when all are finite), for a message. */
static int nonfinite(const float *x, size_t n, char *what, size_t wn, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            snprintf(what, wn, "%s value %zu of %zu is %g", name, i, n, (double)x[i]);
            return 1;
        }
    return 0;
}
/* A model whose weights are all finite (a diverged one is neither saved nor loaded). */
static int model_nonfinite(const rf_model *mdl, char *what, size_t wn)
{
    const rf_model_info *m = rf_model_info_of(mdl);
    return nonfinite(rf_model_params(mdl), m->n_params, what, wn, "dense parameter") ||
           nonfinite(rf_model_buffers(mdl), m->n_buffers, what, wn, "running statistic") ||
           nonfinite(rf_model_emb(mdl), m->n_emb_rows * (size_t)m->E, what, wn, "embedding");
}

/* Field record f: the model's input schema (name, separator) with its embedding layout. */
static void field_of(const rf_model *m, int f, rf_field *out)
{
    const rf_field *sf = &rf_model_spec_of(m)->fields[f];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", sf->name);
    out->sep = sf->sep;
    out->multi = sf->multi ? 1 : 0;
    out->pooling = sf->multi ? sf->pooling : RF_POOL_SUM;
    out->vocab = (uint32_t)(rf_model_emb_offset(m, f + 1) - rf_model_emb_offset(m, f));
}

rf_status rf_model_save(const rf_model *mdl, const rf_config *cfg, const rf_encoders *enc,
                        const char (*dense_names)[RF_NAME_MAX],
                        const char (*label_names)[RF_NAME_MAX], const char *path, rf_error *err)
{
    if (!mdl || !cfg || !path || !path[0])
        return rf_errorf(err, RF_EINTERNAL, "rf_model_save: no model, configuration or path");
    const rf_model_info *m = rf_model_info_of(mdl);
    if (m->F < 0 || m->F > MAX_F || m->D < 0 || m->D > MAX_D)
        return rf_errorf(err, RF_EINTERNAL, "rf_model_save: bad model shape F=%d D=%d", m->F,
                         m->D);
    char bad[160];
    if (model_nonfinite(mdl, bad, sizeof bad))
        return rf_error_at(err, RF_ENUMERIC, path, 0, 0,
                           "not saved: the model has diverged (%s); the file was left as it was", bad);
    if (enc && enc->F != m->F)
        return rf_error_at(err, RF_EUSAGE, path, 0, 0,
                           "encoders have %d fields, the model has %d", enc->F, m->F);
    int F = m->F, D = m->D, K = m->K;

    /* section sizes */
    uint64_t vocb_len = 4;
    if (enc) {
        for (int f = 0; f < F; f++) {
            const rf_vocab *v = enc->vocab ? enc->vocab[f] : NULL;
            vocb_len += 4;
            if (!v) continue;
            uint32_t n = rf_vocab_size(v);
            if (n < 1) n = 1;
            uint32_t rows_f = (uint32_t)(rf_model_emb_offset(mdl, f + 1) - rf_model_emb_offset(mdl, f));
            if (n > rows_f)
                return rf_error_at(err, RF_EUSAGE, path, 0, 0,
                                   "field %d: vocabulary has %u ids but the model has %u embedding "
                                   "rows", f, n, rows_f);
            vocb_len += 4;
            for (uint32_t id = 1; id < n; id++) {
                const char *key = rf_vocab_key(v, id);
                if (!key)
                    return rf_errorf(err, RF_EINTERNAL, "field %d: vocabulary id %u has no key", f,
                                     id);
                size_t kl = strlen(key);
                if (kl > UINT32_MAX)
                    return rf_errorf(err, RF_EUSAGE, "field %d: vocabulary key too long", f);
                vocb_len += 4 + (uint64_t)kl;
            }
        }
    }
    char *conf = rf_config_dump(cfg);
    if (!conf) return rf_errorf(err, RF_ENOMEM, "out of memory dumping the configuration");
    uint64_t conf_len = strlen(conf);
    uint64_t rows = m->n_emb_rows;
    uint64_t len[S_COUNT];
    len[S_CONF] = conf_len;
    len[S_FLDS] = 4 + (uint64_t)FIELD_REC * (uint64_t)F;
    len[S_DNAM] = 4 + (uint64_t)RF_NAME_MAX * (uint64_t)D;
    len[S_LNAM] = 4 + (label_names ? (uint64_t)RF_NAME_MAX * (uint64_t)K : 0);
    len[S_VOCB] = vocb_len;
    len[S_PARM] = 8 + 4 * (uint64_t)m->n_params;
    len[S_BUFF] = 8 + 4 * (uint64_t)m->n_buffers;
    len[S_EMBD] = 16 + 4 * rows * (uint64_t)m->E;
    uint32_t nsec = 0;
    uint64_t payload = 0;
    for (int s = 0; s < S_COUNT; s++) {
        if (s == S_VOCB && !enc) continue;
        nsec++;
        payload += SEC_HDR + len[s];
    }

    writer w;
    rf_afile *af;
    rf_status ost = out_open(path, &w, &af, err);
    if (ost) {
        free(conf);
        return ost;
    }

    /* header placeholder (rewritten at the end), then the payload */
    unsigned char hdr[HDR_SIZE];
    memset(hdr, 0, sizeof hdr);
    if (fwrite(hdr, 1, HDR_SIZE, w.fp) != HDR_SIZE) w.err_no = errno ? errno : EIO;

    w_sec(&w, "CONF", len[S_CONF]);
    w_bytes(&w, conf, (size_t)conf_len);
    free(conf);
    conf = NULL;

    w_sec(&w, "FLDS", len[S_FLDS]);
    w_u32(&w, (uint32_t)F);
    for (int f = 0; f < F; f++) {
        rf_field fd_;
        field_of(mdl, f, &fd_);
        w_name(&w, fd_.name);
        w_u8(&w, (unsigned)fd_.multi);
        w_u8(&w, (unsigned)fd_.pooling);
        w_u8(&w, (unsigned char)fd_.sep);
        w_u8(&w, 0);
        w_u32(&w, fd_.vocab);
    }

    w_sec(&w, "DNAM", len[S_DNAM]);
    w_u32(&w, (uint32_t)D);
    for (int d = 0; d < D; d++) w_name(&w, dense_names ? dense_names[d] : NULL);

    w_sec(&w, "LNAM", len[S_LNAM]);
    w_u32(&w, label_names ? (uint32_t)K : 0);
    if (label_names)
        for (int k = 0; k < K; k++) w_name(&w, label_names[k]);

    if (enc) {
        w_sec(&w, "VOCB", len[S_VOCB]);
        w_u32(&w, (uint32_t)F);
        for (int f = 0; f < F; f++) {
            const rf_vocab *v = enc->vocab ? enc->vocab[f] : NULL;
            w_u32(&w, v ? 1 : 0);
            if (!v) continue;
            uint32_t n = rf_vocab_size(v);
            if (n < 1) n = 1;
            w_u32(&w, n - 1);
            for (uint32_t id = 1; id < n; id++) {
                const char *key = rf_vocab_key(v, id);
                size_t kl = strlen(key);
                w_u32(&w, (uint32_t)kl);
                w_bytes(&w, key, kl);
            }
        }
        /* optional PREP: field encodings (hash/bucket/OOV) and dense normalisers */
        if (enc->field || enc->dense) {
            unsigned char *prep = NULL;
            size_t prep_len = 0;
            if (rf_encoders_prep_write(enc, &prep, &prep_len, NULL) != RF_OK) {
                if (!w.err_no) w.err_no = ENOMEM;
            } else {
                w_sec(&w, "PREP", prep_len);
                w_bytes(&w, prep, prep_len);
                nsec++;
                payload += SEC_HDR + prep_len;
            }
            free(prep);
        }
    }

    w_sec(&w, "PARM", len[S_PARM]);
    w_u64(&w, m->n_params);
    w_floats(&w, rf_model_params(mdl), m->n_params);

    w_sec(&w, "BUFF", len[S_BUFF]);
    w_u64(&w, m->n_buffers);
    w_floats(&w, rf_model_buffers(mdl), m->n_buffers);

    w_sec(&w, "EMBD", len[S_EMBD]);
    w_u64(&w, rows);
    w_u32(&w, (uint32_t)m->E);
    w_u32(&w, 0);
    w_floats(&w, rf_model_emb(mdl), (size_t)(rows * (uint64_t)m->E));

    uint64_t psum = XXH64_digest(w.h);
    XXH64_freeState(w.h);
    int e = w.err_no;
    if (!e && w.bytes != payload) e = EIO; /* cannot happen: the sizes above are the layout */

    memcpy(hdr, RF_MODEL_MAGIC, 8);
    wr32(hdr + 8, RF_MODEL_VERSION);
    wr32(hdr + 12, 0);
    wr64(hdr + 16, payload);
    wr64(hdr + 24, psum);
    wr32(hdr + 32, nsec);
    wr32(hdr + 36, RF_ENDIAN_MARK);
    wr64(hdr + HDR_SUM_OFF, XXH64(hdr, HDR_SUM_OFF, 0));
    return out_finish(&w, af, hdr, e, path, err);
}

/* ---- reading --------------------------------------------------------------------------- */

static rf_status read_all(const char *path, unsigned char **out, size_t *out_n, rf_error *err)
{
    *out = NULL;
    *out_n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot stat: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot read: %s", strerror(EISDIR));
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return rf_error_at(err, RF_ENOMEM, path, 0, 0, "out of memory reading %zu bytes", cap);
    }
    for (;;) {
        if (n == cap) {
            size_t nc = cap * 2;
            unsigned char *nb = nc > cap ? realloc(buf, nc) : NULL;
            if (!nb) {
                free(buf);
                close(fd);
                return rf_error_at(err, RF_ENOMEM, path, 0, 0, "out of memory reading the file");
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return rf_error_at(err, RF_EIO, path, 0, 0, "cannot read: %s", strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
        /* not a model file (e.g. a device or pipe of something else): stop reading */
        if (memcmp(buf, RF_MODEL_MAGIC, n < 8 ? n : 8) != 0) break;
    }
    close(fd);
    *out = buf;
    *out_n = n;
    return RF_OK;
}


/* A tag printable in a message. */
static void tag_str(const unsigned char *t, char out[5])
{
    for (int i = 0; i < 4; i++) out[i] = (t[i] >= 0x20 && t[i] < 0x7f) ? (char)t[i] : '?';
    out[4] = '\0';
}

/* Copy a fixed RF_NAME_MAX record, which must contain a NUL. */
static int get_name(rcur *c, char out[RF_NAME_MAX])
{
    const unsigned char *p;
    if (rc_take(c, RF_NAME_MAX, &p)) return -1;
    if (!memchr(p, 0, RF_NAME_MAX)) return -2;
    memcpy(out, p, RF_NAME_MAX);
    return 0;
}

#define FMTERR(...) rf_error_at(err, RF_EFORMAT, path, 0, 0, __VA_ARGS__)

static rf_status check_header(const char *path, const unsigned char *buf, size_t size,
                              uint64_t *payload, uint32_t *nsec, rf_error *err)
{
    size_t ml = size < 8 ? size : 8;
    if (memcmp(buf, RF_MODEL_MAGIC, ml) != 0)
        return FMTERR("not a resflow model file (bad magic)");
    if (size < HDR_SIZE)
        return FMTERR("truncated: expected at least %u bytes (the header), file has %zu%s",
                      HDR_SIZE, size, size == 0 ? " (empty file)" : "");
    int hdr_ok = rd64(buf + HDR_SUM_OFF) == XXH64(buf, HDR_SUM_OFF, 0);
    uint32_t version = rd32(buf + 8);
    if (version != RF_MODEL_VERSION)
        return FMTERR("model format version %u, this build reads version %d (%s)%s", version,
                      RF_MODEL_VERSION,
                      version > RF_MODEL_VERSION ? "the file was written by a newer resflow"
                                                 : "an older format that is no longer supported",
                      hdr_ok ? "" : "; the header checksum does not match either: the file may "
                                    "be corrupted");
    uint32_t mark = rd32(buf + 36);
    if (mark != RF_ENDIAN_MARK) {
        if (mark == 0x04030201u && hdr_ok)
            return FMTERR("the file was written with the opposite byte order");
        return FMTERR("bad endian marker 0x%08x: the header is corrupted", mark);
    }
    if (!hdr_ok) return FMTERR("header checksum mismatch: file is corrupted");
    *payload = rd64(buf + 16);
    *nsec = rd32(buf + 32);
    uint64_t have = size - HDR_SIZE;
    if (*payload > have) {
        if (*payload > UINT64_MAX - HDR_SIZE)
            return FMTERR("truncated: the header claims %llu payload bytes, file has %zu",
                          (unsigned long long)*payload, size);
        return FMTERR("truncated: expected %llu bytes, file has %zu",
                      (unsigned long long)*payload + HDR_SIZE, size);
    }
    if (*payload < have)
        return FMTERR("%llu unexpected bytes after the payload: expected %llu bytes, file has "
                      "%zu", (unsigned long long)(have - *payload),
                      (unsigned long long)*payload + HDR_SIZE, size);
    if (XXH64(buf + HDR_SIZE, (size_t)*payload, 0) != rd64(buf + 24))
        return FMTERR("checksum mismatch: file is corrupted");
    return RF_OK;
}

/* The floats section PARM/BUFF: u64 count, count floats. */
static rf_status float_section(const char *path, const char *tag, const rcur *sec,
                               uint64_t *count, rf_error *err)
{
    rcur c = *sec;
    if (rc_u64(&c, count)) return FMTERR("section %s: too short (%zu bytes)", tag, sec->n);
    if (*count > rc_left(&c) / 4 || *count * 4 != rc_left(&c))
        return FMTERR("section %s: %llu floats do not match its length of %zu bytes", tag,
                      (unsigned long long)*count, sec->n);
    return RF_OK;
}

void rf_loaded_model_free(rf_loaded_model *lm)
{
    if (!lm) return;
    rf_model_free(lm->model);
    rf_encoders_free(lm->enc);
    free(lm->fields);
    free(lm->dense_names);
    free(lm->label_names);
    memset(lm, 0, sizeof *lm);
}

static rf_status parse_vocab(const char *path, const rcur *sec, rf_loaded_model *out,
                             rf_error *err)
{
    rcur c = *sec;
    int F = out->F;
    uint32_t nf;
    if (rc_u32(&c, &nf)) return FMTERR("section VOCB: too short");
    if (nf != (uint32_t)F)
        return FMTERR("section VOCB: %u fields, the field schema has %d", nf, F);
    rf_encoders *enc = calloc(1, sizeof *enc);
    if (!enc) return rf_errorf(err, RF_ENOMEM, "out of memory");
    enc->F = F;
    enc->vocab = calloc(F > 0 ? (size_t)F : 1, sizeof *enc->vocab);
    enc->id_size = calloc(F > 0 ? (size_t)F : 1, sizeof *enc->id_size);
    if (!enc->vocab || !enc->id_size) {
        rf_encoders_free(enc);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    out->enc = enc; /* freed with out on failure */
    /* fields without a vocabulary hold integer ids, as many as their embedding rows */
    for (int f = 0; f < F; f++) enc->id_size[f] = out->fields[f].vocab ? out->fields[f].vocab : 1;
    for (int f = 0; f < F; f++) {
        uint32_t present, nkeys;
        if (rc_u32(&c, &present)) return FMTERR("section VOCB: field %d: truncated", f);
        if (present > 1) return FMTERR("section VOCB: field %d: bad presence flag %u", f, present);
        if (!present) continue;
        if (rc_u32(&c, &nkeys)) return FMTERR("section VOCB: field %d: truncated", f);
        if (nkeys > rc_left(&c) / 4)
            return FMTERR("section VOCB: field %d: %u keys cannot fit in %zu bytes", f, nkeys,
                          rc_left(&c));
        uint32_t emb_rows = out->fields[f].vocab ? out->fields[f].vocab : 1;
        if ((uint64_t)nkeys + 1 > emb_rows)
            return FMTERR("section VOCB: field %d (%s): %llu ids but only %u embedding rows", f,
                          out->fields[f].name, (unsigned long long)nkeys + 1, emb_rows);
        rf_vocab *v = rf_vocab_create();
        if (!v) return rf_errorf(err, RF_ENOMEM, "out of memory");
        enc->vocab[f] = v;
        for (uint32_t i = 0; i < nkeys; i++) {
            uint32_t kl;
            const unsigned char *key;
            if (rc_u32(&c, &kl) || rc_take(&c, kl, &key))
                return FMTERR("section VOCB: field %d: key %u extends past the section", f, i + 1);
            if (memchr(key, 0, kl))
                return FMTERR("section VOCB: field %d: key %u contains a NUL byte", f, i + 1);
            rf_status st = rf_vocab_add(v, (const char *)key, kl);
            if (st == RF_ENOMEM) return rf_errorf(err, RF_ENOMEM, "out of memory");
            if (st) return FMTERR("section VOCB: field %d: duplicate key (id %u)", f, i + 1);
        }
        rf_vocab_freeze(v, 0);
        if (rf_vocab_size(v) != nkeys + 1)
            return rf_errorf(err, RF_EINTERNAL, "field %d: vocabulary of %u keys has size %u", f,
                             nkeys, rf_vocab_size(v));
    }
    if (rc_left(&c)) return FMTERR("section VOCB: %zu unexpected bytes at its end", rc_left(&c));
    return RF_OK;
}

/* ---- score-fusion section FUSN ------------------------------------------------------------
 * Text lines "key: value": formula (required, rf_fusion_parse syntax), objective, value.
 * Unknown keys are ignored (a later writer may add some). */
static rf_status parse_fusion(const char *path, const rcur *sec, rf_fusion *f, rf_error *err)
{
    if (memchr(sec->p, 0, sec->n)) return FMTERR("section FUSN: contains a NUL byte");
    char *text = malloc(sec->n + 1);
    if (!text) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(text, sec->p, sec->n);
    text[sec->n] = '\0';
    rf_status st = RF_OK;
    char objective[32] = "";
    double value = 0;
    int have_formula = 0;
    for (char *line = text, *next; line && !st; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *colon = strstr(line, ": ");
        if (!*line) continue;
        if (!colon) {
            st = FMTERR("section FUSN: line '%.60s' is not 'key: value'", line);
            break;
        }
        *colon = '\0';
        const char *v = colon + 2;
        if (!strcmp(line, "formula")) {
            rf_error sub;
            rf_error_clear(&sub);
            if (rf_fusion_parse(v, f, &sub)) st = FMTERR("section FUSN: %s", sub.msg);
            have_formula = 1;
        } else if (!strcmp(line, "objective")) {
            snprintf(objective, sizeof objective, "%s", v);
        } else if (!strcmp(line, "value")) {
            char *e;
            value = strtod(v, &e);
            if (*e) st = FMTERR("section FUSN: bad value '%.40s'", v);
        }
    }
    free(text);
    if (!st && !have_formula) st = FMTERR("section FUSN: no formula");
    if (st) {
        memset(f, 0, sizeof *f);
        return st;
    }
    snprintf(f->objective, sizeof f->objective, "%s", objective);
    f->value = value;
    return RF_OK;
}

static rf_status parse(const char *path, const unsigned char *buf, size_t size,
                       rf_loaded_model *out, rf_error *err)
{
    uint64_t payload = 0;
    uint32_t nsec = 0;
    rf_status st = check_header(path, buf, size, &payload, &nsec, err);
    if (st) return st;

    /* section table */
    rcur sec[S_COUNT];
    int have[S_COUNT] = {0};
    rcur fusn = {NULL, 0, 0};
    rcur prep = {NULL, 0, 0};
    rcur pc = {buf + HDR_SIZE, (size_t)payload, 0};
    for (uint32_t i = 0; i < nsec; i++) {
        const unsigned char *tag;
        uint64_t len;
        if (rc_take(&pc, 4, &tag) || rc_u64(&pc, &len))
            return FMTERR("section %u of %u: header extends past the payload", i + 1, nsec);
        char ts[5];
        tag_str(tag, ts);
        if (len > rc_left(&pc))
            return FMTERR("section %s: length %llu exceeds the remaining %zu payload bytes", ts,
                          (unsigned long long)len, rc_left(&pc));
        const unsigned char *body;
        rc_take(&pc, (size_t)len, &body);
        for (int s = 0; s < S_COUNT; s++) {
            if (memcmp(tag, section_tags[s], 4) != 0) continue;
            if (have[s]) return FMTERR("section %s appears twice", ts);
            have[s] = 1;
            sec[s].p = body;
            sec[s].n = (size_t)len;
            sec[s].off = 0;
        }
        if (!memcmp(tag, "FUSN", 4)) { /* optional score-fusion formula */
            if (fusn.p) return FMTERR("section FUSN appears twice");
            fusn.p = body;
            fusn.n = (size_t)len;
        }
        if (!memcmp(tag, "PREP", 4)) { /* optional feature encoders (encoders.c) */
            if (prep.p) return FMTERR("section PREP appears twice");
            prep.p = body;
            prep.n = (size_t)len;
        }
        /* unknown tags are skipped */
    }
    if (rc_left(&pc))
        return FMTERR("%zu unexpected bytes after the last of %u sections", rc_left(&pc), nsec);
    for (int s = 0; s < S_COUNT; s++)
        if (!have[s] && s != S_VOCB && s != S_LNAM)
            return FMTERR("section %s is missing", section_tags[s]);

    /* FLDS */
    rcur c = sec[S_FLDS];
    uint32_t F;
    if (rc_u32(&c, &F)) return FMTERR("section FLDS: too short");
    if (F > MAX_F) return FMTERR("section FLDS: %u fields (max %d)", F, MAX_F);
    if (rc_left(&c) != (size_t)F * FIELD_REC)
        return FMTERR("section FLDS: length %zu does not match %u fields", sec[S_FLDS].n, F);
    out->F = (int)F;
    out->fields = calloc(F ? F : 1, sizeof *out->fields);
    if (!out->fields) return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (uint32_t f = 0; f < F; f++) {
        rf_field *fd = &out->fields[f];
        unsigned multi, pool, sep, pad;
        uint32_t vocab;
        if (get_name(&c, fd->name))
            return FMTERR("section FLDS: field %u: name is not NUL-terminated", f);
        if (rc_u8(&c, &multi) || rc_u8(&c, &pool) || rc_u8(&c, &sep) || rc_u8(&c, &pad) ||
            rc_u32(&c, &vocab))
            return FMTERR("section FLDS: field %u: truncated", f);
        if (multi > 1 || pool > RF_POOL_MEAN)
            return FMTERR("section FLDS: field %u (%s): bad multi/pooling %u/%u", f, fd->name,
                          multi, pool);
        fd->multi = (int)multi;
        fd->pooling = (int)pool;
        fd->sep = (char)sep;
        fd->vocab = vocab;
    }

    /* DNAM */
    c = sec[S_DNAM];
    uint32_t D;
    if (rc_u32(&c, &D)) return FMTERR("section DNAM: too short");
    if (D > MAX_D) return FMTERR("section DNAM: %u dense features (max %d)", D, MAX_D);
    if (rc_left(&c) != (size_t)D * RF_NAME_MAX)
        return FMTERR("section DNAM: length %zu does not match %u names", sec[S_DNAM].n, D);
    out->D = (int)D;
    out->dense_names = calloc(D ? D : 1, sizeof *out->dense_names);
    if (!out->dense_names) return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (uint32_t d = 0; d < D; d++)
        if (get_name(&c, out->dense_names[d]))
            return FMTERR("section DNAM: name %u is not NUL-terminated", d);

    /* CONF */
    if (memchr(sec[S_CONF].p, 0, sec[S_CONF].n))
        return FMTERR("section CONF: the configuration text contains a NUL byte");
    rf_config cfg;
    rf_config_default(&cfg);
    {
        size_t pl = strlen(path);
        char *name = malloc(pl + 8);
        if (!name) return rf_errorf(err, RF_ENOMEM, "out of memory");
        snprintf(name, pl + 8, "%s:CONF", path);
        rf_error sub;
        rf_error_clear(&sub);
        st = rf_config_load_string(&cfg, (const char *)sec[S_CONF].p, sec[S_CONF].n, name, &sub);
        free(name);
        if (st) {
            if (st == RF_ENOMEM) return rf_errorf(err, RF_ENOMEM, "%s", sub.msg);
            return rf_error_at(err, RF_EFORMAT, sub.file[0] ? sub.file : path, sub.line, sub.col,
                               "stored configuration is invalid: %s", sub.msg);
        }
    }
    const rf_model_cfg *mc = &cfg.model;
    if (cfg.K < 1 || cfg.K > RF_MAX_TASKS)
        return FMTERR("stored configuration: bad task count %d", cfg.K);
    if (mc->n_hidden < 1 || mc->n_hidden > RF_MAX_LAYERS)
        return FMTERR("stored configuration: bad hidden layer count %d", mc->n_hidden);
    if (mc->emb_dim < 1 || mc->emb_dim > MAX_EMB_DIM)
        return FMTERR("stored configuration: bad embedding dimension %d", mc->emb_dim);
    for (int l = 0; l < mc->n_hidden; l++)
        if (mc->hidden[l] < 1 || mc->hidden[l] > MAX_HIDDEN)
            return FMTERR("stored configuration: bad width %d of hidden layer %d", mc->hidden[l],
                          l);
    if (F == 0 && D == 0) return FMTERR("the model has no input features");

    /* LNAM */
    if (have[S_LNAM]) {
        c = sec[S_LNAM];
        uint32_t K;
        if (rc_u32(&c, &K)) return FMTERR("section LNAM: too short");
        if (K != 0 && K != (uint32_t)cfg.K)
            return FMTERR("section LNAM: %u label names for %d tasks", K, cfg.K);
        if (rc_left(&c) != (size_t)K * RF_NAME_MAX)
            return FMTERR("section LNAM: length %zu does not match %u names", sec[S_LNAM].n, K);
        if (K) {
            out->label_names = calloc(K, sizeof *out->label_names);
            if (!out->label_names) return rf_errorf(err, RF_ENOMEM, "out of memory");
            for (uint32_t k = 0; k < K; k++)
                if (get_name(&c, out->label_names[k]))
                    return FMTERR("section LNAM: name %u is not NUL-terminated", k);
        }
        out->K_labels = (int)K;
    }

    /* sizes of the weight sections, checked before building the model so that a bad file
     * cannot make it allocate more than the file holds */
    uint64_t n_params, n_buffers, rows;
    uint32_t E, pad;
    if ((st = float_section(path, "PARM", &sec[S_PARM], &n_params, err))) return st;
    if ((st = float_section(path, "BUFF", &sec[S_BUFF], &n_buffers, err))) return st;
    c = sec[S_EMBD];
    if (rc_u64(&c, &rows) || rc_u32(&c, &E) || rc_u32(&c, &pad))
        return FMTERR("section EMBD: too short");
    /* single-task and STEM models keep one embedding chunk per task (and a shared one) */
    rf_model_spec spec;
    rf_config_model_spec(&cfg, (int)F, out->fields, (int)D, &spec);
    int ew = rf_model_emb_width(&spec);
    if (E != (uint32_t)ew)
        return FMTERR("section EMBD: embedding dimension %u, the configuration says %d x %d", E,
                      mc->emb_dim, ew / mc->emb_dim);
    if (rows > rc_left(&c) / 4 / E || rows * E * 4 != rc_left(&c))
        return FMTERR("section EMBD: %llu rows of %u floats do not match its length of %zu bytes",
                      (unsigned long long)rows, E, sec[S_EMBD].n);
    uint64_t want_rows = 0;
    for (uint32_t f = 0; f < F; f++) want_rows += out->fields[f].vocab ? out->fields[f].vocab : 1;
    if (want_rows != rows)
        return FMTERR("section EMBD: %llu rows, the field vocabularies need %llu",
                      (unsigned long long)rows, (unsigned long long)want_rows);
    {
        /* the tower weights alone are a lower bound of the parameter count (zoo models' towers
         * read a hidden layer of at least one column, not the whole input) */
        uint64_t in = (uint64_t)F * E + (D ? (mc->dense_mode == RF_DENSE_PROJECT ? E : D) : 0);
        if (!rf_model_type_is_tower(mc->type)) in = 1;
        uint64_t lb = 0;
        for (int l = 0; l < mc->n_hidden; l++) {
            uint64_t h = (uint64_t)mc->hidden[l];
            lb += (l == 0 ? in : (uint64_t)mc->hidden[l - 1]) * (uint64_t)cfg.K * h;
        }
        if (lb > n_params)
            return FMTERR("section PARM: %llu parameters, the configuration needs at least %llu",
                          (unsigned long long)n_params, (unsigned long long)lb);
    }

    /* rebuild and fill */
    rf_error sub;
    rf_error_clear(&sub);
    st = rf_model_create(&spec, &out->model, &sub);
    if (st) {
        if (st == RF_ENOMEM) return rf_errorf(err, RF_ENOMEM, "%s", sub.msg);
        return FMTERR("the stored model cannot be built: %s", sub.msg);
    }
    out->cfg = cfg;
    const rf_model_info *m = rf_model_info_of(out->model);
    if (m->n_params != n_params)
        return FMTERR("section PARM: %llu parameters, the model has %zu",
                      (unsigned long long)n_params, m->n_params);
    if (m->n_buffers != n_buffers)
        return FMTERR("section BUFF: %llu running statistics, the model has %zu",
                      (unsigned long long)n_buffers, m->n_buffers);
    if (m->n_emb_rows != rows || (uint32_t)m->E != E)
        return FMTERR("section EMBD: %llu x %u embeddings, the model has %zu x %d",
                      (unsigned long long)rows, E, m->n_emb_rows, m->E);
    rf_get_f32s(rf_model_params(out->model), sec[S_PARM].p + 8, (size_t)n_params);
    rf_get_f32s(rf_model_buffers(out->model), sec[S_BUFF].p + 8, (size_t)n_buffers);
    rf_get_f32s(rf_model_emb(out->model), sec[S_EMBD].p + 16, (size_t)(rows * E));
    char bad[160];
    if (model_nonfinite(out->model, bad, sizeof bad))
        return FMTERR("refused: %s (a diverged model, or the file was altered)", bad);

    if (have[S_VOCB] && (st = parse_vocab(path, &sec[S_VOCB], out, err))) return st;
    if (prep.p) {
        if (!out->enc) { /* no vocabularies: every field gets its encoding from PREP */
            if (!(out->enc = calloc(1, sizeof *out->enc))) return rf_errorf(err, RF_ENOMEM, "out of memory");
            out->enc->F = (int)F;
            if (!(out->enc->vocab = calloc(F ? F : 1, sizeof *out->enc->vocab)))
                return rf_errorf(err, RF_ENOMEM, "out of memory");
        }
        if ((st = rf_encoders_prep_parse(out->enc, (int)F, (int)D, prep.p, prep.n, path, err))) return st;
        for (uint32_t f = 0; f < F; f++)
            if (out->enc->field[f].size != out->fields[f].vocab)
                return FMTERR("section PREP: field %u (%s): %u ids, the field has %u embedding rows", f,
                              out->fields[f].name, out->enc->field[f].size, out->fields[f].vocab);
    }
    if (fusn.p && (st = parse_fusion(path, &fusn, &out->fusion, err))) return st;
    return RF_OK;
}

rf_status rf_model_load(const char *path, rf_loaded_model *out, rf_error *err)
{
    if (!out || !path) return rf_errorf(err, RF_EINTERNAL, "rf_model_load: no path or output");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t size;
    rf_status st = read_all(path, &buf, &size, err);
    if (st) return st;
    st = parse(path, buf, size, out, err);
    free(buf);
    if (st) rf_loaded_model_free(out);
    return st;
}

/* ---- setting the score-fusion section -------------------------------------------------- */

rf_status rf_model_set_fusion(const char *in_path, const char *out_path, const rf_fusion *f,
                              rf_error *err)
{
    if (!in_path || !out_path || !out_path[0])
        return rf_errorf(err, RF_EINTERNAL, "rf_model_set_fusion: no path");
    unsigned char *buf;
    size_t size;
    rf_status st = read_all(in_path, &buf, &size, err);
    if (st) return st;
    {   /* the input must load as a model */
        rf_loaded_model lm;
        memset(&lm, 0, sizeof lm);
        st = parse(in_path, buf, size, &lm, err);
        rf_loaded_model_free(&lm);
        if (st) {
            free(buf);
            return st;
        }
    }
    char text[1024] = "";
    if (f && f->kind != RF_FUSION_NONE) {
        char spec[900];
        rf_fusion_spec(f, spec, sizeof spec);
        rf_fusion chk;
        rf_error sub;
        if (rf_fusion_parse(spec, &chk, &sub)) {
            free(buf);
            return rf_errorf(err, RF_EUSAGE, "cannot store the fusion formula: %s", sub.msg);
        }
        snprintf(text, sizeof text, "formula: %s\nobjective: %s\nvalue: %.17g\n", spec,
                 f->objective, f->value);
    }
    uint32_t nsec = rd32(buf + 32), out_nsec = 0;
    uint64_t payload = 0;
    rcur pc = {buf + HDR_SIZE, size - HDR_SIZE, 0};
    for (uint32_t i = 0; i < nsec; i++) { /* structure already checked by parse() */
        const unsigned char *tag = NULL, *body;
        uint64_t len = 0;
        if (rc_take(&pc, 4, &tag) || rc_u64(&pc, &len) || rc_take(&pc, (size_t)len, &body)) {
            free(buf);
            return rf_errorf(err, RF_EINTERNAL, "%s: section %u out of bounds", in_path, i);
        }
        if (!memcmp(tag, "FUSN", 4)) continue;
        out_nsec++;
        payload += SEC_HDR + len;
    }
    size_t tl = strlen(text);
    if (tl) {
        out_nsec++;
        payload += SEC_HDR + tl;
    }

    writer w;
    rf_afile *af;
    if ((st = out_open(out_path, &w, &af, err))) {
        free(buf);
        return st;
    }
    unsigned char hdr[HDR_SIZE];
    memcpy(hdr, buf, HDR_SIZE); /* magic, version, flags, endian marker, reserved kept */
    if (fwrite(hdr, 1, HDR_SIZE, w.fp) != HDR_SIZE) w.err_no = errno ? errno : EIO;
    pc.off = 0;
    for (uint32_t i = 0; i < nsec; i++) {
        const unsigned char *tag = NULL, *body;
        uint64_t len = 0;
        if (rc_take(&pc, 4, &tag) || rc_u64(&pc, &len) || rc_take(&pc, (size_t)len, &body)) break;
        if (!memcmp(tag, "FUSN", 4)) continue;
        w_bytes(&w, tag, SEC_HDR + (size_t)len); /* tag, length and body as they are */
    }
    if (tl) {
        w_sec(&w, "FUSN", tl);
        w_bytes(&w, text, tl);
    }
    free(buf);
    uint64_t psum = XXH64_digest(w.h);
    XXH64_freeState(w.h);
    int e = w.err_no;
    if (!e && w.bytes != payload) e = EIO;
    wr64(hdr + 16, payload);
    wr64(hdr + 24, psum);
    wr32(hdr + 32, out_nsec);
    wr64(hdr + HDR_SUM_OFF, XXH64(hdr, HDR_SUM_OFF, 0));
    return out_finish(&w, af, hdr, e, out_path, err);
}
