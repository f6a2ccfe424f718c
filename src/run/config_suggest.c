/* config_suggest.c - the error for an unknown key, with "did you mean" when a key (or section,
 * task field, side-table field) is close by edit distance or shares a prefix or leaf.
 */
#include <limits.h>

#include "core/editdist.h"
#include "run/config_int.h"

#define edit_distance rf_edit_distance
#define close_enough rf_edit_close

rf_status rf_cfg_unknown_key_(const ctx *c, const char *key, loc at)
{
    char sug[KEY_MAX + 64] = "";
    int best = INT_MAX;
    const char *field;
    char sel[KEY_MAX];
    long ji;
    if (rf_cfg_split_join_key_(key, &ji, &field)) { /* data.join.N.<field> */
        for (size_t i = 0; i < N_JOIN_KEYS; i++) {
            int d = edit_distance(field, JOIN_KEYS[i].name);
            if (d < best) {
                best = d;
                snprintf(sug, sizeof sug, "data.join.%ld.%s", ji, JOIN_KEYS[i].name);
            }
        }
        if (!close_enough(best, strlen(field))) sug[0] = 0;
    } else if (split_task_key(key, sel, sizeof sel, &field)) { /* tasks.N.<field>: compare the field */
        for (size_t i = 0; i < N_TASK_KEYS; i++) {
            int d = edit_distance(field, TASK_KEYS[i].name);
            if (d < best) {
                best = d;
                snprintf(sug, sizeof sug, "tasks.%s.%s", sel, TASK_KEYS[i].name);
            }
        }
        if (!close_enough(best, strlen(field))) sug[0] = 0;
    } else {
        for (size_t i = 0; i < N_KEYS; i++) {
            char sec[KEY_MAX];
            size_t sl = section_len(KEYS[i].name);
            snprintf(sec, sizeof sec, "%.*s", (int)sl, KEYS[i].name);
            int d = edit_distance(key, KEYS[i].name), ds = edit_distance(key, sec);
            if (d < best) { best = d; snprintf(sug, sizeof sug, "%s", KEYS[i].name); }
            if (ds < best && !strchr(key, '.')) { best = ds; snprintf(sug, sizeof sug, "%s", sec); }
        }
        if (!close_enough(best, strlen(key))) sug[0] = 0;
        const char *leaf = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
        for (size_t i = 0; i < N_KEYS && best > 1; i++) /* better: a key that is a prefix of */
            if (!strncmp(KEYS[i].name, key, strlen(key)) || /* it or has it as a prefix, or */
                !strncmp(KEYS[i].name, key, strlen(KEYS[i].name)) || /* its leaf elsewhere */
                (strchr(KEYS[i].name, '.') && !strcmp(leaf, strchr(KEYS[i].name, '.') + 1))) {
                snprintf(sug, sizeof sug, "%s", KEYS[i].name);
                break;
            }
    }
    if (sug[0]) return rf_cfg_fail_(c, at, "unknown key \"%s\" (did you mean \"%s\"?)", key, sug);
    return rf_cfg_fail_(c, at, "unknown key \"%s\"", key);
}
