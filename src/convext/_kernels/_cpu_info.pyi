# Type stubs for convext._kernels._cpu_info, compiled from _cpu_info.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.

def compile_info() -> dict[str, str | bool | int]: ...
