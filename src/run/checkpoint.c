/* checkpoint.c - training checkpoints (include/resflow/checkpoint.h): write the state of a
 * running rf_train atomically, read it back verified, and turn it into an rf_train_resume. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/bytes.h"
#include "resflow/afile.h"
#include "resflow/checkpoint.h"
#include "resflow/optim.h"

/* A checkpoint larger than this is refused at load (not a checkpoint of any model we make). */
#define CKPT_MAX ((uint64_t)1 << 40)

/* Hashing stream over the atomic file: the first write error is kept. */
typedef struct {
    FILE *fp;
    XXH64_state_t *h;
    int e;
} hout;

static void put(hout *o, const void *p, size_t n)
{
    if (o->e || !n) return;
    XXH64_update(o->h, p, n);
    if (fwrite(p, 1, n, o->fp) != n) o->e = errno ? errno : EIO;
}
/* Floats little-endian: as they are on such a host, one by one elsewhere. */
static void put_f32s(hout *o, const float *x, size_t n)
{
    if (rf_host_le()) {
        put(o, x, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char le[4];
        rf_put_f32s(le, x + i, 1);
        put(o, le, 4);
    }
}

/* ---- the data fingerprint ---------------------------------------------------------------- */

static void hash_u64(XXH3_state_t *h, uint64_t v) { XXH3_64bits_update(h, &v, sizeof v); }

/* An optional array: presence, then its bytes. */
static void hash_opt(XXH3_state_t *h, const void *p, size_t bytes)
{
    hash_u64(h, p != NULL);
    if (p && bytes) XXH3_64bits_update(h, p, bytes);
}

/* A name of at most RF_NAME_MAX bytes: its length, then its bytes. */
static void hash_name(XXH3_state_t *h, const char *name)
{
    size_t l = strnlen(name, RF_NAME_MAX);
    hash_u64(h, l);
    XXH3_64bits_update(h, name, l);
}

static void hash_dataset(XXH3_state_t *h, const rf_dataset *d)
{
    hash_u64(h, d != NULL);
    if (!d) return;
    size_t n = d->n;
    hash_u64(h, n);
    hash_u64(h, (uint64_t)d->F << 32 | (uint64_t)d->D << 16 | (uint64_t)d->K);
    for (int f = 0; f < d->F; f++) {
        const rf_field *fd = &d->fields[f];
        hash_name(h, fd->name);
        hash_u64(h, (uint64_t)fd->vocab << 32 | (uint64_t)(unsigned char)fd->sep << 16 | (uint64_t)fd->multi << 8 |
                        (uint64_t)fd->pooling);
    }
    for (int j = 0; j < d->D && d->dense_names; j++) hash_name(h, d->dense_names[j]);
    for (int k = 0; k < d->K && d->label_names; k++) hash_name(h, d->label_names[k]);
    hash_opt(h, d->cat, n * (size_t)d->F * sizeof *d->cat);
    for (int f = 0; f < d->F; f++) {
        if (!d->mv_off || !d->mv_off[f]) {
            hash_u64(h, 0);
            continue;
        }
        /* offsets relative to the first (a view of a larger dataset starts above 0) */
        const uint64_t *off = d->mv_off[f];
        uint64_t rel[512];
        for (size_t i = 0; i <= n;) {
            size_t m = n + 1 - i < 512 ? n + 1 - i : 512;
            for (size_t j = 0; j < m; j++) rel[j] = off[i + j] - off[0];
            XXH3_64bits_update(h, rel, m * sizeof *rel);
            i += m;
        }
        if (d->mv_ids && d->mv_ids[f] && off[n] > off[0])
            XXH3_64bits_update(h, d->mv_ids[f] + off[0], (size_t)(off[n] - off[0]) * sizeof **d->mv_ids);
    }
    hash_opt(h, d->dense, n * (size_t)d->D * sizeof *d->dense);
    hash_opt(h, d->labels, n * (size_t)d->K * sizeof *d->labels);
    hash_opt(h, d->weight, n * sizeof *d->weight);
    hash_opt(h, d->group, n * sizeof *d->group);
    hash_opt(h, d->truth, n * (size_t)d->K * sizeof *d->truth);
}

uint64_t rf_checkpoint_data_hash(const rf_dataset *train, const rf_dataset *valid, const rf_dataset *test)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h) return 0; /* out of memory: a fingerprint that matches nothing real */
    XXH3_64bits_reset(h);
    hash_dataset(h, train);
    hash_dataset(h, valid);
    hash_dataset(h, test);
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

rf_status rf_checkpoint_check_data(const rf_checkpoint *c, uint64_t data_hash, rf_error *err)
{
    if (!c->has_data_hash || c->data_hash == data_hash) return RF_OK;
    return rf_errorf(err, RF_EDATA,
                     "the checkpoint was written for other training data (fingerprint %016llx; the data read now "
                     "has %016llx): resume on the same data files, or start the run anew",
                     (unsigned long long)c->data_hash, (unsigned long long)data_hash);
}

/* ---- writing and reading ------------------------------------------------------------------- */

rf_status rf_checkpoint_save(const char *path, const char *config, int threads, uint64_t data_hash,
                             const rf_train_state *s, rf_error *err)
{
    const rf_model_info *mi = rf_model_info_of(s->model);
    size_t np = mi->n_params, nb = mi->n_buffers, ne = mi->n_emb_rows * (size_t)mi->E;
    size_t on = rf_optimizer_state_size(s->opt);
    unsigned char *ost = malloc(on ? on : 1);
    if (!ost) return rf_error_at(err, RF_ENOMEM, path, 0, 0, "out of memory for the optimizer state");
    rf_optimizer_save_state(s->opt, ost);
    rf_afile *af;
    rf_status st = rf_afile_open(path, O_CLOEXEC, &af, err);
    if (st) {
        free(ost);
        return st;
    }
    hout o = {rf_afile_fp(af), XXH64_createState(), 0};
    if (!o.fp || !o.h) {
        XXH64_freeState(o.h);
        rf_afile_abort(af);
        free(ost);
        return rf_error_at(err, RF_ENOMEM, path, 0, 0, "out of memory writing the checkpoint");
    }
    XXH64_reset(o.h, 0);
    const rf_train_pos *p = &s->pos;
    uint64_t score;
    memcpy(&score, &p->best_score, 8);
    size_t cl = strlen(config);
    bbuf h = {0}; /* everything before the parameters */
    bb_put(&h, RF_CKPT_MAGIC, 8);
    bb_u32(&h, RF_CKPT_VERSION);
    bb_u32(&h, RF_ENDIAN_MARK);
    bb_u64(&h, cl);
    bb_put(&h, config, cl);
    bb_u32(&h, (uint32_t)threads);
    bb_u64(&h, data_hash);
    bb_u32(&h, (uint32_t)p->epoch);
    bb_u64(&h, (uint64_t)p->batch);
    bb_u64(&h, (uint64_t)p->steps);
    bb_u64(&h, (uint64_t)p->seen);
    bb_u32(&h, (uint32_t)p->bad_evals);
    bb_u32(&h, (uint32_t)p->by_loss);
    bb_u64(&h, score);
    bb_u32(&h, (uint32_t)p->best_epoch);
    bb_u64(&h, sizeof p->best_valid);
    bb_put(&h, &p->best_valid, sizeof p->best_valid);
    bb_u64(&h, np);
    bb_u64(&h, nb);
    bb_u64(&h, ne);
    if (h.oom) o.e = ENOMEM;
    put(&o, h.p, h.len);
    free(h.p);
    put_f32s(&o, rf_model_params(s->model), np);
    put_f32s(&o, rf_model_buffers(s->model), nb);
    put_f32s(&o, rf_model_emb(s->model), ne);
    put_f32s(&o, s->best_params, np);
    put_f32s(&o, s->best_buffers, nb);
    put_f32s(&o, s->best_emb, ne);
    unsigned char onb[8];
    wr64(onb, on);
    put(&o, onb, 8);
    put(&o, ost, on);
    free(ost);
    unsigned char sum[8];
    wr64(sum, XXH64_digest(o.h));
    XXH64_freeState(o.h);
    if (!o.e && fwrite(sum, 1, 8, o.fp) != 8) o.e = errno ? errno : EIO;
    if (o.e) {
        rf_afile_abort(af);
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot write the checkpoint: %s", strerror(o.e));
    }
    return rf_afile_commit(af, RF_AFILE_DURABLE, err);
}

#define FMTERR(...) rf_error_at(err, RF_EFORMAT, path, 0, 0, __VA_ARGS__)

/* The whole file, a regular file of bounded size. */
static rf_status slurp(const char *path, unsigned char **out, size_t *n, rf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open the checkpoint: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > CKPT_MAX) {
        close(fd);
        return FMTERR("not a checkpoint (not a regular file of a plausible size)");
    }
    size_t len = (size_t)sb.st_size, got = 0;
    unsigned char *b = malloc(len ? len : 1);
    if (!b) {
        close(fd);
        return rf_error_at(err, RF_ENOMEM, path, 0, 0, "out of memory reading %zu bytes", len);
    }
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            free(b);
            return rf_error_at(err, RF_EIO, path, 0, 0, "cannot read the checkpoint: %s", strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *n = len;
    return RF_OK;
}

/* n floats from the cursor into dst, all finite. */
static int get_f32s(rcur *c, float *dst, size_t n)
{
    const unsigned char *q;
    if (n > rc_left(c) / 4 || rc_take(c, 4 * n, &q)) return -1;
    rf_get_f32s(dst, q, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) return -2;
    return 0;
}

static rf_status parse(const char *path, const unsigned char *buf, size_t len, rf_checkpoint *c, rf_error *err)
{
    if (len < 8 || memcmp(buf, RF_CKPT_MAGIC, 8) != 0) return FMTERR("not a resflow checkpoint (bad magic)");
    if (len < 24) return FMTERR("truncated checkpoint (%zu bytes)", len);
    if (rd64(buf + len - 8) != XXH64(buf, len - 8, 0))
        return FMTERR("checksum mismatch: the checkpoint is truncated or corrupted");
    rcur r = {buf, len - 8, 8};
    uint32_t ver, mark, threads, ep, bad, byl, bep;
    uint64_t cl, batch, steps, seen, score, evn, np, nb, ne, on;
    const unsigned char *q;
    if (rc_u32(&r, &ver) || rc_u32(&r, &mark)) return FMTERR("truncated header");
    if (ver < 1 || ver > RF_CKPT_VERSION)
        return FMTERR("checkpoint format version %u, this build reads versions 1 to %d", ver, RF_CKPT_VERSION);
    if (mark != RF_ENDIAN_MARK) return FMTERR("written with another byte order (marker 0x%08x)", mark);
    if (rc_u64(&r, &cl) || cl > rc_left(&r) || rc_take(&r, cl, &q)) return FMTERR("bad configuration length");
    if (memchr(q, 0, cl)) return FMTERR("a NUL byte in the configuration");
    if (!(c->config = malloc(cl + 1))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(c->config, q, cl);
    c->config[cl] = '\0';
    if (rc_u32(&r, &threads) || (ver >= 2 && rc_u64(&r, &c->data_hash)) || rc_u32(&r, &ep) || rc_u64(&r, &batch) || rc_u64(&r, &steps) ||
        rc_u64(&r, &seen) || rc_u32(&r, &bad) || rc_u32(&r, &byl) || rc_u64(&r, &score) || rc_u32(&r, &bep) ||
        rc_u64(&r, &evn))
        return FMTERR("truncated position");
    if (threads < 1 || threads > 4096 || ep > INT32_MAX || batch > INT64_MAX / 2 || steps > INT64_MAX / 2 ||
        seen > INT64_MAX / 2 || bad > INT32_MAX || byl > 1 || (int32_t)bep < -1)
        return FMTERR("impossible position or thread count");
    if (evn != sizeof c->pos.best_valid || rc_take(&r, evn, &q))
        return FMTERR("the validation record has %llu bytes, this build's has %zu", (unsigned long long)evn,
                      sizeof c->pos.best_valid);
    c->threads = (int)threads;
    c->has_data_hash = ver >= 2;
    c->pos.epoch = (int)ep;
    c->pos.batch = (long)batch;
    c->pos.steps = (long)steps;
    c->pos.seen = (long)seen;
    c->pos.bad_evals = (int)bad;
    c->pos.by_loss = (int)byl;
    memcpy(&c->pos.best_score, &score, 8);
    c->pos.best_epoch = (int32_t)bep;
    memcpy(&c->pos.best_valid, q, evn);
    if (rc_u64(&r, &np) || rc_u64(&r, &nb) || rc_u64(&r, &ne)) return FMTERR("truncated sizes");
    uint64_t total = np + nb + ne;
    if (np > len || nb > len || ne > len || 2 * total > rc_left(&r) / 4)
        return FMTERR("the parameter sizes (%llu, %llu, %llu floats) exceed the file", (unsigned long long)np,
                      (unsigned long long)nb, (unsigned long long)ne);
    float *all = malloc((total ? 2 * total : 1) * sizeof(float));
    if (!all) return rf_errorf(err, RF_ENOMEM, "out of memory");
    c->params = all;
    c->buffers = all + np;
    c->emb = all + np + nb;
    c->best_params = all + total;
    c->best_buffers = c->best_params + np;
    c->best_emb = c->best_buffers + nb;
    c->n_params = np;
    c->n_buffers = nb;
    c->n_emb = ne;
    if (get_f32s(&r, all, 2 * total)) return FMTERR("a parameter is not a finite number (a diverged run?)");
    if (rc_u64(&r, &on) || on > rc_left(&r) || rc_take(&r, on, &q)) return FMTERR("bad optimizer state length");
    if (rc_left(&r)) return FMTERR("%zu unexpected bytes after the optimizer state", rc_left(&r));
    if (!(c->opt_state = malloc(on ? on : 1))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(c->opt_state, q, on);
    c->opt_state_n = on;
    return RF_OK;
}

rf_status rf_checkpoint_load(const char *path, rf_checkpoint *c, rf_error *err)
{
    memset(c, 0, sizeof *c);
    unsigned char *buf = NULL;
    size_t len = 0;
    rf_status st = slurp(path, &buf, &len, err);
    if (st) return st;
    st = parse(path, buf, len, c, err);
    free(buf);
    if (st) rf_checkpoint_free(c);
    return st;
}

rf_status rf_checkpoint_resume(const rf_checkpoint *c, rf_model *m, rf_train_resume *r, rf_error *err)
{
    const rf_model_info *mi = rf_model_info_of(m);
    size_t ne = mi->n_emb_rows * (size_t)mi->E;
    if (c->n_params != mi->n_params || c->n_buffers != mi->n_buffers || c->n_emb != ne)
        return rf_errorf(err, RF_EFORMAT,
                         "the checkpoint does not fit this model and data: %zu dense parameters, %zu statistics, "
                         "%zu embedding values, the model has %zu, %zu, %zu (different data or configuration?)",
                         c->n_params, c->n_buffers, c->n_emb, mi->n_params, mi->n_buffers, ne);
    memcpy(rf_model_params(m), c->params, c->n_params * sizeof(float));
    if (c->n_buffers) memcpy(rf_model_buffers(m), c->buffers, c->n_buffers * sizeof(float));
    if (ne) memcpy(rf_model_emb(m), c->emb, ne * sizeof(float));
    *r = (rf_train_resume){c->pos, c->best_params, c->best_buffers, c->best_emb, c->opt_state, c->opt_state_n};
    return RF_OK;
}

void rf_checkpoint_free(rf_checkpoint *c)
{
    if (!c) return;
    free(c->config);
    free(c->params); /* one allocation for all six arrays */
    free(c->opt_state);
    memset(c, 0, sizeof *c);
}

rf_status rf_checkpoint_every(const char *text, long *steps, double *seconds, rf_error *err)
{
    if (!text || !*text) {
        *steps = 0, *seconds = 0;
        return RF_OK;
    }
    char *end;
    errno = 0;
    double n = strtod(text, &end);
    int ok = !errno && end != text && !isspace((unsigned char)*text) && n > 0 && n <= 1e12 &&
             (*end ? !end[1] && strchr("smh", *end) : n == floor(n));
    if (!ok)
        return rf_errorf(err, RF_EUSAGE, "train.checkpoint_every: \"%s\": expected a number of steps (e.g. 500) or "
                         "a time (30s, 10m, 2h)", text);
    *steps = *end ? 0 : (long)n;
    *seconds = !*end ? 0 : *end == 's' ? n : *end == 'm' ? n * 60 : n * 3600;
    return RF_OK;
}

rf_status rf_checkpoint_claim(const char *path, rf_afile_lock **lock, rf_error *err)
{
    *lock = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        char m[8];
        int ok = fread(m, 1, 8, f) == 8 && memcmp(m, RF_CKPT_MAGIC, 8) == 0;
        fclose(f);
        if (!ok) return rf_errorf(err, RF_EUSAGE, "%s exists and is not a resflow checkpoint: it would be overwritten", path);
    } else if (errno != ENOENT) {
        return rf_errorf(err, RF_EUSAGE, "%s exists and is not a resflow checkpoint: it would be overwritten (%s)", path,
                         strerror(errno));
    }
    return rf_afile_lock_take(path, lock, err);
}
