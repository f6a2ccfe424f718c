/* config_bounds.c - the size, nesting and indentation limits of configuration text, checked
 * before it is parsed (config_bounds.h). The scan is linear and approximate in the safe
 * direction: brackets inside quoted scalars and comments are skipped; a bracket inside a plain
 * scalar counts, which only matters for texts near the limit. */
#include <string.h>

#include "run/config_bounds.h"

rf_status rf_cfg_check_bounds_(const char *text, size_t len, const char *name, rf_error *err)
{
    if (len > RF_CONFIG_MAX_BYTES)
        return rf_error_at(err, RF_EUSAGE, name, 0, 0, "configuration too large: %zu bytes (at most %u)", len,
                           RF_CONFIG_MAX_BYTES);
    long line = 1, col = 0;
    int depth = 0, indent = 0, at_start = 1;
    char quote = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        col++;
        if (ch == '\n') {
            line++, col = 0, indent = 0, at_start = 1;
            continue;
        }
        if (at_start) { /* indentation: spaces, and "- " of block sequences nested on one line */
            if (ch == ' ' || (ch == '-' && (i + 1 == len || text[i + 1] == ' ' || text[i + 1] == '\n'))) {
                if (++indent > RF_CONFIG_MAX_INDENT)
                    return rf_error_at(err, RF_EUSAGE, name, line, col,
                                       "configuration nested too deeply: more than %d columns of indentation",
                                       RF_CONFIG_MAX_INDENT);
                continue;
            }
            at_start = 0;
        }
        if (quote) {
            if (ch == '\\' && quote == '"' && i + 1 < len && text[i + 1] != '\n') i++, col++;
            else if (ch == quote) quote = 0;
            continue;
        }
        if (ch == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) { /* a comment */
            while (i + 1 < len && text[i + 1] != '\n') i++;
            continue;
        }
        if ((ch == '"' || ch == '\'') && (i == 0 || strchr(" \t[{,:-", text[i - 1]))) quote = ch;
        else if (ch == '[' || ch == '{') {
            if (++depth > RF_CONFIG_MAX_DEPTH)
                return rf_error_at(err, RF_EUSAGE, name, line, col,
                                   "configuration nested too deeply: more than %d nested [ ] or { }",
                                   RF_CONFIG_MAX_DEPTH);
        } else if ((ch == ']' || ch == '}') && depth > 0)
            depth--;
    }
    return RF_OK;
}
