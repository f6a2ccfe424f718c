/* simd.h - RF_HOT_CLONES: per-CPU clones of a hot elementwise kernel in a portable build.
 *
 * In a PORTABLE=1 build (-DRF_PORTABLE, baseline x86-64 code) a function marked RF_HOT_CLONES
 * is compiled three times - x86-64-v4 (AVX-512 F/BW/DQ/VL), x86-64-v3 (AVX2, FMA) and baseline -
 * and the dynamic loader binds the best
 * one for the CPU once, through an ifunc resolver GCC generates (target_clones): no state of
 * ours. The default build (-march=native) compiles for the build machine and the mark is empty.
 * Only for loops whose result does not depend on the vector width (elementwise, no reductions
 * across lanes): C11 mode keeps -ffp-contract=off, so no clone fuses a multiply-add either. */
#ifndef RESFLOW_CORE_SIMD_H
#define RESFLOW_CORE_SIMD_H

#if defined(RF_PORTABLE) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RF_HOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RF_HOT_CLONES
#endif

#endif
