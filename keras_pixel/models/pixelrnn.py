"""PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016, *Pixel Recurrent Neural
Networks*): Row LSTM and Diagonal BiLSTM networks."""

import keras

from keras_pixel.layers import DiagonalBiLSTM, MaskedConv2D, RowLSTM
from keras_pixel.layers.output_head import CategoricalHead
from keras_pixel.models.base import AutoregressiveModel

KINDS = ("row_lstm", "diagonal_bilstm")


@keras.saving.register_keras_serializable(package="keras_pixel")
class PixelRNN(AutoregressiveModel):
    """PixelRNN with a K-way softmax per subpixel (K = ``num_values``, 256 for 8 bits).

    The paper's architecture (section 3 and table 1): a 7x7 mask-A convolution
    to 2h channels, ``num_layers`` LSTM layers (Row LSTM or Diagonal BiLSTM of h
    units) each followed by a 1x1 mask-B convolution back to 2h channels and a
    residual connection, optionally skip connections from every layer to the
    output, then ReLU, a 1x1 mask-B convolution to ``output_filters``, ReLU and a
    1x1 mask-B convolution to ``C * K`` logits. RGB channel masking throughout.

    ``model(images)``: integer ``[B, H, W, C]`` in ``[0, K)`` -> logits
    ``[B, H, W, C, K]``.

    Args:
        kind: ``"row_lstm"`` or ``"diagonal_bilstm"``.
        num_layers: number of LSTM layers.
        units: h, the units of each LSTM (divisible by 3 for RGB).
        image_shape: ``(H, W, C)``, C = 1 or 3.
        output_filters: width of the 1x1 output layer (divisible by 3 for RGB).
        skip_connections: also feed every layer's output to the output layers.
        kernel_size: odd k of the Row LSTM's 1 x k convolutions.
        first_kernel_size: odd size of the mask-A input convolution.
        num_values: K, the values a subpixel takes (2 for binarized images, a
            codebook size for a prior over VQ-VAE codes).
        **kwargs: passed to ``keras.Model``.
    """

    xla_faster = False  # measured 0.5-0.65x on CPU: benchmarks/README.md

    litert_batch_size = 1

    conditionable = False

    def __init__(
        self,
        kind="diagonal_bilstm",
        num_layers=12,
        units=128,
        image_shape=(28, 28, 1),
        output_filters=1024,
        skip_connections=False,
        kernel_size=3,
        first_kernel_size=7,
        num_values=256,
        **kwargs,
    ):
        super().__init__(image_shape, num_values=num_values, **kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}.")
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        self.kind = kind
        self.num_layers = int(num_layers)
        self.units = int(units)
        self.output_filters = int(output_filters)
        self.skip_connections = bool(skip_connections)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        color_channels = self.image_shape[-1]
        masked = dict(color_channels=color_channels, dtype=self.dtype_policy)
        self.input_conv = MaskedConv2D(
            2 * self.units, self.first_kernel_size, mask_type="A", name="input_conv", **masked
        )
        if kind == "row_lstm":
            make = lambda k: RowLSTM(  # noqa: E731
                self.units, self.kernel_size, name=f"row_lstm_{k}", **masked
            )
        else:
            make = lambda k: DiagonalBiLSTM(self.units, name=f"diagonal_bilstm_{k}", **masked)  # noqa: E731
        self.lstms = [make(k) for k in range(self.num_layers)]
        self.projections = [
            MaskedConv2D(2 * self.units, 1, mask_type="B", name=f"residual_{k}", **masked)
            for k in range(self.num_layers)
        ]
        self.head = CategoricalHead(
            self.output_filters, num_values=self.num_values, name="head", **masked
        )
        self._build_from_images()

    def network(self, x, condition, layer_call):
        del condition
        h = layer_call(self.input_conv, x)
        skips = 0.0
        for lstm, projection in zip(self.lstms, self.projections, strict=True):
            out = layer_call(projection, layer_call(lstm, h))
            h = h + out
            if self.skip_connections:
                skips = skips + out
        return layer_call(self.head, h + skips if self.skip_connections else h)

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind,
            num_layers=self.num_layers,
            units=self.units,
            output_filters=self.output_filters,
            skip_connections=self.skip_connections,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            num_values=self.num_values,
        )
        return config
