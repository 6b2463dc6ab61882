/* The neon row of the instruction-set layer: kernels.inc over simd_neon.h.
 * Compiled by setup.py on AArch64 only, with no flag (Advanced SIMD with FMA is part of the base
 * ISA); cvx_isa.c reports it as always supported there. simd_neon.h supplies the lane-indexed
 * 8-row GEMM and 8-filter direct tiles (CVX_LANE_TILES); everything else is kernels.inc's.
 * tests/kernels/harness checks this table under qemu-aarch64 (.github/scripts/aarch64_check.sh). */
#include "cvx_isa.h"
#include "simd_neon.h"

#define CVX_ROW_TABLE cvx_table_neon
#define CVX_ROW_ISA CVX_ISA_NEON
#define CVX_ROW_NAME "neon"
#define CVX_ROW_DESCRIPTION "NEON (AArch64 Advanced SIMD)"
#include "table_row.inc"
