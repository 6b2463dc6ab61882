# Shared types for the kernels: the fused floating type and the index type.
from cython cimport floating

ctypedef Py_ssize_t idx_t
