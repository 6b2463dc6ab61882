/* The generic row of the instruction-set layer: kernels.inc over simd_generic.h.
 * Compiled by setup.py with this ISA's flags only (no ISA flag: the architecture's baseline (SSE2 on x86-64)); the
 * kernels run only when cvx_isa.c has found the ISA on the CPU. */
#include "cvx_isa.h"
#include "simd_generic.h"

#define CVX_ROW_TABLE cvx_table_generic
#define CVX_ROW_ISA CVX_ISA_GENERIC
#define CVX_ROW_NAME "generic"
#define CVX_ROW_DESCRIPTION "generic"
#include "table_row.inc"
