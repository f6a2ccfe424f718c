/* blas_env.c - choose OpenBLAS's kernel set deliberately.
 *
 * OpenBLAS reads OPENBLAS_CORETYPE in a library constructor, before main() runs. Some
 * environments force OPENBLAS_CORETYPE=Haswell (AVX2 kernels) on CPUs with AVX-512, which
 * roughly halves SGEMM throughput. Policy, from RESFLOW_BLAS_CORETYPE:
 *   unset/"auto"  if OPENBLAS_CORETYPE names a pre-AVX-512 core and the CPU has AVX-512F,
 *                 drop the override and re-execute, so OpenBLAS detects the CPU itself;
 *   "keep"        leave the environment alone;
 *   any other     set OPENBLAS_CORETYPE to that value and re-execute.
 * A marker variable prevents loops. This is tool code: it may exec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "blas_env.h"

static const char *weak[] = {"Haswell", "Zen", "Sandybridge", "Nehalem", "Prescott", "Core2", "Penryn",
                             "Dunnington", "Atom", "Barcelona", "Bulldozer", "Piledriver",
                             "Steamroller", "Excavator", NULL};

void rf_blas_env_setup(char **argv)
{
    if (getenv("RESFLOW_BLAS_REEXEC")) return;
    const char *pol = getenv("RESFLOW_BLAS_CORETYPE");
    const char *cur = getenv("OPENBLAS_CORETYPE");
    if (pol && strcmp(pol, "keep") == 0) return;
    if (pol && *pol && strcmp(pol, "auto") != 0) {
        if (cur && strcmp(cur, pol) == 0) return;
        setenv("OPENBLAS_CORETYPE", pol, 1);
    } else {
        if (!cur) return;
        int is_weak = 0;
        for (int i = 0; weak[i]; i++) is_weak |= strcasecmp(cur, weak[i]) == 0;
        __builtin_cpu_init();
        if (!is_weak || !__builtin_cpu_supports("avx512f")) return;
        setenv("RESFLOW_BLAS_WAS", cur, 1);
        unsetenv("OPENBLAS_CORETYPE");
    }
    setenv("RESFLOW_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the current kernels */
}
