"""The contract every layer of the package keeps, as one check (in the spirit of
keras-hub's ``run_layer_test``)."""

import contextlib

import keras
import numpy as np
from keras import tree

from keras_pixel.testing.causality import assert_layer_causal
from keras_pixel.testing.incremental import assert_steps_match_call

MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def _global_dtype_policy(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))


def _shape_list(shapes):
    """A shape or a nest of shapes -> a list of tuples of ints / None."""
    if isinstance(shapes, (tuple, list)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in shapes
    ):
        return [tuple(None if d is None else int(d) for d in shapes)]
    return [s for part in shapes for s in _shape_list(part)]


def _relative_error(actual, expected):
    expected = np.asarray(expected, np.float64)
    scale = max(float(np.linalg.norm(expected)), 1e-6)
    return float(np.linalg.norm(np.asarray(actual, np.float64) - expected)) / scale


def assert_layer_contract(
    layer,
    inputs,
    condition=None,
    call_kwargs=None,
    causal=None,
    steps=None,
    mixed_precision=MIXED_PRECISION_POLICIES,
    mixed_precision_rtol=0.05,
):
    """Checks the properties every layer of the package must have.

    * **shape**: ``compute_output_shape`` (given the shapes of the inputs and of
      tensor keyword arguments, as ``<name>_shape``) agrees with the call;
    * **serializable**: ``keras.layers.serialize`` / ``deserialize`` (so the
      class is registered) rebuilds the same config, and with the same weights
      the clone gives bit-for-bit the same outputs;
    * **causal** (``causal=(mask_type, color_channels)``): the exact Jacobian
      check of :func:`~keras_pixel.testing.assert_layer_causal`, for a layer
      that maps one ``[B, H, W, C]`` map to another;
    * **incremental** (``steps``): ``init_cache`` and ``step`` at every pixel
      give what the call gives (:func:`assert_steps_match_call`);
    * **mixed precision**: for each policy of ``mixed_precision``, the layer
      rebuilt under it with the same (float32) weights computes in the policy's
      compute dtype, stays finite, and is within ``mixed_precision_rtol`` of the
      float32 outputs (relative L2 error); its cached steps run in that dtype.

    Args:
        layer: the layer, unbuilt or built.
        inputs: what the layer is called on (an array or a tuple of arrays).
        condition: passed as ``condition=`` to the call and the steps.
        call_kwargs: other keyword arguments of the call (e.g. PixelCNN++'s
            ``a=``); array values also go to ``compute_output_shape``.
        causal: ``(mask_type, color_channels)`` or a dict of
            :func:`assert_layer_causal`'s keyword arguments (``mask_type``,
            ``color_channels``, and ``output_fn`` / ``as_inputs`` for layers
            with several streams: ``as_inputs`` maps the checked map to the
            layer's inputs).
        steps: None or False to skip; True, or a dict of
            :func:`assert_steps_match_call`'s ``step_inputs`` / ``compare``.
        mixed_precision: the dtype policies to check (empty to skip).
        mixed_precision_rtol: tolerance of the mixed-precision comparison.

    Raises:
        AssertionError: naming the property that fails.
    """
    kwargs = dict(call_kwargs or {})
    if condition is not None:
        kwargs["condition"] = condition
    outputs = layer(inputs, **kwargs)
    name = type(layer).__name__

    tensor_kwargs = {k: v for k, v in kwargs.items() if hasattr(v, "shape")}
    expected = layer.compute_output_shape(
        tree.map_structure(lambda x: tuple(x.shape), inputs),
        **{f"{k}_shape": tuple(v.shape) for k, v in tensor_kwargs.items()},
    )
    flat_expected = _shape_list(expected)
    flat_actual = _shape_list(tree.map_structure(lambda x: tuple(x.shape), outputs))
    if [s[1:] for s in flat_expected] != [s[1:] for s in flat_actual]:
        raise AssertionError(
            f"{name}.compute_output_shape gives {flat_expected}, the call gives {flat_actual}."
        )

    config = layer.get_config()
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    if type(clone) is not type(layer) or clone.get_config() != config:
        raise AssertionError(f"{name}: the serialization round trip changed the config.")
    clone(inputs, **kwargs)
    clone.set_weights(layer.get_weights())
    for a, b in zip(tree.flatten(clone(inputs, **kwargs)), tree.flatten(outputs), strict=True):
        if not np.array_equal(_numpy(a), _numpy(b)):
            raise AssertionError(f"{name}: the deserialized layer gives other outputs.")

    if causal is not None:
        options = (
            dict(zip(("mask_type", "color_channels"), causal, strict=True))
            if isinstance(causal, tuple)
            else dict(causal)
        )
        as_inputs = options.pop("as_inputs", lambda x: x)
        first = tree.flatten(inputs)[0]
        assert_layer_causal(
            lambda x: layer(as_inputs(x), **kwargs), tuple(first.shape[1:]), **options
        )

    step_options = {} if steps in (None, False, True) else dict(steps)
    if steps:
        assert_steps_match_call(layer, inputs, condition=condition, **step_options)

    for policy in mixed_precision:
        with _global_dtype_policy(policy):
            mixed = type(layer).from_config({**config, "dtype": policy})
        mixed_outputs = mixed(inputs, **kwargs)
        mixed.set_weights(layer.get_weights())
        mixed_outputs = mixed(inputs, **kwargs)
        compute_dtype = keras.dtype_policies.get(policy).compute_dtype
        for a, b in zip(tree.flatten(mixed_outputs), tree.flatten(outputs), strict=True):
            if keras.backend.standardize_dtype(a.dtype) != compute_dtype:
                raise AssertionError(f"{name} under {policy} returns {a.dtype}.")
            a = _numpy(a)
            if not np.isfinite(a).all():
                raise AssertionError(f"{name} under {policy} gives non-finite outputs.")
            error = _relative_error(a, _numpy(b))
            if error > mixed_precision_rtol:
                raise AssertionError(
                    f"{name} under {policy} is {error:.3g} away from float32 (relative L2)."
                )
        if steps:
            assert_steps_match_call(
                mixed,
                inputs,
                condition=condition,
                rtol=mixed_precision_rtol,
                atol=mixed_precision_rtol,
                **step_options,
            )
