/* fuzz_config.c - the YAML configuration reader: any text through rf_config_load_string (the
 * bounds check, libyaml, the key tables and value parsers), then the config check and the dump
 * of whatever loads. */
#include "fuzz_util.h"
#include "resflow/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return 0;
    rf_config_default(cfg);
    rf_error err;
    rf_error_clear(&err);
    if (rf_config_load_string(cfg, (const char *)data, size, "fuzz.yaml", &err) == RF_OK &&
        rf_config_validate(cfg, &err) == RF_OK) {
        char *d = rf_config_dump(cfg);
        free(d);
    }
    free(cfg);
    return 0;
}
