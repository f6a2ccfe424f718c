/* logf.h - formatted progress lines through the caller's rf_log_fn (NULL = silent). Internal. */
#ifndef RESFLOW_LOGF_H
#define RESFLOW_LOGF_H

#include <stdarg.h>
#include <stdio.h>

#include "resflow/resflow.h" /* rf_log_fn */

static inline void logf_(rf_log_fn log, void *ud, const char *fmt, ...) RF_PRINTF(3, 4);
static inline void logf_(rf_log_fn log, void *ud, const char *fmt, ...)
{
    if (!log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log(ud, buf);
}

#endif
