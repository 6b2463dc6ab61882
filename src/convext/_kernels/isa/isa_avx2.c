/* The avx2 row of the instruction-set layer: kernels.inc over simd_avx2.h.
 * Compiled by setup.py with this ISA's flags only (gcc/clang -mavx2 -mfma, MSVC /arch:AVX2); the
 * kernels run only when cvx_isa.c has found the ISA on the CPU. */
#include "cvx_isa.h"
#include "simd_avx2.h"

#define CVX_ROW_TABLE cvx_table_avx2
#define CVX_ROW_ISA CVX_ISA_AVX2
#define CVX_ROW_NAME "avx2"
#define CVX_ROW_DESCRIPTION "AVX2+FMA"
#include "table_row.inc"
