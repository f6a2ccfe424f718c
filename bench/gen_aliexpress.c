/* gen_aliexpress.c - write a synthetic file in the AliExpress layout of the public sample
 * (search_id, categorical_1..16, numerical_1..63, click, conversion) for the prepare benchmark.
 * usage: gen_aliexpress ROWS OUT.csv [SEED]. Values imitate the sample: small integer ids,
 * numerical values in [0, 1] with 6 decimals, ~40% exact zeros, some with 17 significant
 * digits (as Python's float repr writes them), ~20 rows per search_id, CTR ~4%, CVR ~2%. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t s;
static uint64_t next(void)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ROWS OUT.csv [SEED]\n", argv[0]);
        return 1;
    }
    long rows = atol(argv[1]);
    s = argc > 3 ? strtoull(argv[3], NULL, 10) * 2654435761u + 1 : 88172645463325252ull;
    FILE *f = fopen(argv[2], "wb");
    if (!f) return 1;
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fprintf(f, "search_id");
    for (int i = 1; i <= 16; i++) fprintf(f, ",categorical_%d", i);
    for (int i = 1; i <= 63; i++) fprintf(f, ",numerical_%d", i);
    fprintf(f, ",click,conversion\n");
    static const int card[16] = {3, 2, 2, 2, 10, 6, 60, 3, 300, 8, 40, 4000, 2, 2, 5, 40000};
    long sid = 0;
    for (long r = 0; r < rows; r++) {
        if (r % 20 == 0) sid = (long)(next() % 5000000);
        fprintf(f, "%ld", sid);
        for (int i = 0; i < 16; i++) fprintf(f, ",%u", (unsigned)(next() % (uint64_t)card[i]));
        for (int i = 0; i < 63; i++) {
            uint64_t x = next();
            if (x % 10 < 4) fputs(",0.0", f);
            else if (x % 10 == 9) fprintf(f, ",0.%06u00000000004", (unsigned)((x >> 8) % 1000000));
            else fprintf(f, ",0.%06u", (unsigned)((x >> 8) % 1000000));
        }
        int click = next() % 100 < 4, conv = click && next() % 100 < 2;
        fprintf(f, ",%d,%d\n", click, conv);
    }
    return fclose(f) != 0;
}
