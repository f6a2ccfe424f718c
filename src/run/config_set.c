/* config_set.c - a dotted key routed to its table and field (tasks.<index|name>.<field>,
 * data.join.<index>.<field>, sections), and `--set key=value` (atomic: on error *cfg is
 * unchanged).
 */
#include <limits.h>
#include <stdlib.h>

#include "run/config_int.h"

/* "data.join.<index>.<field>" -> index (any digits), field. */
int rf_cfg_split_join_key_(const char *key, long *idx, const char **field)
{
    if (strncmp(key, "data.join.", 10) != 0) return 0;
    const char *s = key + 10, *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1]) return 0;
    for (const char *q = s; q < dot; q++)
        if (*q < '0' || *q > '9') return 0;
    *idx = dot - s > 6 ? LONG_MAX : strtol(s, NULL, 10);
    *field = dot + 1;
    return 1;
}

/* Is key a section that holds keys ("model", "tasks", "tasks.<sel>")? */
int rf_cfg_is_section_(const char *key)
{
    size_t n = strlen(key);
    if (!strcmp(key, "tasks")) return 1;
    if (!strncmp(key, "tasks.", 6)) return key[6] && !strchr(key + 6, '.');
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strncmp(KEYS[i].name, key, n) && KEYS[i].name[n] == '.') return 1;
    return 0;
}

/* Assign v to dotted key (tasks.<index|name>.<field> included; index K appends a task). */
rf_status rf_cfg_assign_(const ctx *c, const char *key, const val *v, loc at)
{
    rf_config *cfg = c->cfg;
    char sel[KEY_MAX];
    const char *field;
    long ji;
    if (rf_cfg_split_join_key_(key, &ji, &field)) {
        rf_schema *sc = &cfg->data.schema;
        const key_def *jk = find_in(JOIN_KEYS, N_JOIN_KEYS, field);
        if (!jk) return rf_cfg_unknown_key_(c, key, at);
        if (ji > sc->njoin || ji >= RF_MAX_JOINS)
            return rf_cfg_fail_(c, at, "%s: join index out of range (%d side tables; index %d appends, at most %d)", key,
                        sc->njoin, sc->njoin, RF_MAX_JOINS);
        if (ji == sc->njoin) rf_cfg_join_init_(&sc->join[sc->njoin++]);
        return rf_cfg_set_value_(c, &sc->join[ji], jk, key, v);
    }
    if (split_task_key(key, sel, sizeof sel, &field)) {
        const key_def *tk = find_in(TASK_KEYS, N_TASK_KEYS, field);
        int k;
        if (!tk) return rf_cfg_unknown_key_(c, key, at);
        if (all_digits(sel)) {
            long x = strlen(sel) > 6 ? LONG_MAX : strtol(sel, NULL, 10);
            if (x > cfg->K || x >= RF_MAX_TASKS)
                return rf_cfg_fail_(c, at, "%s: task index %s out of range (%d tasks; index %d appends, at most %d tasks)",
                            key, sel, cfg->K, cfg->K, RF_MAX_TASKS);
            k = (int)x;
            if (k == cfg->K) rf_cfg_task_init_(&cfg->tasks[cfg->K++]);
        } else if ((k = rf_config_task_index(cfg, sel)) < 0) {
            char names[RF_MAX_TASKS * (RF_NAME_MAX + 2)] = "";
            for (int i = 0; i < clamp_k(cfg->K); i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", cfg->tasks[i].name);
            return rf_cfg_fail_(c, at, "%s: no task named \"%s\" (tasks: %s)", key, sel, names);
        }
        return rf_cfg_set_value_(c, &cfg->tasks[k], tk, key, v);
    }
    const key_def *kd = find_in(KEYS, N_KEYS, key);
    if (kd && c->reg_at && !c->reg_at->line && !strncmp(key, "regression.", 11) && strcmp(key, "regression.target"))
        *c->reg_at = at;
    if (!kd) {
        if (strcmp(key, "tasks") && rf_cfg_is_section_(key)) {
            const char *eg = "name";
            for (size_t i = 0; i < N_KEYS && strncmp(key, "tasks.", 6); i++)
                if (section_len(KEYS[i].name) == strlen(key) && !strncmp(KEYS[i].name, key, strlen(key))) {
                    eg = KEYS[i].name + strlen(key) + 1;
                    break;
                }
            return rf_cfg_fail_(c, at, "\"%s\" is a section, not a key (e.g. \"%s.%s\")", key, key, eg);
        }
        return rf_cfg_unknown_key_(c, key, at);
    }
    return rf_cfg_set_value_(c, cfg, kd, key, v);
}

rf_status rf_config_set(rf_config *cfg, const char *assignment, rf_error *err)
{
    const char *a = assignment ? assignment : "";
    const char *eq = strchr(a, '=');
    char key[KEY_MAX];
    if (!eq) return rf_error_at(err, RF_EUSAGE, "--set", 0, 0, "\"%s\": expected key=value", a);
    const char *k0 = a, *k1 = eq;
    while (k0 < k1 && isspace((unsigned char)*k0)) k0++;
    while (k1 > k0 && isspace((unsigned char)k1[-1])) k1--;
    if (k1 == k0 || (size_t)(k1 - k0) >= sizeof key)
        return rf_error_at(err, RF_EUSAGE, "--set", 0, 0, "\"%s\": bad key", a);
    memcpy(key, k0, (size_t)(k1 - k0));
    key[k1 - k0] = 0;

    const char *v0 = eq + 1;
    while (isspace((unsigned char)*v0)) v0++;
    size_t vlen = strlen(v0);
    while (vlen && isspace((unsigned char)v0[vlen - 1])) vlen--;
    char *value = malloc(vlen + 1);
    rf_config *work = malloc(sizeof *work);
    rf_status st;
    if (!value || !work) {
        free(value);
        free(work);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    memcpy(value, v0, vlen);
    value[vlen] = 0;
    memcpy(work, cfg, sizeof *work);
    ctx c = {work, "--set", err, NULL, 0, NULL};
    if (value[0] && strchr("[{\"'", value[0])) { /* YAML flow sequence/mapping or quoted scalar */
        st = rf_cfg_with_yaml_(&c, value, vlen, rf_cfg_apply_set_value_, key);
    } else { /* anything else is taken literally ("128,64", "genres:|:mean", "|") */
        val v = {0, 1, 1, {value}, {0, 0}};
        st = rf_cfg_assign_(&c, key, &v, v.at);
    }
    if (st) {
        if (err) {
            char msg[sizeof err->msg + 512];
            snprintf(msg, sizeof msg, "\"%.500s\": %s", a, err->msg);
            rf_error_at(err, st, "--set", 0, 0, "%s", msg);
        }
    } else {
        rf_cfg_finalize_(work);
        memcpy(cfg, work, sizeof *cfg);
    }
    free(value);
    free(work);
    return st;
}
