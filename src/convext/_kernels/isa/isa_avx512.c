/* The avx512 row of the instruction-set layer: kernels.inc over simd_avx512.h.
 * Compiled by setup.py with this ISA's flags only (gcc/clang -mavx512f -mavx2 -mfma, MSVC /arch:AVX512); the
 * kernels run only when cvx_isa.c has found the ISA on the CPU. */
#include "cvx_isa.h"
#include "simd_avx512.h"

#define CVX_ROW_TABLE cvx_table_avx512
#define CVX_ROW_ISA CVX_ISA_AVX512
#define CVX_ROW_NAME "avx512"
#define CVX_ROW_DESCRIPTION "AVX-512F"
#include "table_row.inc"
