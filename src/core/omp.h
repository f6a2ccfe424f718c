/* omp.h - the thread count of one parallel region: the caller's request (> 0), else OpenMP's
 * default for the calling thread. Internal. */
#ifndef RESFLOW_CORE_OMP_H
#define RESFLOW_CORE_OMP_H

#include <omp.h>

static inline int rf_omp_threads(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

#endif
