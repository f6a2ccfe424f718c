/* respjson.h - the POST /v1/score answer written straight as text (no jansson tree per number),
 * byte for byte what json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(9)) gave. Internal. */
#ifndef RESFLOW_SERVE_RESPJSON_H
#define RESFLOW_SERVE_RESPJSON_H

#include <stddef.h>

#include "resflow/serve.h"

/* A double as jansson writes a real with precision 9 ("%.9g", then ".0" when it has neither '.'
 * nor 'e', an exponent without '+' and leading zeros); a non-finite one as null (jansson has no
 * such real). out: 32 bytes. Returns the length. */
int rf_json_real9_(char *out, double v);

/* The answer: head (a JSON object's compact text: "model", "tasks", "score"), then
 * "results": the first top of r's order, each {"index", "score", one key per task (keys[k]:
 * the task's name as JSON text, quoted), "expected" for a regression model}; and a newline.
 * NULL when out of memory. */
char *rf_score_answer_(const char *head, const char *const *keys, const rf_score_result *r, int top);

#endif
