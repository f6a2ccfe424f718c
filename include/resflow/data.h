/* data.h - the data wing's public headers in one: datasets (dataset.h), vocabularies and
 * encoders (encoders.h), the text schema and loader (schema.h), the simulator (synth.h).
 * The full data-pipeline contract is in docs/data.md.
 */
#ifndef RESFLOW_DATA_H
#define RESFLOW_DATA_H

#include "dataset.h"
#include "encoders.h"
#include "schema.h"
#include "synth.h"

#endif
