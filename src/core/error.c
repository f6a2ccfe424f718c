/* error.c - rf_error helpers and status strings. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "resflow/resflow.h"

const char *rf_version(void) { return RF_VERSION; }

const char *rf_status_str(rf_status s)
{
    switch (s) {
    case RF_OK: return "ok";
    case RF_EUSAGE: return "usage/config error";
    case RF_EDATA: return "data error";
    case RF_EIO: return "I/O error";
    case RF_ENUMERIC: return "numeric error";
    case RF_ENOMEM: return "out of memory";
    case RF_EFORMAT: return "file format error";
    case RF_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

void rf_error_clear(rf_error *err)
{
    if (!err) return;
    memset(err, 0, sizeof *err);
}

static void set_(rf_error *err, rf_status code, const char *file, long line, long col,
                 const char *fmt, va_list ap)
{
    err->code = code;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    err->col = col;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

rf_status rf_errorf(rf_error *err, rf_status code, const char *fmt, ...)
{
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    set_(err, code, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

rf_status rf_error_at(rf_error *err, rf_status code, const char *file, long line, long col,
                      const char *fmt, ...)
{
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    set_(err, code, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}

const char *rf_error_format(const rf_error *err, char *buf, size_t n)
{
    if (!err || n == 0) return "";
    if (err->file[0] && err->line > 0 && err->col > 0)
        snprintf(buf, n, "%s:%ld:%ld: %s", err->file, err->line, err->col, err->msg);
    else if (err->file[0] && err->line > 0)
        snprintf(buf, n, "%s:%ld: %s", err->file, err->line, err->msg);
    else if (err->file[0])
        snprintf(buf, n, "%s: %s", err->file, err->msg);
    else
        snprintf(buf, n, "%s", err->msg);
    return buf;
}
