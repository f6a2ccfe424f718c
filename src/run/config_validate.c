/* config_validate.c - rf_config_validate: ranges of every key, columns, side tables, the task
 * tree, the regression target, the monitor (and rf_config_task_index).
 */
#include <stdlib.h>

#include "resflow/checkpoint.h"
#include "run/config_int.h"

int rf_config_task_index(const rf_config *cfg, const char *name)
{
    if (!cfg || !name) return -1;
    for (int k = 0; k < clamp_k(cfg->K); k++)
        if (!strcmp(cfg->tasks[k].name, name)) return k;
    return -1;
}

rf_status rf_config_validate(const rf_config *cfg, rf_error *err)
{
#define BAD(...) return rf_errorf(err, RF_EUSAGE, __VA_ARGS__)
    char why[128], tmp[64];
    const rf_schema *sc = &cfg->data.schema;
    /* per-key ranges (also catch structs filled by code rather than by the loader) */
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *kd = &KEYS[i];
        if (rf_cfg_is_numeric_(kd) && !rf_cfg_in_range_(kd, rf_cfg_get_num_(cfg, kd), why, sizeof why))
            BAD("%s: %.10g is out of range (%s)", kd->name, rf_cfg_get_num_(cfg, kd), why);
        if (kd->type == T_ENUM && !*enum_name(kd->choices, (int)rf_cfg_get_num_(cfg, kd), tmp, sizeof tmp))
            BAD("%s: invalid value %d (allowed: %s)", kd->name, (int)rf_cfg_get_num_(cfg, kd), kd->choices);
    }
    const key_def *hk = find_in(KEYS, N_KEYS, "model.hidden");
    if (cfg->model.n_hidden < 1 || cfg->model.n_hidden > RF_MAX_LAYERS)
        BAD("model.hidden: %d layers (must be 1..%d)", cfg->model.n_hidden, RF_MAX_LAYERS);
    for (int l = 0; l < cfg->model.n_hidden; l++)
        if (!rf_cfg_in_range_(hk, cfg->model.hidden[l], why, sizeof why))
            BAD("model.hidden: width %d of layer %d is out of range (%s)", cfg->model.hidden[l], l, why);
    if (cfg->model.res_layers != RES_ALL && cfg->model.res_layers >> cfg->model.n_hidden)
        BAD("model.res_layers: lists a layer >= %d but model.hidden has %d layers", cfg->model.n_hidden,
            cfg->model.n_hidden);
    float vf = cfg->data.valid[0] ? 0 : cfg->data.valid_frac, tf = cfg->data.test[0] ? 0 : cfg->data.test_frac;
    if (cfg->data.split == RF_SPLIT_RANDOM && cfg->data.schema.cache[0])
        BAD("data.split: random is not available with data.cache (a cache holds the position split); "
            "drop data.cache or use data.split: position");
    if (!(vf + tf < 1)) BAD("data.valid_frac + data.test_frac must be < 1 (got %g + %g)", vf, tf);
    if (sc->F < 0 || sc->F > 64 || sc->D < 0 || sc->D > 128) BAD("data: bad column counts F=%d D=%d", sc->F, sc->D);
    for (int i = 0; i < sc->F + sc->D; i++) {
        const char *ni = i < sc->F ? sc->cat[i].name : sc->dense[i - sc->F];
        if (!ni[0]) BAD("data: empty column name");
        for (int j = 0; j < i; j++) /* a bucketized column may also be a dense feature */
            if (!strcmp(ni, j < sc->F ? sc->cat[j].name : sc->dense[j - sc->F]) &&
                !(i >= sc->F && j < sc->F && sc->cat[j].bucket))
                BAD("data: column \"%s\" is listed twice in data.categorical/data.dense", ni);
    }
    if (!sc->delim || sc->delim == '\n' || sc->delim == '\r' || sc->delim == '"') BAD("data.delim: invalid delimiter");
    if (sc->F > 0 || sc->D > 0) { /* categorical options and numeric columns */
        for (int f = 0; f < sc->F; f++)
            if (sc->cat[f].bucket && (sc->cat[f].multi || sc->cat[f].hash))
                BAD("data.categorical: \"%s\": a bucketized column cannot be multi-valued or hashed", sc->cat[f].name);
    }
    if (sc->no_header && sc->ncols < 1) BAD("data.header is false: list the column names in data.columns");
    for (int j = 0; j < sc->njoin && j < RF_MAX_JOINS; j++) {
        const rf_join_spec *js = &sc->join[j];
        if (!js->path[0]) BAD("data.join.%d.file is empty", j);
        if (!js->on[0]) BAD("data.join.%d.on is empty (the main file's key column)", j);
        if (js->no_header && js->ncols < 1) BAD("data.join.%d.header is false: list its column names in data.join.%d.columns", j, j);
    }
    if (sc->njoin < 0 || sc->njoin > RF_MAX_JOINS) BAD("data.join: %d side tables (at most %d)", sc->njoin, RF_MAX_JOINS);
    for (int i = 0; i < sc->nfilter && i < RF_MAX_FILTERS; i++)
        if (!strpbrk(sc->filter[i], "<>=!"))
            BAD("data.filter: \"%s\": expected column OP value (OP: >= > <= < == !=)", sc->filter[i]);
    for (int i = 0; i < sc->nnumeric && i < RF_MAX_LABELS; i++) {
        const char *colon = strchr(sc->numeric[i], ':');
        if (colon) {
            char *end;
            double lo = strtod(colon + 1, &end), hi = *end == ':' ? strtod(end + 1, &end) : 0;
            if (*end || !(hi > lo) || !isfinite(lo) || !isfinite(hi))
                BAD("data.numeric_labels: \"%s\": expected name or name:lo:hi with lo < hi", sc->numeric[i]);
        }
    }

    /* tasks */
    if (cfg->K < 1 || cfg->K > RF_MAX_TASKS) BAD("tasks: %d tasks (must be 1..%d)", cfg->K, RF_MAX_TASKS);
    for (int k = 0; k < cfg->K; k++) {
        const rf_task_cfg *t = &cfg->tasks[k];
        if (!t->name[0]) BAD("tasks.%d.name is empty", k);
        if (all_digits(t->name) || strchr(t->name, '.'))
            BAD("tasks.%d.name \"%s\": a task name must not be a number or contain '.'", k, t->name);
        if (!t->label[0]) BAD("tasks.%d.label is empty", k);
        if (rf_config_task_index(cfg, t->name) != k) BAD("tasks: duplicate task name \"%s\"", t->name);
        for (size_t i = 0; i < N_TASK_KEYS; i++)
            if (rf_cfg_is_numeric_(&TASK_KEYS[i]) && !rf_cfg_in_range_(&TASK_KEYS[i], rf_cfg_get_num_(t, &TASK_KEYS[i]), why, sizeof why))
                BAD("tasks.%s.%s: %g is out of range (%s)", t->name, TASK_KEYS[i].name, rf_cfg_get_num_(t, &TASK_KEYS[i]), why);
        if (t->parent[0] && !strcmp(t->parent, t->name)) BAD("tasks.%s.parent: a task cannot be its own parent", t->name);
        if (t->parent[0] && rf_config_task_index(cfg, t->parent) < 0)
            BAD("tasks.%s.parent: no task named \"%s\"", t->name, t->parent);
    }
    for (int k = 0; k < cfg->K; k++) { /* follow parents; a repeat is a cycle */
        int path[RF_MAX_TASKS + 1], n = 0;
        for (int j = k; j >= 0; j = cfg->tasks[j].parent[0] ? rf_config_task_index(cfg, cfg->tasks[j].parent) : -1) {
            for (int m = 0; m < n; m++) {
                if (path[m] != j) continue;
                char cyc[RF_MAX_TASKS * (RF_NAME_MAX + 4) + RF_NAME_MAX] = "";
                for (int q = m; q < n; q++)
                    snprintf(cyc + strlen(cyc), sizeof cyc - strlen(cyc), "%s -> ", cfg->tasks[path[q]].name);
                snprintf(cyc + strlen(cyc), sizeof cyc - strlen(cyc), "%s", cfg->tasks[j].name);
                BAD("tasks: parent cycle %s (a -> b: b is the parent of a)", cyc);
            }
            path[n++] = j;
        }
    }
    for (int k = 0; k < cfg->K; k++) { /* the squared-error head: a linear output of its own tower */
        const rf_task_cfg *t = &cfg->tasks[k];
        if (t->loss != RF_LOSS_MSE) continue;
        if (cfg->model.type != RF_MODEL_RESFLOW && cfg->model.type != RF_MODEL_NSE)
            BAD("tasks.%s.loss: mse is implemented for model.type resflow and nse", t->name);
        if (t->parent[0]) BAD("tasks.%s.loss: an mse task cannot have a parent", t->name);
        for (int j = 0; j < cfg->K; j++)
            if (!strcmp(cfg->tasks[j].parent, t->name)) BAD("tasks.%s.loss: an mse task cannot be a parent (of %s)", t->name, cfg->tasks[j].name);
    }
    int per_level = cfg->model.shared_experts + cfg->K * cfg->model.specific_experts; /* zoo.c's limit */
    if ((cfg->model.type == RF_MODEL_PLE || cfg->model.type == RF_MODEL_STEM) && per_level > 64)
        BAD("model.shared_experts + tasks x model.specific_experts = %d + %d x %d = %d experts per level (at most 64)",
            cfg->model.shared_experts, cfg->K, cfg->model.specific_experts, per_level);
    if (cfg->model.type == RF_MODEL_TWIN) { /* the sides of the twin towers */
        const rf_model_cfg *mc = &cfg->model;
        if (mc->n_item_fields < 1)
            BAD("model.item_fields: a twin model needs the item tower's categorical fields (e.g. [item_id, item_cat])");
        if (mc->dense_mode != RF_DENSE_CONCAT) BAD("model.dense_mode: a twin model needs concat (a projection would mix the sides)");
        for (int i = 0; i < mc->n_item_fields && sc->F > 0; i++) {
            int f = 0;
            while (f < sc->F && strcmp(sc->cat[f].name, mc->item_fields[i])) f++;
            if (f == sc->F) BAD("model.item_fields: \"%s\" is not in data.categorical", mc->item_fields[i]);
        }
        for (int i = 0; i < mc->n_item_dense && sc->F + sc->D > 0; i++) {
            int j = 0;
            while (j < sc->D && strcmp(sc->dense[j], mc->item_dense[i])) j++;
            if (j == sc->D) BAD("model.item_dense: \"%s\" is not in data.dense", mc->item_dense[i]);
        }
    }
    const rf_regression_cfg *rg = &cfg->regression;
    if (!rg->target[0] && (rg->thresholds.n || rg->quantiles || rg->head != RF_REG_PROGRESSIVE))
        BAD("regression: regression.target is not set (the numeric column to predict)");
    if (rg->target[0]) {
        if (strlen(rg->target) + 20 > RF_NAME_MAX)
            BAD("regression.target: \"%s\" is too long (at most %d bytes)", rg->target, RF_NAME_MAX - 21);
        if (strpbrk(rg->target, "<>=!*:"))
            BAD("regression.target: \"%s\": a column name, not an expression", rg->target);
        if (rg->thresholds.n == 1 || rg->thresholds.n > RF_MAX_THRESHOLDS)
            BAD("regression.thresholds: %d values (want 2..%d)", rg->thresholds.n, RF_MAX_THRESHOLDS);
        for (int i = 1; i < rg->thresholds.n; i++)
            if (!(rg->thresholds.v[i] > rg->thresholds.v[i - 1])) BAD("regression.thresholds: values must be strictly ascending");
        if (!rg->thresholds.n && rg->quantiles < 1)
            BAD("regression.target is set: list regression.thresholds (v_0..v_K) or set regression.quantiles (K)");
    }
    long ck_steps;
    double ck_sec;
    rf_status ck = rf_checkpoint_every(cfg->train.checkpoint_every, &ck_steps, &ck_sec, err);
    if (ck) return ck;
    const char *mon = cfg->train.monitor;
    if (!strcmp(mon, "mse") && !rg->target[0]) BAD("train.monitor: mse needs a regression target (regression.target)");
    if (strcmp(mon, "mean_auc") && strcmp(mon, "loss") && strcmp(mon, "mse")) {
        if (strncmp(mon, "auc:", 4)) BAD("train.monitor: \"%s\": expected mean_auc, loss or auc:<task> (or mse with a regression target)", mon);
        if (rf_config_task_index(cfg, mon + 4) < 0) BAD("train.monitor: \"%s\": no task named \"%s\"", mon, mon + 4);
    }
    return RF_OK;
#undef BAD
}
