"""``WeightNormalization``: Salimans & Kingma (2016) weight normalization as a wrapper."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pixel")
class WeightNormalization(keras.layers.Wrapper):
    """Reparameterizes a layer's kernel as ``w = g * v / ||v||``, with data-dependent init.

    Works for any layer whose first two trainable weights are ``kernel`` and
    ``bias`` with the output channels last in the kernel (``Dense``, ``Conv2D`` and
    its subclasses) or second to last (``Conv2DTranspose``). The normalized
    kernel is computed inside the call from the variables ``v`` (the wrapped
    layer's kernel) and ``g``, so nothing is assigned during training and the
    step is XLA-stable (no recompilation per step).

    Data-dependent initialization (PixelCNN++, section 2.5): call
    :meth:`initialize_from_data` once, eagerly, on a batch; ``g`` and the bias
    are set so that the layer's pre-activations have zero mean and unit
    variance on it. :func:`data_dependent_init` does this for a whole model.

    Args:
        layer: the layer to wrap (its ``activation`` should be None).
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self._init_pending = False

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        if not hasattr(self.layer, "kernel") or not getattr(self.layer, "use_bias", False):
            raise ValueError(
                f"WeightNormalization needs a layer with a kernel and a bias, got {self.layer}."
            )
        self._out_axis = -2 if isinstance(self.layer, keras.layers.Conv2DTranspose) else -1
        channels = self.layer.kernel.shape[self._out_axis]
        self.g = self.add_weight(name="g", shape=(channels,), initializer="ones")
        self.built = True

    @property
    def normalized_kernel(self):
        """``g * v / ||v||``, the kernel the wrapped layer is called with."""
        return self._kernel()

    @property
    def effective_kernel(self):
        """The kernel the layer convolves with: :attr:`normalized_kernel`."""
        return self._kernel()

    @property
    def bias(self):
        """The wrapped layer's bias."""
        return self.layer.bias

    def _kernel(self):
        v = ops.cast(self.layer.kernel, "float32")
        axes = [a for a in range(len(v.shape)) if a != len(v.shape) + self._out_axis]
        norm = ops.sqrt(ops.sum(ops.square(v), axis=axes, keepdims=True) + 1e-12)
        g = ops.cast(self.g, "float32")
        g = ops.reshape(g, (-1, 1)) if self._out_axis == -2 else g
        return v / norm * g

    def call(self, inputs, training=None):
        if self._init_pending:
            self._initialize(inputs)
        kernel = ops.cast(self._kernel(), self.layer.compute_dtype)
        outputs, _ = self.layer.stateless_call([kernel, self.layer.bias], [], inputs)
        return outputs

    def _initialize(self, inputs):
        self._init_pending = False
        self.g.assign(ops.ones_like(self.g))
        self.layer.bias.assign(ops.zeros_like(self.layer.bias))
        outputs, _ = self.layer.stateless_call([self._kernel(), self.layer.bias], [], inputs)
        axes = tuple(range(len(outputs.shape) - 1))
        mean = ops.mean(outputs, axis=axes)
        std = ops.sqrt(ops.var(outputs, axis=axes) + 1e-10)
        self.g.assign(1.0 / std)
        self.layer.bias.assign(-mean / std)

    def initialize_from_data(self, inputs):
        """Sets ``g`` and the bias from ``inputs`` (eager) and returns the outputs."""
        self._init_pending = True
        return self(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def data_dependent_init(model, inputs):
    """Data-dependent initialization of every ``WeightNormalization`` in ``model``.

    Runs one eager forward pass on ``inputs`` in which each wrapped layer, in
    order, sets its ``g`` and bias from the activations it receives.
    """
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, WeightNormalization)
    ]
    for layer in layers:
        layer._init_pending = True
    try:
        model(inputs, training=False)
    finally:
        for layer in layers:
            layer._init_pending = False
    return len(layers)


def weight_normalized(layer, enabled=True):
    """``layer`` wrapped in :class:`WeightNormalization` under the layer's name and
    dtype policy (so a mixed-precision block built under a float32 global policy
    stays mixed), or ``layer`` itself when not ``enabled``."""
    if not enabled:
        return layer
    return WeightNormalization(layer, name=layer.name, dtype=layer.dtype_policy)
