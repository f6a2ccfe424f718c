/* vocab.c - string -> dense id vocabularies (rf_vocab_*), id 0 reserved for OOV/missing.
 *
 * Layout:
 *   - entries: one record per distinct key in first-seen (or add) order; entry i has id i+1
 *     once the vocabulary is frozen. Each entry keeps its 64-bit XXH3 hash (so growing the
 *     table never re-hashes key bytes), its length and its count.
 *   - keys live in a chunked arena (blocks are never moved, so key pointers stay stable until
 *     the next freeze), each key NUL-terminated so rf_vocab_key() returns a C string.
 *   - an open-addressing table with linear probing over 16-byte slots {entry index + 1, key
 *     length, word}: word holds the key bytes themselves for keys of at most 8 bytes (then a
 *     slot match is an exact key match and the entry/key memory is never touched - typical
 *     ids), else the 64-bit hash (a match is then confirmed with memcmp). Max load 0.7; probes
 *     stay within one or two cache lines.
 *   - a direct table for integer ids: small[x] = entry index + 1 of the key that is the
 *     canonical decimal spelling of x ("0", "17"; not "017", "+1"), 0 if absent, for every x
 *     below nsmall. It grows (rebuilt from the entries) while it stays within 8 slots per key
 *     (+4096) and below 2^22, so sparse or huge integers simply use the hash table; every key
 *     is in the hash table too. rf_vocab_small_ (the loader) and rf_vocab_lookup use it
 *     first: no hashing, no probing for the integer ids most logs carry.
 *
 * Life cycle: create -> rf_vocab_count()* -> rf_vocab_freeze(min_count) -> rf_vocab_lookup()*.
 * Alternatively (loading a model): create -> rf_vocab_add()* (the vocabulary is frozen from the
 * first add on). rf_vocab_count() after freeze is a misuse (RF_EINTERNAL).
 *
 * No global state; a vocabulary is not thread-safe for writers, lookups on a frozen
 * vocabulary may run concurrently.
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "resflow/data.h"

#include "core/bigmem.h"

/* Internal API shared with csv.c (which repeats these prototypes; keep them in sync):
 * rf_vocab_hash_: hash of key, and prefetch the table slot where probing for it starts
 *   (lets a caller overlap the cache misses of several lookups).
 * rf_vocab_fit_id_: count one occurrence of key (h = its rf_vocab_hash_) and return its
 *   provisional id (1-based, first-seen order); 0 on OOM or if the vocabulary is frozen.
 * rf_vocab_lookup_h_: rf_vocab_lookup with a precomputed hash.
 * rf_vocab_find_h_: the id of key (h = its hash), provisional while fitting, or 0; reads only
 *   (concurrent calls are safe while nobody adds keys).
 * rf_vocab_freeze_remap_: like rf_vocab_freeze, and if remap is not NULL return a malloc'ed
 *   array m (size old_size) with m[provisional id] = final id (0 = dropped), m[0] = 0. */
uint64_t rf_vocab_hash_(const rf_vocab *v, const char *key, size_t len);
uint32_t rf_vocab_fit_id_(rf_vocab *v, const char *key, size_t len, uint64_t h);
uint32_t rf_vocab_lookup_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h);
rf_status rf_vocab_freeze_remap_(rf_vocab *v, uint32_t min_count, uint32_t **remap);
/* rf_vocab_freeze_counts_: like rf_vocab_freeze_remap_, but entry e (provisional id e + 1) is
 *   kept iff counts[e + 1] >= min_count (counts has size + 1 entries; the stored counts are
 *   ignored). min_count 0 keeps every key.
 * rf_vocab_entries_: number of keys (frozen or not).
 * rf_vocab_key_len_: key bytes and length of id (1..entries), frozen or not; NULL if none. */
rf_status rf_vocab_freeze_counts_(rf_vocab *v, const uint32_t *counts, uint32_t min_count,
                                  uint32_t **remap);
uint32_t rf_vocab_entries_(const rf_vocab *v);
const char *rf_vocab_key_len_(const rf_vocab *v, uint32_t id, size_t *len);
/* rf_vocab_small_: when the direct integer table covers key: 1, and *id = the key's id (1-based
 *   entry index; provisional while fitting), or for an absent key 0 - unless add != 0 and the
 *   vocabulary is not frozen: then the key is added (count 1) and *id is its new id (0 on OOM).
 *   Counts of present keys are not touched (the loader counts the training rows itself).
 *   Returns 0 when the table does not cover key (not an integer id, or outside it): then only
 *   the hash table can tell. */
int rf_vocab_small_(rf_vocab *v, const char *key, size_t len, int add, uint32_t *id);

typedef struct {
    uint32_t idx;  /* entry index + 1; 0 = empty slot */
    uint32_t len;  /* key length */
    uint64_t word; /* key bytes (zero-padded) if len <= 8, else the hash */
} slot;

#define INLINE_MAX 8

typedef struct {
    const char *key;
    uint32_t len;
    uint32_t count;
    uint64_t hash;
} entry;

#define ARENA_MIN_BLOCK ((size_t)4096)
#define ARENA_MAX_BLOCK ((size_t)1 << 20)
#define MAX_ENTRIES (UINT32_MAX - 2u)

struct rf_vocab {
    slot *tab;
    size_t mask; /* table size - 1 (power of two) */
    entry *ent;
    uint32_t n, cap;
    /* arena */
    char **blocks;
    size_t nblocks, cap_blocks;
    char *cur;
    size_t left;
    size_t next_block;
    int frozen;
    uint32_t *small; /* direct table of integer keys (see above), NULL if none */
    uint32_t nsmall;
};

#define SMALL_MIN 4096u
#define SMALL_MAX ((uint32_t)1 << 22)

/* x if key is the canonical decimal spelling of x < SMALL_MAX. */
static inline int small_val(const char *key, size_t len, uint32_t *x)
{
    if (len == 0 || len > 7 || (key[0] == '0' && len > 1)) return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)((unsigned char)key[i] - '0');
        if (d > 9) return 0;
        v = v * 10 + d;
    }
    if (v >= SMALL_MAX) return 0;
    *x = v;
    return 1;
}

/* (Re)build the direct table with size slots from the entries; -1 on OOM (the table is then
 * dropped: everything still works through the hash table). */
static int small_build(struct rf_vocab *v, uint32_t size)
{
    uint32_t *t = size ? rf_big_calloc_(size, sizeof *t) : NULL;
    free(v->small);
    v->small = t;
    v->nsmall = t ? size : 0;
    if (!t) return size ? -1 : 0;
    for (uint32_t e = 0; e < v->n; e++) {
        uint32_t x;
        if (small_val(v->ent[e].key, v->ent[e].len, &x) && x < size) t[x] = e + 1;
    }
    return 0;
}

/* After entry e (key = integer x) was appended: record it, growing the table if that keeps it
 * dense enough. */
static void small_note(struct rf_vocab *v, uint32_t x, uint32_t e)
{
    if (x < v->nsmall) {
        v->small[x] = e + 1;
        return;
    }
    uint32_t want = SMALL_MIN;
    while (want <= x) want *= 2;
    if (want > SMALL_MAX || (size_t)want > SMALL_MIN + 8 * (size_t)v->n) return;
    (void)small_build(v, want); /* includes entry e */
}

static uint64_t hash_key(const char *key, size_t len) { return XXH3_64bits(key, len); }

static inline uint64_t slot_word(const char *key, size_t len, uint64_t h)
{
    if (len > INLINE_MAX) return h;
    uint64_t w = 0;
    memcpy(&w, key, len);
    return w;
}

rf_vocab *rf_vocab_create(void)
{
    rf_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->mask = 63;
    v->tab = calloc(v->mask + 1, sizeof *v->tab);
    if (!v->tab) {
        free(v);
        return NULL;
    }
    v->next_block = ARENA_MIN_BLOCK;
    return v;
}

static void arena_free(rf_vocab *v)
{
    for (size_t i = 0; i < v->nblocks; i++) free(v->blocks[i]);
    free(v->blocks);
    v->blocks = NULL;
    v->nblocks = v->cap_blocks = 0;
    v->cur = NULL;
    v->left = 0;
}

void rf_vocab_free(rf_vocab *v)
{
    if (!v) return;
    arena_free(v);
    free(v->tab);
    free(v->ent);
    free(v->small);
    free(v);
}

/* Copy key (plus NUL) into the arena; NULL on OOM. */
static const char *arena_put(rf_vocab *v, const char *key, size_t len)
{
    if (v->left < len + 1) {
        size_t bs = v->next_block;
        if (bs < len + 1) bs = len + 1;
        if (v->nblocks == v->cap_blocks) {
            size_t nc = v->cap_blocks ? 2 * v->cap_blocks : 16;
            char **nb = realloc(v->blocks, nc * sizeof *nb);
            if (!nb) return NULL;
            v->blocks = nb;
            v->cap_blocks = nc;
        }
        char *b = malloc(bs);
        if (!b) return NULL;
        v->blocks[v->nblocks++] = b;
        v->cur = b;
        v->left = bs;
        if (v->next_block < ARENA_MAX_BLOCK) v->next_block *= 2;
    }
    char *dst = v->cur;
    if (len) memcpy(dst, key, len);
    dst[len] = '\0';
    v->cur += len + 1;
    v->left -= len + 1;
    return dst;
}

/* Insert entry e (0-based index) into a table known to have room and not to contain it. */
static void tab_insert(slot *tab, size_t mask, const entry *en, uint32_t e)
{
    size_t i = (size_t)en->hash & mask;
    while (tab[i].idx) i = (i + 1) & mask;
    tab[i].idx = e + 1;
    tab[i].len = en->len;
    tab[i].word = slot_word(en->key, en->len, en->hash);
}

static int tab_resize(rf_vocab *v, size_t size)
{
    slot *t = rf_big_calloc_(size, sizeof *t);
    if (!t) return -1;
    for (uint32_t e = 0; e < v->n; e++) tab_insert(t, size - 1, &v->ent[e], e);
    free(v->tab);
    v->tab = t;
    v->mask = size - 1;
    return 0;
}

/* Entry index (0-based) of key, or -1. */
static long find(const rf_vocab *v, const char *key, size_t len, uint64_t h)
{
    size_t i = (size_t)h & v->mask;
    uint64_t w = slot_word(key, len, h);
    for (;;) {
        const slot *s = &v->tab[i];
        if (!s->idx) return -1;
        if (s->word == w && s->len == len) {
            if (len <= INLINE_MAX) return (long)(s->idx - 1);
            const entry *e = &v->ent[s->idx - 1];
            if (memcmp(e->key, key, len) == 0) return (long)(s->idx - 1);
        }
        i = (i + 1) & v->mask;
    }
}

/* Append a new key (not present) and return its entry index, -1 on OOM/overflow. */
static long append(rf_vocab *v, const char *key, size_t len, uint64_t h, uint32_t count)
{
    if (v->n >= MAX_ENTRIES || len > UINT32_MAX) return -1;
    /* keep load <= 0.7 */
    if ((size_t)(v->n + 1) * 10 > (v->mask + 1) * 7) {
        if (tab_resize(v, (v->mask + 1) * 2)) return -1;
    }
    if (v->n == v->cap) {
        uint32_t nc = v->cap ? (v->cap > MAX_ENTRIES / 2 ? MAX_ENTRIES : 2 * v->cap) : 64;
        entry *ne = rf_big_realloc_(v->ent, (size_t)nc * sizeof *ne);
        if (!ne) return -1;
        v->ent = ne;
        v->cap = nc;
    }
    const char *k = arena_put(v, key, len);
    if (!k) return -1;
    entry *e = &v->ent[v->n];
    e->key = k;
    e->len = (uint32_t)len;
    e->count = count;
    e->hash = h;
    tab_insert(v->tab, v->mask, e, v->n);
    long idx = (long)v->n++;
    uint32_t x;
    if (small_val(key, len, &x)) small_note(v, x, (uint32_t)idx);
    return idx;
}

uint64_t rf_vocab_hash_(const rf_vocab *v, const char *key, size_t len)
{
    uint64_t h = hash_key(key, len);
#if defined(__GNUC__)
    __builtin_prefetch(&v->tab[(size_t)h & v->mask]);
#endif
    return h;
}

uint32_t rf_vocab_fit_id_(rf_vocab *v, const char *key, size_t len, uint64_t h)
{
    if (v->frozen) return 0;
    long e = find(v, key, len, h);
    if (e >= 0) {
        if (v->ent[e].count != UINT32_MAX) v->ent[e].count++;
        return (uint32_t)e + 1;
    }
    e = append(v, key, len, h, 1);
    return e < 0 ? 0 : (uint32_t)e + 1;
}

int rf_vocab_small_(rf_vocab *v, const char *key, size_t len, int add, uint32_t *id)
{
    uint32_t x;
    if (!v->nsmall || !small_val(key, len, &x) || x >= v->nsmall) return 0;
    uint32_t e = v->small[x];
    if (!e && add && !v->frozen) {
        long ne = append(v, key, len, hash_key(key, len), 1); /* sets small[x] */
        e = ne < 0 ? 0 : (uint32_t)ne + 1;
    }
    *id = e;
    return 1;
}

rf_status rf_vocab_count(rf_vocab *v, const char *key, size_t len)
{
    if (!v || v->frozen) return RF_EINTERNAL;
    return rf_vocab_fit_id_(v, key, len, hash_key(key, len)) ? RF_OK : RF_ENOMEM;
}

static rf_status freeze_impl(rf_vocab *v, const uint32_t *counts, uint32_t min_count,
                             uint32_t **remap)
{
    uint32_t *m = NULL;
    if (remap) {
        m = malloc(((size_t)v->n + 1) * sizeof *m);
        if (!m) return RF_ENOMEM;
        m[0] = 0;
        *remap = m;
    }
    /* compact entries in place, keeping first-seen order */
    uint32_t kept = 0;
    size_t bytes = 0;
    for (uint32_t e = 0; e < v->n; e++) {
        if ((counts ? counts[e + 1] : v->ent[e].count) >= min_count) {
            v->ent[kept] = v->ent[e];
            bytes += (size_t)v->ent[e].len + 1;
            kept++;
            if (m) m[e + 1] = kept;
        } else if (m) {
            m[e + 1] = 0;
        }
    }
    uint32_t dropped = v->n - kept;
    v->n = kept;
    v->frozen = 1;
    if (!dropped) return RF_OK;
    if (v->nsmall) (void)small_build(v, v->nsmall); /* entry indices changed */

    /* compact the key arena into one block (best effort: keep the old arena on OOM) */
    char *blk = malloc(bytes ? bytes : 1);
    char **blist = malloc(16 * sizeof *blist);
    if (blk && blist) {
        char *p = blk;
        for (uint32_t e = 0; e < kept; e++) {
            memcpy(p, v->ent[e].key, (size_t)v->ent[e].len + 1);
            v->ent[e].key = p;
            p += v->ent[e].len + 1;
        }
        arena_free(v);
        blist[0] = blk;
        v->blocks = blist;
        v->nblocks = 1;
        v->cap_blocks = 16;
        v->next_block = ARENA_MIN_BLOCK;
    } else {
        free(blk);
        free(blist);
    }
    /* rebuild the table for the kept entries (smaller if possible) */
    size_t size = 64;
    while ((size_t)kept * 10 > size * 7) size *= 2;
    if (tab_resize(v, size)) {
        memset(v->tab, 0, (v->mask + 1) * sizeof *v->tab);
        for (uint32_t e = 0; e < v->n; e++) tab_insert(v->tab, v->mask, &v->ent[e], e);
    }
    return RF_OK;
}

rf_status rf_vocab_freeze_remap_(rf_vocab *v, uint32_t min_count, uint32_t **remap)
{
    return freeze_impl(v, NULL, min_count, remap);
}

rf_status rf_vocab_freeze_counts_(rf_vocab *v, const uint32_t *counts, uint32_t min_count,
                                  uint32_t **remap)
{
    return freeze_impl(v, counts, min_count, remap);
}

uint32_t rf_vocab_entries_(const rf_vocab *v) { return v ? v->n : 0; }

const char *rf_vocab_key_len_(const rf_vocab *v, uint32_t id, size_t *len)
{
    if (!v || id == 0 || id > v->n) return NULL;
    *len = v->ent[id - 1].len;
    return v->ent[id - 1].key;
}

void rf_vocab_freeze(rf_vocab *v, uint32_t min_count)
{
    if (!v) return;
    (void)rf_vocab_freeze_remap_(v, min_count, NULL);
}

uint32_t rf_vocab_find_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h)
{
    if (!v || !v->n) return 0;
    long e = find(v, key, len, h);
    return e < 0 ? 0 : (uint32_t)e + 1;
}

uint32_t rf_vocab_lookup_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h)
{
    if (!v || !v->frozen || !v->n) return 0;
    long e = find(v, key, len, h);
    return e < 0 ? 0 : (uint32_t)e + 1;
}

uint32_t rf_vocab_lookup(const rf_vocab *v, const char *key, size_t len)
{
    uint32_t id;
    if (v && v->frozen && rf_vocab_small_((rf_vocab *)v, key, len, 0, &id)) return id; /* add = 0: read only */
    return rf_vocab_lookup_h_(v, key, len, hash_key(key, len));
}

uint32_t rf_vocab_size(const rf_vocab *v) { return v ? v->n + 1 : 1; }

const char *rf_vocab_key(const rf_vocab *v, uint32_t id)
{
    if (!v || id == 0 || id > v->n) return NULL;
    return v->ent[id - 1].key;
}

rf_status rf_vocab_add(rf_vocab *v, const char *key, size_t len)
{
    if (!v) return RF_EINTERNAL;
    if (!v->frozen && v->n) return RF_EINTERNAL; /* mixing count() and add() */
    v->frozen = 1;
    uint64_t h = hash_key(key, len);
    if (find(v, key, len, h) >= 0) return RF_EFORMAT; /* duplicate key */
    return append(v, key, len, h, 0) < 0 ? RF_ENOMEM : RF_OK;
}
