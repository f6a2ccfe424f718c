/* blas_env.h - see blas_env.c */
#ifndef RESFLOW_BLAS_ENV_H
#define RESFLOW_BLAS_ENV_H
void rf_blas_env_setup(char **argv);
#endif
