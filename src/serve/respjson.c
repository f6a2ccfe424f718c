/* respjson.c - the POST /v1/score answer as text (respjson.h). A 1,000-candidate answer through
 * a jansson tree was ~5,000 allocations; here it is one growing buffer. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/sbuf.h"
#include "serve/respjson.h"

int rf_json_real9_(char *out, double v)
{
    if (!isfinite(v)) {
        memcpy(out, "null", 5);
        return 4;
    }
    int n = snprintf(out, 32, "%.9g", v);
    if (n < 0 || n >= 29) return 0;
    if (!strchr(out, '.') && !strchr(out, 'e')) {
        memcpy(out + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(out, 'e');
    if (e) { /* as jansson: "1e+20" -> "1e20", "1e-05" -> "1e-5" */
        char *start = e + 1, *end = e + 2;
        if (*start == '-') start++;
        while (*end == '0') end++;
        if (end != start) {
            memmove(start, end, (size_t)(out + n + 1 - end));
            n -= (int)(end - start);
        }
    }
    return n;
}

static void real(sbuf *b, double v)
{
    char t[32];
    int n = rf_json_real9_(t, v);
    sb_add(b, t, (size_t)n);
}

char *rf_score_answer_(const char *head, const char *const *keys, const rf_score_result *r, int top)
{
    sbuf b = {0};
    size_t hl = strlen(head);
    if (hl < 2 || head[hl - 1] != '}') return NULL;
    sb_reserve(&b, hl + (size_t)top * (40 + (size_t)r->K * 32));
    sb_add(&b, head, hl - 1);
    sb_puts(&b, ",\"results\":[");
    for (int q = 0; q < top; q++) {
        int i = r->order[q];
        char t[48];
        int n = snprintf(t, sizeof t, "%s{\"index\":%d,\"score\":", q ? "," : "", i);
        sb_add(&b, t, (size_t)n);
        real(&b, r->score[i]);
        for (int k = 0; k < r->K; k++) {
            sb_char(&b, ',');
            sb_puts(&b, keys[k]);
            sb_char(&b, ':');
            real(&b, r->probs[(size_t)i * r->K + k]);
        }
        if (r->expected) {
            sb_puts(&b, ",\"expected\":");
            real(&b, r->expected[i]);
        }
        sb_char(&b, '}');
    }
    sb_puts(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
