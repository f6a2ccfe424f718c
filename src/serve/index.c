/* index.c - item index files (.rfi, index.h): written atomically with a streamed checksum, mapped
 * read-only and verified on open, tied to a model by a fingerprint of its parameters. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/bytes.h"
#include "resflow/afile.h"
#include "resflow/index.h"
#include "serve/topk.h"

#define HDR 128
#define ALIGN 64

struct rf_index {
    char *path;
    unsigned char *map;
    size_t len;
    uint64_t fp;
    size_t n;
    int K, d, dq;
    const uint64_t *id_off;
    const char *id_bytes;
    const float *v, *vb, *qa, *qb;
    const uint8_t *codes;
};

/* n floats as little-endian bytes, in pieces, to emit(ud, bytes, len) */
static void emit_f32(void (*emit)(void *, const void *, size_t), void *ud, const float *x, size_t n)
{
    unsigned char buf[4096];
    while (n) {
        size_t m = n < sizeof buf / 4 ? n : sizeof buf / 4;
        rf_put_f32s(buf, x, m);
        emit(ud, buf, m * 4);
        x += m;
        n -= m;
    }
}

static void hash_bytes(void *h, const void *p, size_t n) { XXH64_update(h, p, n); }
static void hash_f32(XXH64_state_t *h, const float *x, size_t n) { emit_f32(hash_bytes, h, x, n); }

uint64_t rf_index_model_fingerprint(const rf_model *m)
{
    const rf_model_info *in = rf_model_info_of(m);
    const rf_model_spec *sp = rf_model_spec_of(m);
    XXH64_state_t *h = XXH64_createState();
    if (!h) return 0;
    XXH64_reset(h, 0x52464958u);
    unsigned char b[8 * (8 + RF_MAX_LAYERS)];
    int E = rf_model_emb_width(sp), p = 0;
    wr64(b + 8 * p++, (uint64_t)sp->model.type);
    wr64(b + 8 * p++, (uint64_t)in->K);
    wr64(b + 8 * p++, (uint64_t)in->F);
    wr64(b + 8 * p++, (uint64_t)in->D);
    wr64(b + 8 * p++, (uint64_t)E);
    wr64(b + 8 * p++, (uint64_t)in->n_params);
    wr64(b + 8 * p++, (uint64_t)in->n_buffers);
    wr64(b + 8 * p++, (uint64_t)in->n_emb_rows);
    for (int l = 0; l < RF_MAX_LAYERS; l++) wr64(b + 8 * p++, (uint64_t)(l < in->L ? in->H[l] : 0));
    XXH64_update(h, b, (size_t)p * 8);
    hash_f32(h, rf_model_params(m), in->n_params);
    if (in->n_buffers) hash_f32(h, rf_model_buffers(m), in->n_buffers);
    hash_f32(h, rf_model_emb(m), in->n_emb_rows * (size_t)E);
    uint64_t r = XXH64_digest(h);
    XXH64_freeState(h);
    return r;
}

static size_t up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

typedef struct {
    rf_afile *f;
    XXH64_state_t *h;
    size_t pos;
    int fail;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    const unsigned char *c = p;
    XXH64_update(w->h, c, n);
    w->pos += n;
    while (n && !w->fail) {
        ssize_t k = write(rf_afile_fd(w->f), c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            rf_afile_fail(w->f, k < 0 ? errno : EIO);
            w->fail = 1;
            return;
        }
        c += k;
        n -= (size_t)k;
    }
}

static void pad_to(wr *w, size_t off)
{
    static const unsigned char z[ALIGN];
    while (w->pos < off) put(w, z, off - w->pos < ALIGN ? off - w->pos : ALIGN);
}

static void put_bytes(void *w, const void *p, size_t n) { put(w, p, n); }
static void put_f32(wr *w, const float *x, size_t n) { emit_f32(put_bytes, w, x, n); }

rf_status rf_index_write(const char *path, uint64_t fingerprint, size_t n, int K, int d, const char *const *ids,
                         const float *v, const float *vb, int threads, rf_error *err)
{
    if (!path || (n && (!ids || !v)) || K < 1 || d < 1)
        return rf_errorf(err, RF_EUSAGE, "rf_index_write: bad arguments");
    if (n > (size_t)UINT32_MAX) return rf_errorf(err, RF_EUSAGE, "%s: more than 2^32 items", path);
    int dq = rf_tk_dq(d);
    size_t blob = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) return rf_errorf(err, RF_EUSAGE, "%s: item %zu has no id", path, i);
        blob += strlen(ids[i]) + 1;
    }
    size_t o_ids = HDR, o_blob = up(o_ids + (n + 1) * 8), o_vec = up(o_blob + blob);
    size_t o_bias = up(o_vec + n * (size_t)K * d * 4), o_q = up(o_bias + n * (size_t)K * 4);
    size_t o_codes = up(o_q + 2 * (size_t)K * dq * 4), ncodes = rf_tk_codes_bytes(n, K, d);
    size_t total = o_codes + ncodes;
    float *qa = malloc((size_t)K * dq * sizeof *qa), *qb = malloc((size_t)K * dq * sizeof *qb);
    uint8_t *codes = malloc(ncodes ? ncodes : 1);
    float *zeros = vb ? NULL : calloc((size_t)K * 1024, sizeof *zeros);
    XXH64_state_t *h = XXH64_createState();
    if (!qa || !qb || !codes || (!vb && !zeros) || !h) {
        free(qa), free(qb), free(codes), free(zeros);
        if (h) XXH64_freeState(h);
        return rf_errorf(err, RF_ENOMEM, "%s: out of memory", path);
    }
    rf_tk_quantize(n, K, d, v, qa, qb, codes, threads);
    rf_afile *f;
    rf_status st = rf_afile_open(path, O_CLOEXEC, &f, err);
    if (st) goto out;
    XXH64_reset(h, 0);
    unsigned char hdr[HDR] = {0};
    wr w = {f, h, 0, 0};
    if (pwrite(rf_afile_fd(f), hdr, HDR, 0) != HDR) rf_afile_fail(f, errno ? errno : EIO), w.fail = 1;
    if (lseek(rf_afile_fd(f), HDR, SEEK_SET) != HDR) rf_afile_fail(f, errno), w.fail = 1;
    w.pos = HDR;
    uint64_t off = 0;
    unsigned char b8[8];
    for (size_t i = 0; i <= n; i++) {
        wr64(b8, off);
        put(&w, b8, 8);
        if (i < n) off += strlen(ids[i]) + 1;
    }
    pad_to(&w, o_blob);
    for (size_t i = 0; i < n; i++) put(&w, ids[i], strlen(ids[i]) + 1);
    pad_to(&w, o_vec);
    put_f32(&w, v, n * (size_t)K * d);
    pad_to(&w, o_bias);
    if (vb) put_f32(&w, vb, n * (size_t)K);
    else
        for (size_t i = 0; i < n; i += 1024) put_f32(&w, zeros, (n - i < 1024 ? n - i : 1024) * (size_t)K);
    pad_to(&w, o_q);
    put_f32(&w, qa, (size_t)K * dq);
    put_f32(&w, qb, (size_t)K * dq);
    pad_to(&w, o_codes);
    put(&w, codes, ncodes);
    memcpy(hdr, RF_INDEX_MAGIC, 8);
    wr32(hdr + 8, RF_INDEX_VERSION);
    wr32(hdr + 12, RF_ENDIAN_MARK);
    wr64(hdr + 16, fingerprint);
    wr64(hdr + 24, n);
    wr32(hdr + 32, (uint32_t)K);
    wr32(hdr + 36, (uint32_t)d);
    wr32(hdr + 40, (uint32_t)dq);
    wr32(hdr + 44, 1); /* flags: bit 0, the compact copy is there */
    wr64(hdr + 48, o_ids);
    wr64(hdr + 56, o_blob);
    wr64(hdr + 64, blob);
    wr64(hdr + 72, o_vec);
    wr64(hdr + 80, o_bias);
    wr64(hdr + 88, o_q);
    wr64(hdr + 96, o_codes);
    wr64(hdr + 104, total);
    wr64(hdr + 112, XXH64_digest(h));
    wr64(hdr + 120, XXH64(hdr, 120, 0));
    if (!w.fail && pwrite(rf_afile_fd(f), hdr, HDR, 0) != HDR) rf_afile_fail(f, errno ? errno : EIO);
    st = rf_afile_commit(f, RF_AFILE_DURABLE, err);
out:
    free(qa), free(qb), free(codes), free(zeros);
    XXH64_freeState(h);
    return st;
}

void rf_index_close(rf_index *ix)
{
    if (!ix) return;
    if (ix->map) munmap(ix->map, ix->len);
    free(ix->path);
    free(ix);
}

static rf_status bad(rf_index *ix, rf_error *err, const char *path, const char *what)
{
    rf_index_close(ix);
    return rf_errorf(err, RF_EFORMAT, "%s: not a valid index file: %s", path, what);
}

rf_status rf_index_open(const char *path, rf_index **out, rf_error *err)
{
    if (!path || !out) return rf_errorf(err, RF_EUSAGE, "rf_index_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rf_errorf(err, RF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rf_errorf(err, RF_EIO, "%s: not a regular file", path);
    }
    rf_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->path = strdup(path))) {
        close(fd);
        free(ix);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    ix->len = (size_t)sb.st_size;
    if (ix->len < HDR) {
        close(fd);
        return bad(ix, err, path, "shorter than its header (truncated?)");
    }
    void *m = mmap(NULL, ix->len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        int e = errno;
        rf_index_close(ix);
        return rf_errorf(err, RF_EIO, "%s: cannot map: %s", path, strerror(e));
    }
    ix->map = m;
    const unsigned char *h = ix->map;
    if (memcmp(h, RF_INDEX_MAGIC, 8)) return bad(ix, err, path, "wrong magic (not a resflow index)");
    if (rd32(h + 8) != RF_INDEX_VERSION) return bad(ix, err, path, "unsupported version");
    if (rd32(h + 12) != RF_ENDIAN_MARK || !rf_host_le()) return bad(ix, err, path, "written for another byte order");
    if (rd64(h + 120) != XXH64(h, 120, 0)) return bad(ix, err, path, "header checksum mismatch");
    if (rd64(h + 104) != ix->len) return bad(ix, err, path, "its size differs from its header's (truncated?)");
    ix->fp = rd64(h + 16);
    uint64_t n = rd64(h + 24);
    uint32_t K = rd32(h + 32), d = rd32(h + 36), dq = rd32(h + 40);
    if (K < 1 || K > RF_MAX_TASKS || d < 1 || d > (1u << 20) || dq != (uint32_t)rf_tk_dq((int)d) ||
        n > UINT32_MAX || !(rd32(h + 44) & 1))
        return bad(ix, err, path, "bad shape in the header");
    ix->n = (size_t)n;
    ix->K = (int)K;
    ix->d = (int)d;
    ix->dq = (int)dq;
    uint64_t o_ids = rd64(h + 48), o_blob = rd64(h + 56), blob = rd64(h + 64), o_vec = rd64(h + 72);
    uint64_t o_bias = rd64(h + 80), o_q = rd64(h + 88), o_codes = rd64(h + 96);
    /* the sections in order, aligned, each inside the file (no overflow: n < 2^32, K, d small) */
    if (o_ids != HDR || o_blob < o_ids + (n + 1) * 8 || o_vec < o_blob + blob || o_bias < o_vec + n * K * d * 4 ||
        o_q < o_bias + n * K * 4 || o_codes < o_q + 2ull * K * dq * 4 ||
        o_codes + rf_tk_codes_bytes(ix->n, ix->K, ix->d) != ix->len || o_blob % ALIGN || o_vec % ALIGN ||
        o_bias % ALIGN || o_q % ALIGN || o_codes % ALIGN || blob > ix->len)
        return bad(ix, err, path, "bad section offsets");
    if (XXH64(ix->map + HDR, ix->len - HDR, 0) != rd64(h + 112))
        return bad(ix, err, path, "checksum mismatch (corrupt or truncated)");
    ix->id_off = (const uint64_t *)(const void *)(ix->map + o_ids);
    ix->id_bytes = (const char *)ix->map + o_blob;
    if (ix->id_off[0] != 0 || ix->id_off[n] != blob) return bad(ix, err, path, "bad id table");
    for (uint64_t i = 0; i < n; i++)
        if (ix->id_off[i + 1] <= ix->id_off[i] || ix->id_bytes[ix->id_off[i + 1] - 1] != '\0')
            return bad(ix, err, path, "bad id table");
    ix->v = (const float *)(const void *)(ix->map + o_vec);
    ix->vb = (const float *)(const void *)(ix->map + o_bias);
    ix->qa = (const float *)(const void *)(ix->map + o_q);
    ix->qb = ix->qa + (size_t)K * dq;
    ix->codes = ix->map + o_codes;
    *out = ix;
    return RF_OK;
}

rf_status rf_index_check_model(const rf_index *ix, const rf_model *m, const char *model_path, rf_error *err)
{
    uint64_t fp = rf_index_model_fingerprint(m);
    if (fp != ix->fp)
        return rf_errorf(err, RF_EUSAGE,
                         "index %s was not built from model %s (fingerprint %016llx, the model's %016llx): rebuild "
                         "it with 'resflow index -m %s'",
                         ix->path, model_path, (unsigned long long)ix->fp, (unsigned long long)fp, model_path);
    if (rf_model_info_of(m)->K != ix->K)
        return rf_errorf(err, RF_EUSAGE, "index %s has %d tasks, model %s has %d", ix->path, ix->K, model_path,
                         rf_model_info_of(m)->K);
    return RF_OK;
}

const char *rf_index_path(const rf_index *ix) { return ix->path; }
size_t rf_index_size(const rf_index *ix) { return ix->n; }
int rf_index_tasks(const rf_index *ix) { return ix->K; }
int rf_index_dim(const rf_index *ix) { return ix->d; }
uint64_t rf_index_fingerprint(const rf_index *ix) { return ix->fp; }
const char *rf_index_id(const rf_index *ix, size_t i) { return i < ix->n ? ix->id_bytes + ix->id_off[i] : NULL; }
const float *rf_index_vectors(const rf_index *ix) { return ix->v; }
const float *rf_index_biases(const rf_index *ix) { return ix->vb; }

void rf_index_items(const rf_index *ix, rf_tk_items *it)
{
    *it = (rf_tk_items){ix->n, ix->K, ix->d, ix->v, ix->vb, ix->dq, ix->qa, ix->qb, ix->codes, NULL};
}
