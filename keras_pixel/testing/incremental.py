"""A check of the incremental protocol: a layer's cached steps equal its call."""

import numpy as np
from keras import ops

from keras_pixel.layers.incremental import Position


def assert_steps_match_call(
    layer, inputs, condition=None, step_inputs=None, compare=None, rtol=1e-4, atol=1e-5
):
    """Checks that ``layer.init_cache`` and ``layer.step`` at every pixel, in
    raster order, give what ``layer(inputs)`` gives there.

    Args:
        layer: a layer with the incremental protocol
            (:mod:`keras_pixel.layers.incremental`).
        inputs: what ``layer`` is called on (a map ``[B, H, W, C]`` or a tuple).
        condition: passed to the call, ``init_cache`` and ``step`` when not None.
        step_inputs: ``(i, j) ->`` the step's inputs at pixel ``(i, j)``
            (default: ``inputs[:, i, j]``).
        compare: ``(full, step_outputs, i, j) ->`` pairs ``(expected, actual)``
            to compare (default: ``full[:, i, j]`` and the step's outputs).
        rtol: relative tolerance.
        atol: absolute tolerance.

    Raises:
        AssertionError: naming the first pixel where they differ.
    """
    kwargs = {} if condition is None else {"condition": condition}
    full = layer(inputs, **kwargs)
    cache = layer.init_cache(inputs, **kwargs)
    height, width = np.shape(inputs[0] if isinstance(inputs, tuple) else inputs)[1:3]
    step_inputs = step_inputs or (lambda i, j: inputs[:, i, j])
    compare = compare or (lambda full, out, i, j: [(full[:, i, j], out)])
    for i in range(height):
        for j in range(width):
            outputs, cache = layer.step(cache, step_inputs(i, j), Position(i, j, 0), **kwargs)
            for expected, actual in compare(full, outputs, i, j):
                np.testing.assert_allclose(
                    np.asarray(ops.convert_to_numpy(ops.cast(actual, "float32"))),
                    np.asarray(ops.convert_to_numpy(ops.cast(expected, "float32"))),
                    rtol=rtol,
                    atol=atol,
                    err_msg=f"{layer.name}: step at pixel ({i}, {j}) differs from the call",
                )
