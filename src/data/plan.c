/* plan.c - the loader's plan: every schema column resolved to a column of the file or of a
 * joined side table, the encoders to use, the label and filter expressions; schema checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/editdist.h"
#include "data/loader.h"
#include "data/numparse.h"

/* ---- plan: columns of the header, encoders -------------------------------------------------- */

/* Extended column named name (main file first, then the side tables), -1 if absent or twice in
 * the main file. */
static int find_col(const loader *L, char (*names)[RF_NAME_MAX], const char *name)
{
    for (int c = 0; c < L->ncols; c++)
        if (!strcmp(names[c], name)) {
            for (int c2 = c + 1; c2 < L->ncols; c2++)
                if (!strcmp(names[c2], name)) return -1; /* ambiguous: rf_missing_column_ says so */
            return c;
        }
    for (int j = 0; j < L->nside; j++) {
        const side *s = &L->sides[j];
        for (int c = 0; c < s->ncols; c++)
            if (c != s->key_col && !strcmp(s->names[c], name)) return s->base + c;
    }
    return -1;
}

rf_status rf_missing_column_(const loader *L, char (*names)[RF_NAME_MAX], const char *name,
                                const char *role)
{
    int first = -1;
    for (int c = 0; c < L->ncols; c++) /* a name the header has twice (issue #17) */
        if (!strcmp(names[c], name)) {
            if (first >= 0)
                return rf_error_at(L->err, RF_EDATA, L->path, L->sc->no_header ? 0 : 1, L->sc->no_header ? 0 : 1,
                                   "%s column '%s' is ambiguous: %s has it twice (columns %d and %d)", role, name,
                                   L->sc->no_header ? "data.columns" : "the header", first + 1, c + 1);
            first = c;
        }
    char list[320];
    size_t o = 0;
    list[0] = '\0';
    for (int c = 0; c < L->ncols; c++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", c ? ", " : "", names[c]);
        if (w < 0 || (size_t)w >= sizeof list - o) {
            memcpy(list + sizeof list - 5, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    char joined[64] = "";
    if (L->nside) snprintf(joined, sizeof joined, " or the %d joined file%s", L->nside, L->nside > 1 ? "s" : "");
    /* the closest column name (case-insensitive first), when close enough to be a typo */
    int best = INT_MAX, bc = -1;
    for (int c = 0; c < L->ncols; c++) {
        int d = strcasecmp(names[c], name) ? rf_edit_distance(names[c], name) : 0;
        if (d < best) best = d, bc = c;
    }
    char hint[RF_NAME_MAX + 32] = "";
    if (bc >= 0 && best < (int)strlen(name) && rf_edit_close(best, strlen(name))) snprintf(hint, sizeof hint, "; did you mean '%s'?", names[bc]);
    return rf_error_at(L->err, RF_EDATA, L->path, L->sc->no_header ? 0 : 1, L->sc->no_header ? 0 : 1,
                       "%s column '%s' not found in %s%s (columns: %s)%s", role, name,
                       L->sc->no_header ? "data.columns" : "header", joined, list, hint);
}

/* Resolve every schema column to an extended column, and the encoders to use. */
rf_status rf_make_plan_(loader *L, char (*names)[RF_NAME_MAX])
{
    const rf_schema *sc = L->sc;
    rf_encoders *e = L->enc;
    char why[256];
    for (int f = 0; f < sc->F; f++) {
        fplan *fp = &L->fp[f];
        const rf_cat_spec *cs = &sc->cat[f];
        if ((fp->col = find_col(L, names, cs->name)) < 0) return rf_missing_column_(L, names, cs->name, "categorical");
        fp->multi = cs->multi && !cs->bucket;
        fp->sep = cs->sep ? cs->sep : '|';
        if (L->fitting) {
            fp->kind = cs->bucket ? FK_BUCKET : cs->hash ? FK_HASH : FK_VOCAB;
            fp->size = cs->hash + 1;
            fp->seed = sc->hash_seed;
            if (fp->kind == FK_VOCAB) fp->vocab = e->vocab[f];
        } else if (e->field) {
            const rf_field_enc *fe = &e->field[f];
            fp->kind = fe->kind;
            fp->size = fe->size;
            fp->oov = fe->oov;
            fp->seed = fe->seed;
            fp->bounds = fe->bounds;
            fp->nb = fe->nbounds;
            fp->vocab = e->vocab[f];
            if (fp->kind == FK_BUCKET) fp->multi = 0;
        } else {
            fp->kind = e->vocab[f] ? FK_VOCAB : FK_IDS;
            fp->vocab = e->vocab[f];
            fp->size = e->id_size ? e->id_size[f] : 1;
        }
    }
    for (int d = 0; d < sc->D; d++) {
        dplan *dp = &L->dp[d];
        if ((dp->col = find_col(L, names, sc->dense[d])) < 0) return rf_missing_column_(L, names, sc->dense[d], "dense");
        if (!L->fitting && e->dense && d < e->D) {
            dp->enc = &e->dense[d];
            dp->fill = dp->enc->fill;
            dp->fill_value = dp->enc->fill_value;
        } else {
            dp->enc = NULL;
            dp->fill = sc->fill;
            dp->fill_value = sc->fill == RF_FILL_VALUE ? sc->fill_value : 0.0f;
            if (!L->fitting && sc->fill == RF_FILL_MEAN) dp->fill = RF_FILL_ERROR; /* nothing fitted */
        }
    }
    /* the row-at-a-time conversion of dense fields does not know NA strings: off when one of
     * them reads as a number and would be missing rather than that number */
    int na_used = 0;
    L->dense_enc = 0;
    for (int d = 0; d < sc->D; d++) {
        L->dense_enc |= L->dp[d].enc != NULL;
        na_used |= L->dp[d].fill != RF_FILL_ERROR;
    }
    L->dense_batch = sc->D > 0;
    for (int i = 0; i < sc->nna && na_used; i++) {
        double v;
        if (rf_parse_num_(sc->na[i], strlen(sc->na[i]), &v) == RF_NUM_OK) L->dense_batch = 0;
    }
    for (int k = 0; k < sc->K; k++) {
        lplan *lp = &L->lp[k];
        const char *spec = sc->label[k];
        lp->cb = -1;
        if ((lp->ca = find_col(L, names, spec)) >= 0) {
            memset(&lp->x, 0, sizeof lp->x);
            lp->x.kind = X_COL;
        } else {
            if (rf_parse_expr_(spec, &lp->x, why, sizeof why))
                return rf_error_at(L->err, RF_EUSAGE, L->path, 0, 0, "label %s", why);
            if ((lp->ca = find_col(L, names, lp->x.a)) < 0) return rf_missing_column_(L, names, lp->x.a, "label");
            if (lp->x.kind == X_PROD && (lp->cb = find_col(L, names, lp->x.b)) < 0)
                return rf_missing_column_(L, names, lp->x.b, "label");
        }
        for (int i = 0; i < sc->nnumeric; i++) {
            const char *nm = sc->numeric[i], *colon = strchr(nm, ':');
            size_t nl = colon ? (size_t)(colon - nm) : strlen(nm);
            if (nl != strlen(spec) || strncmp(nm, spec, nl)) continue;
            lp->numeric = 1;
            if (colon) {
                char *end;
                lp->lo = strtod(colon + 1, &end);
                if (*end != ':' || !(lp->hi = strtod(end + 1, &end), *end == '\0') || !(lp->hi > lp->lo))
                    return rf_errorf(L->err, RF_EUSAGE, "data.numeric_labels: \"%s\": expected name or name:lo:hi with lo < hi", nm);
                lp->scaled = 1;
            }
        }
    }
    L->nflt = sc->nfilter;
    for (int i = 0; i < sc->nfilter; i++) {
        fltplan *fl = &L->flt[i];
        if (rf_parse_expr_(sc->filter[i], &fl->x, why, sizeof why) || fl->x.kind == X_COL || fl->x.kind == X_PROD) {
            if (fl->x.kind == X_COL || fl->x.kind == X_PROD)
                snprintf(why, sizeof why, "\"%s\": expected column OP value (OP: >= > <= < == !=)", sc->filter[i]);
            return rf_errorf(L->err, RF_EUSAGE, "data.filter: %s", why);
        }
        if ((fl->col = find_col(L, names, fl->x.a)) < 0) return rf_missing_column_(L, names, fl->x.a, "filter");
    }
    L->weight_col = L->group_col = -1;
    if (sc->weight[0] && (L->weight_col = find_col(L, names, sc->weight)) < 0)
        return rf_missing_column_(L, names, sc->weight, "weight");
    if (sc->group[0] && (L->group_col = find_col(L, names, sc->group)) < 0)
        return rf_missing_column_(L, names, sc->group, "group");
    return RF_OK;
}

rf_status rf_check_schema_(const rf_schema *sc, rf_error *err)
{
    if (sc->F < 0 || sc->F > RF_MAX_FIELDS || sc->D < 0 || sc->D > RF_MAX_DENSE || sc->K < 0 ||
        sc->K > RF_MAX_LABELS || sc->ncols < 0 || sc->ncols > RF_MAX_COLS || sc->njoin < 0 ||
        sc->njoin > RF_MAX_JOINS || sc->nfilter < 0 || sc->nfilter > RF_MAX_FILTERS || sc->nna < 0 ||
        sc->nna > RF_MAX_NA || sc->nnumeric < 0 || sc->nnumeric > RF_MAX_LABELS)
        return rf_errorf(err, RF_EUSAGE, "schema: bad sizes F=%d D=%d K=%d", sc->F, sc->D, sc->K);
    char d = sc->delim ? sc->delim : ',';
    if (sc->delim_str[0]) d = sc->delim_str[0];
    if (d == '"' || d == '\n' || d == '\r')
        return rf_errorf(err, RF_EUSAGE, "schema: invalid delimiter");
    for (int k = 0; k < sc->K; k++)
        if (strlen(sc->label[k]) >= RF_SPEC_MAX - 1)
            return rf_errorf(err, RF_EUSAGE, "schema: label spec '%s' too long", sc->label[k]);
    for (int f = 0; f < sc->F; f++)
        if (sc->cat[f].multi && (sc->cat[f].sep == '\n' || sc->cat[f].sep == '\r'))
            return rf_errorf(err, RF_EUSAGE, "schema: invalid separator for field '%s'", sc->cat[f].name);
    if (sc->no_header && sc->ncols < 1)
        return rf_errorf(err, RF_EUSAGE, "schema: a file without a header needs its column names (data.columns)");
    return RF_OK;
}

const char *rf_schema_delim(const rf_schema *s, char buf[RF_DELIM_MAX])
{
    if (s->delim_str[0]) {
        snprintf(buf, RF_DELIM_MAX, "%s", s->delim_str);
    } else {
        buf[0] = s->delim ? s->delim : ',';
        buf[1] = '\0';
    }
    return buf;
}
