"""What this machine's CPU can do, read from ``/proc/cpuinfo``.

The training paths are chosen by rules measured per kind of CPU
(``benchmarks/README.md``): the matrix-product backward pass of
:mod:`keras_pixel.layers.conv_gemm` is used only without AVX-512, and
``mixed_bfloat16`` pays only where the CPU computes in bfloat16 natively
(AVX512-BF16 or AMX); elsewhere TensorFlow emulates it, several times slower than
float32.
"""

import functools


@functools.cache
def cpu_flags():
    """The ``flags`` of the first processor in ``/proc/cpuinfo`` (``avx2``,
    ``avx512f``, ``amx_bf16``, ...) as a frozenset; empty where that cannot be
    read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_native_bfloat16():
    """Whether the CPU computes bfloat16 products natively (``avx512_bf16`` or
    ``amx_bf16``)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
