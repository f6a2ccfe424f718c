/* resflow.h - umbrella header: version, status codes, error reporting.
 *
 * Every library function that can fail returns an rf_status and fills an rf_error
 * (when the pointer is not NULL). Data errors carry file:line:column. The library
 * never exits the process; only the tools in tools/ do.
 */
#ifndef RESFLOW_RESFLOW_H
#define RESFLOW_RESFLOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RF_VERSION_MAJOR 0
#define RF_VERSION_MINOR 1
#define RF_VERSION_PATCH 0
#define RF_VERSION "0.1.0"

#if defined(__GNUC__)
#define RF_API __attribute__((visibility("default")))
#define RF_WUR __attribute__((warn_unused_result))
#define RF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RF_API
#define RF_WUR
#define RF_PRINTF(a, b)
#endif

/* Status codes double as the CLI's exit codes (see docs/cli.md). Append only. */
typedef enum {
    RF_OK = 0,
    RF_EUSAGE = 1,   /* bad option or configuration */
    RF_EDATA = 2,    /* malformed input data */
    RF_EIO = 3,      /* cannot open/read/write a file */
    RF_ENUMERIC = 4, /* non-finite loss or value */
    RF_ENOMEM = 5,   /* allocation failed */
    RF_EFORMAT = 6,  /* bad/corrupt/incompatible binary file (model, cache) */
    RF_EINTERNAL = 7 /* broken invariant (a bug) */
} rf_status;

typedef struct {
    rf_status code;
    char file[512]; /* source file of a data error, "" if none */
    long line;      /* 1-based, 0 if unknown */
    long col;       /* 1-based, 0 if unknown */
    char msg[1024]; /* human-readable reason (without the file:line:col prefix) */
} rf_error;

RF_API const char *rf_version(void);
RF_API const char *rf_status_str(rf_status s);

/* A progress line (no trailing newline) for the caller's log; ud is the caller's pointer. Lines
 * that start with "warning: " are warnings (a setting or data that likely spoils the result):
 * show them even when progress is silenced. */
typedef void (*rf_log_fn)(void *ud, const char *line);

/* Set err (may be NULL) and return code. */
RF_API rf_status rf_errorf(rf_error *err, rf_status code, const char *fmt, ...) RF_PRINTF(3, 4);
/* Same, with a data location. line/col 0 mean unknown. */
RF_API rf_status rf_error_at(rf_error *err, rf_status code, const char *file, long line, long col,
                             const char *fmt, ...) RF_PRINTF(6, 7);
/* Reset to RF_OK. */
RF_API void rf_error_clear(rf_error *err);
/* "file:line:col: msg" (or just msg) into buf; returns buf. */
RF_API const char *rf_error_format(const rf_error *err, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
