"""What this machine's CPU is and can do, read from ``/proc/cpuinfo``.

Training paths depend on it (``benchmarks/README.md``): the backward pass of the
shifted convolutions is timed per CPU (:mod:`keras_pixel.layers.conv_backward`,
which falls back to a rule by AVX-512), and ``mixed_bfloat16`` pays only where
the CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere TensorFlow
emulates it, several times slower than float32.
"""

import functools


@functools.cache
def _first_processor():
    """``{key: value}`` of the first processor in ``/proc/cpuinfo``; empty where
    that cannot be read (not Linux)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_flags():
    """The ``flags`` of the first processor in ``/proc/cpuinfo`` (``avx2``,
    ``avx512f``, ``amx_bf16``, ...) as a frozenset; empty where that cannot be
    read (not Linux)."""
    return frozenset(_first_processor().get("flags", "").split())


def cpu_model():
    """The first processor's ``model name`` (``AMD EPYC ...``), or ``""``."""
    return _first_processor().get("model name", "")


def has_native_bfloat16():
    """Whether the CPU computes bfloat16 products natively (``avx512_bf16`` or
    ``amx_bf16``)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
