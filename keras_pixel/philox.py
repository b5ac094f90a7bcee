"""TensorFlow's stateless uniform noise on the CPU, in NumPy: the same bits.

A sampler's randomness is the uniform noise of :func:`keras_pixel.sampling.draw_noise`:
``tf.random.stateless_uniform`` seeded with ``stateless_fold_in(seed, t)`` for each
subpixel ``t``, run by TensorFlow's CPU kernels (Philox-4x32-10, the
``auto_select`` algorithm on a CPU). XLA implements the same ops with another
stream, so a sampler compiled ahead of time (:mod:`keras_pixel.sampler_aot`)
takes the noise as an input, and this module computes it without importing
TensorFlow: the same float32 values, bit for bit
(``tests/test_sampler_aot.py`` compares them with TensorFlow's).

The algorithm is Salmon et al. 2011, *Parallel random numbers: as easy as
1, 2, 3*, with TensorFlow's choices: the seed is scrambled into a key and a
counter by one Philox call on a fixed key, each call of the generator gives
four 32-bit words, and a word ``x`` becomes the float in ``[0, 1)`` whose
mantissa is its low 23 bits.
"""

import numpy as np

_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_W = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
_SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)
_ROUNDS = 10
_LOW = np.uint64(0xFFFFFFFF)


def _philox(counter, key):
    """Philox-4x32-10 of ``counter`` (uint32 ``[4, N]``) under ``key`` (uint32
    ``[2, N]``) -> uint32 ``[4, N]``."""
    c = [np.asarray(word, np.uint32) for word in counter]
    k0, k1 = (np.asarray(word, np.uint32) for word in key)
    with np.errstate(over="ignore"):
        for round_ in range(_ROUNDS):
            p0 = _M[0] * c[0].astype(np.uint64)
            p1 = _M[1] * c[2].astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & _LOW).astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & _LOW).astype(np.uint32)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
            if round_ < _ROUNDS - 1:
                k0, k1 = k0 + _W[0], k1 + _W[1]
    return np.stack(c)


def _key_counter(seed):
    """TensorFlow's ``StatelessRandomGetKeyCounter`` on a CPU: int32 seeds
    ``[2, N]`` -> key uint32 ``[2, N]`` and counter uint32 ``[4, N]``."""
    seed = np.asarray(seed, np.int64).astype(np.uint64)
    words = [(s >> np.uint64(shift)) & _LOW for s in seed for shift in (0, 32)]
    n = seed.shape[1]
    fixed = [np.full(n, word, np.uint32) for word in _SCRAMBLE_KEY]
    mix = _philox([w.astype(np.uint32) for w in words], fixed)
    zero = np.zeros(n, np.uint32)
    return mix[:2], np.stack([zero, zero, mix[2], mix[3]])


def _add_to_counter(counter, blocks):
    """``counter`` (uint32 ``[4, N]``, a 128-bit little-endian integer per
    column) plus ``blocks`` (uint64 ``[M]``) -> uint32 ``[4, N, M]``."""
    low = counter[0].astype(np.uint64) | (counter[1].astype(np.uint64) << np.uint64(32))
    total = low[:, None] + blocks[None, :]
    carry = (total < low[:, None]).astype(np.uint64)
    high = counter[2].astype(np.uint64) | (counter[3].astype(np.uint64) << np.uint64(32))
    with np.errstate(over="ignore"):
        high = high[:, None] + carry
    return np.stack(
        [
            (total & _LOW).astype(np.uint32),
            (total >> np.uint64(32)).astype(np.uint32),
            (high & _LOW).astype(np.uint32),
            (high >> np.uint64(32)).astype(np.uint32),
        ]
    )


def _words(seed, count):
    """The first ``count`` 32-bit words of the stream of each seed: int32 seeds
    ``[2, N]`` -> uint32 ``[N, count]``."""
    key, counter = _key_counter(seed)
    blocks = -(-count // 4)
    counters = _add_to_counter(counter, np.arange(blocks, dtype=np.uint64))
    n = counters.shape[1]
    keys = np.repeat(key[:, :, None], blocks, axis=2)
    out = _philox(counters.reshape(4, -1), keys.reshape(2, -1)).reshape(4, n, blocks)
    return out.transpose(1, 2, 0).reshape(n, blocks * 4)[:, :count]


def fold_in(seed, data):
    """``tf.random.experimental.stateless_fold_in(seed, data)`` for int32
    ``data``: int32 seed ``[2]``, int ``[N]`` -> int32 seeds ``[2, N]``."""
    data = np.asarray(data, np.int32)
    seed = np.broadcast_to(np.asarray(seed, np.int64)[:, None], (2, data.size))
    first = _words(seed, 1)[:, 0].view(np.int32)
    return np.stack([first, data])


def uniform(seed, count):
    """``tf.random.stateless_uniform([count], seed)`` (float32 in ``[0, 1)``)
    for each column of int32 seeds ``[2, N]`` -> float32 ``[N, count]``."""
    words = _words(seed, count)
    mantissa = (words & np.uint32(0x7FFFFF)) | np.uint32(127 << 23)
    return mantissa.view(np.float32) - np.float32(1.0)


def seed_pair(seed):
    """:func:`keras_pixel.sampling.make_seed` without TensorFlow: an int >= 0
    -> int32 ``[2]``."""
    seed = int(seed)
    return np.array([seed % 2**31, (seed >> 31) % 2**31], np.int32)


def draw_noise(seed, steps, batch, per_subpixel):
    """:func:`keras_pixel.sampling.draw_noise`'s values without TensorFlow.

    Args:
        seed: int >= 0, the sampler's seed.
        steps: int ``[T]``, the raster indices of the subpixels to draw.
        batch: number of images.
        per_subpixel: uniform numbers per subpixel and image.

    Returns:
        float32 ``[T, batch, per_subpixel]``.
    """
    seeds = fold_in(seed_pair(seed), steps)
    return uniform(seeds, batch * per_subpixel).reshape(len(steps), batch, per_subpixel)
