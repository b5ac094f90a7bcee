"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma 2017)."""

import functools

import keras
from keras import ops

from keras_pixel.distributions import LogisticMixtureLikelihood
from keras_pixel.distributions.logistic_mixture import num_mixture_params
from keras_pixel.layers.incremental import (
    call_with_kernel,
    conv_window,
    correlate,
    kernel_and_bias,
    pointwise,
    read_window,
    write_pixels,
    write_window,
)
from keras_pixel.layers.shifted_conv import (
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    GatedResnet,
)
from keras_pixel.layers.shifts import down_shift, right_shift
from keras_pixel.layers.weight_norm import data_dependent_init, weight_normalized
from keras_pixel.models.base import AutoregressiveModel

# One naming rule for the maps that cached sampling keeps (see
# PixelCNNPlusPlus._unet), besides "image" (the input with its channel of ones)
# and "params" (the output parameters at the current pixel).


def _out(stream, pass_, level, k):
    """The map of ``stream`` ("u", "ul") after ``k`` blocks of its ``pass_``
    ("up", "down") at ``level``; ``k = 0``: the pass's input there."""
    return f"{stream}_{pass_}_{level}_{k}"


def _first_conv(stream, pass_, level, k):
    """The first convolution's output of block ``k`` of that pass."""
    return f"{stream}_{pass_}_c1_{level}_{k}"


def _row_term(pass_, level, k, n):
    """Row term ``n`` (1 or 2) of ul block ``k`` of that pass
    (:meth:`GatedResnet.row_terms`)."""
    return f"ul_pre{n}_{pass_}_{level}_{k}"


@keras.saving.register_keras_serializable(package="keras_pixel")
class PixelCNNPlusPlus(AutoregressiveModel):
    """PixelCNN++: a U-Net of gated resnets over two shifted streams, with a
    discretized logistic mixture likelihood.

    The u stream (down-shifted convolutions) sees the rows above; the ul stream
    (down-right-shifted) also the pixels to the left. ``num_hierarchies`` levels of
    ``num_resnet`` gated resnet blocks (concat_elu, dropout, gates) go down in
    resolution by strided convolutions and back up by transposed ones, with the
    paper's skip connections from every block of the way down to the way up. The
    input gets an extra channel of ones (so zero padding is visible); convolutions
    are weight-normalized (:class:`~keras_pixel.layers.WeightNormalization`, with
    :meth:`data_dependent_init`). The outputs condition on whole earlier pixels;
    the channels of a pixel are coupled inside the likelihood
    (:class:`~keras_pixel.distributions.DiscretizedLogisticMixture`).

    ``model(images)``: integer ``[B, H, W, C]`` -> mixture parameters
    ``[B, H, W, K * (1 + 2C)]`` (C = 1) or ``[B, H, W, 10K]`` (C = 3). H and W must
    be divisible by ``2**(num_hierarchies - 1)``.

    Args:
        num_resnet: gated resnet blocks per level.
        num_hierarchies: resolution levels of the U-Net.
        num_filters: channels of both streams.
        num_logistic_mix: mixture components K.
        dropout: dropout rate in the blocks (training only).
        image_shape: ``(H, W, C)``, C = 1 or 3.
        num_classes: for class conditioning (labels ``[B]`` or one-hot).
        condition_dim: for conditioning on vectors ``[B, D]``.
        conditional: shorthand: an int number of classes (same as ``num_classes``).
        num_bits: bits per subpixel; images hold values in ``[0, 2**num_bits - 1]``.
        weight_norm: weight-normalize the convolutions.
        **kwargs: passed to ``keras.Model``.
    """

    xla_faster = False  # measured 0.5-0.65x on CPU: benchmarks/README.md

    def __init__(
        self,
        num_resnet=5,
        num_hierarchies=3,
        num_filters=160,
        num_logistic_mix=10,
        dropout=0.5,
        image_shape=(32, 32, 3),
        num_classes=None,
        condition_dim=None,
        conditional=None,
        num_bits=8,
        weight_norm=True,
        **kwargs,
    ):
        if conditional not in (None, False):
            if isinstance(conditional, bool) or not isinstance(conditional, int):
                raise ValueError(
                    "conditional takes the number of classes (an int); for vectors pass "
                    "condition_dim."
                )
            num_classes = num_classes or conditional
        super().__init__(
            image_shape, num_classes=num_classes, condition_dim=condition_dim, **kwargs
        )
        self.num_resnet = int(num_resnet)
        self.num_hierarchies = int(num_hierarchies)
        self.num_filters = int(num_filters)
        self.num_logistic_mix = int(num_logistic_mix)
        self.dropout = float(dropout)
        self.num_bits = int(num_bits)
        self.weight_norm = bool(weight_norm)
        if self.num_resnet < 1 or self.num_hierarchies < 1:
            raise ValueError("num_resnet and num_hierarchies must be >= 1.")
        if not 1 <= self.num_bits <= 8:
            raise ValueError(f"num_bits must be in [1, 8] for uint8 images, got {num_bits}.")
        self._num_values = 2**self.num_bits
        self.likelihood = LogisticMixtureLikelihood(
            self.num_logistic_mix, self.image_shape[-1], self.num_bits
        )
        height, width, channels = self.image_shape
        factor = 2 ** (self.num_hierarchies - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"image height and width must be divisible by 2**(num_hierarchies - 1) = "
                f"{factor}, got {height}x{width}."
            )
        nf, wn = self.num_filters, self.weight_norm
        dtype = dict(dtype=self.dtype_policy)
        self.u_init = weight_normalized(DownShiftedConv2D(nf, (2, 3), name="u_init", **dtype), wn)
        self.ul_init_down = weight_normalized(
            DownShiftedConv2D(nf, (1, 3), name="ul_init_down", **dtype), wn
        )
        self.ul_init_right = weight_normalized(
            DownRightShiftedConv2D(nf, (2, 1), name="ul_init_right", **dtype), wn
        )

        def block(name, shift):
            return GatedResnet(nf, shift, dropout=self.dropout, weight_norm=wn, name=name, **dtype)

        levels = range(self.num_hierarchies)
        self.up_u = [
            [block(f"up_u_{h}_{r}", "down") for r in range(self.num_resnet)] for h in levels
        ]
        self.up_ul = [
            [block(f"up_ul_{h}_{r}", "down_right") for r in range(self.num_resnet)] for h in levels
        ]
        self.down_u = [
            [block(f"down_u_{h}_{r}", "down") for r in range(self.num_resnet + (h > 0))]
            for h in levels
        ]
        self.down_ul = [
            [block(f"down_ul_{h}_{r}", "down_right") for r in range(self.num_resnet + (h > 0))]
            for h in levels
        ]
        last = self.num_hierarchies - 1
        self.u_downsample = [
            weight_normalized(
                DownShiftedConv2D(nf, (2, 3), strides=2, name=f"u_down_{h}", **dtype), wn
            )
            for h in range(last)
        ]
        self.ul_downsample = [
            weight_normalized(
                DownRightShiftedConv2D(nf, (2, 2), strides=2, name=f"ul_down_{h}", **dtype), wn
            )
            for h in range(last)
        ]
        self.u_upsample = [
            weight_normalized(DownShiftedConv2DTranspose(nf, (2, 3), name=f"u_up_{h}", **dtype), wn)
            for h in range(last)
        ]
        self.ul_upsample = [
            weight_normalized(
                DownRightShiftedConv2DTranspose(nf, (2, 2), name=f"ul_up_{h}", **dtype), wn
            )
            for h in range(last)
        ]
        self.output_layer = weight_normalized(
            keras.layers.Dense(
                num_mixture_params(self.num_logistic_mix, channels), name="output", **dtype
            ),
            wn,
        )
        self._build_from_images()

    def forward(self, x, condition=None, training=False):
        return self._unet(x, condition, training)[0]

    def _num_down_blocks(self, level):
        return self.num_resnet + (level < self.num_hierarchies - 1)

    def _skip_index(self, level, m):
        """Which up-pass map of ``level`` (0 = its input, k = after block k) feeds
        down-pass block ``m`` of that level: the up-pass maps in reverse, the
        lowest level's last one being the down pass's own input."""
        return self._num_down_blocks(level) - 1 - m

    def _down_input(self, stream, level):
        """The name of ``stream``'s down-pass input map at ``level``: the up
        pass's last map at the lowest level, the upsampled level below above it."""
        if level == self.num_hierarchies - 1:
            return _out(stream, "up", level, self.num_resnet)
        return _out(stream, "down", level, 0)

    def _unet(self, x, condition, training, record=False):
        """The network; with ``record`` also every map that cached sampling keeps,
        padded by one row on top and one column either side, by name (see
        :func:`_out` and :func:`_first_conv`)."""
        maps = {}

        def keep(name, value):
            if record:
                maps[name] = ops.pad(value, ((0, 0), (1, 0), (1, 1), (0, 0)))
            return value

        def run(block, stream, pass_, level, k, x, a=None):
            """Block ``k`` of a pass; its output is map ``k + 1`` of the pass."""
            if record:
                c1 = keep(_first_conv(stream, pass_, level, k), block.first_conv(x, a))
                x = block.gate(x, c1, condition, training)
            else:
                x = block(x, a=a, condition=condition, training=training)
            return keep(_out(stream, pass_, level, k + 1), x)

        x = keep("image", ops.concatenate([x, ops.ones_like(x[..., :1])], axis=-1))
        u = keep(_out("u", "up", 0, 0), down_shift(self.u_init(x)))
        ul = keep(
            _out("ul", "up", 0, 0),
            down_shift(self.ul_init_down(x)) + right_shift(self.ul_init_right(x)),
        )
        up_u, up_ul = [], []
        for level in range(self.num_hierarchies):
            if level > 0:
                u = keep(_out("u", "up", level, 0), self.u_downsample[level - 1](u))
                ul = keep(_out("ul", "up", level, 0), self.ul_downsample[level - 1](ul))
            up_u.append([u])
            up_ul.append([ul])
            for k, (u_block, ul_block) in enumerate(
                zip(self.up_u[level], self.up_ul[level], strict=True)
            ):
                u = run(u_block, "u", "up", level, k, u)
                ul = run(ul_block, "ul", "up", level, k, ul, a=u)
                up_u[level].append(u)
                up_ul[level].append(ul)
        for level in reversed(range(self.num_hierarchies)):
            h = self.num_hierarchies - 1 - level
            if level < self.num_hierarchies - 1:
                u = keep(_out("u", "down", level, 0), self.u_upsample[h - 1](u))
                ul = keep(_out("ul", "down", level, 0), self.ul_upsample[h - 1](ul))
            for m, (u_block, ul_block) in enumerate(
                zip(self.down_u[h], self.down_ul[h], strict=True)
            ):
                skip = self._skip_index(level, m)
                u = run(u_block, "u", "down", level, m, u, a=up_u[level][skip])
                a = ops.concatenate([u, up_ul[level][skip]], axis=-1)
                ul = run(ul_block, "ul", "down", level, m, ul, a=a)
        return self.output_layer(ops.elu(ul)), maps

    # Cached sampling (Ramachandran et al. 2017). The u stream (rows above only)
    # is computed a whole row at a time when a row starts (row_step), the ul
    # stream one pixel at a time (step). Level l of the U-Net (0 = full
    # resolution) gets its row r (u) or pixel (r, c) (ul) when the full
    # resolution reaches row 2^l r (and column 2^l c): downsampling waits for its
    # last input, and upsampling writes the 2 rows (u) or 2 x 2 pixels (ul) it
    # produces ahead of their use. Each ul block runs per pixel only what reads
    # the current row (GatedResnet.pixel_step): its row terms (top kernel row,
    # biases, nin of the u stream, condition) run at the row's start for the
    # whole row, halving the kernels a pixel step streams from memory.
    #
    # A step is a fixed schedule of groups (_schedule), one pass of one stream
    # at one level each; _writes declares what a group writes and where, and
    # _run_group runs it. Two rules keep XLA updating every map in place, where
    # it would otherwise copy whole maps on every step (22.6x one forward pass at
    # paper size): no map is written inside a branch, and no map is read where
    # it was just written.

    def init_cache(self, images, condition=None):
        condition = self._condition(condition)
        outputs, maps = self._unet(self.preprocess(images), condition, False, record=True)
        maps["params"] = ops.zeros_like(outputs[:, 0, 0])
        batch, nf = ops.shape(outputs)[0], self.num_filters
        for level in self._levels():
            for pass_, k, n in self._row_terms(level):
                maps[_row_term(pass_, level, k, n)] = ops.zeros(
                    (batch, 1, self._level_width(level), n * nf), self.compute_dtype
                )
        return maps

    def row_step(self, cache, images, position, condition=None, constants=None):
        return self._run_schedule(cache, images, position, condition, constants, per_pixel=False)

    def step(self, cache, images, position, condition=None, constants=None):
        maps = self._run_schedule(cache, images, position, condition, constants, per_pixel=True)
        return maps["params"][:, None, None], maps

    def _levels(self):
        return list(range(self.num_hierarchies))

    def _schedule(self, per_pixel):
        """The groups of a step, in order, as ``(stream, pass, level)``: at a row's
        start the u stream's up and down passes and then the ul blocks' row terms
        (``pass="rows"``), level by level; at each pixel the ul stream's passes."""
        up, down = self._levels(), self._levels()[::-1]
        if per_pixel:
            return [("ul", "up", level) for level in up] + [("ul", "down", level) for level in down]
        return (
            [("u", "up", level) for level in up]
            + [("u", "down", level) for level in down]
            + [("ul", "rows", level) for level in up]
        )

    def _run_schedule(self, cache, images, position, condition, constants, per_pixel):
        """Runs every group of :meth:`_schedule` at ``position``; returns the maps.

        A group at level ``l > 0`` is due only where the full resolution reaches
        its row (``i % 2^l == 0``) and, per pixel, its column."""
        i = position.row
        j = position.column if per_pixel else 0
        condition = None if per_pixel else self._condition(condition)
        kernels = constants or self.sampling_constants()
        maps = self._with_pixel(cache, images, i, j)
        fresh = {}
        for stream, pass_, level in self._schedule(per_pixel):
            r, c, due = i // 2**level, None, None
            if level > 0:
                due = ops.equal(i % 2**level, 0)
            if per_pixel:
                c = j // 2**level
                if level > 0:
                    due = ops.logical_and(due, ops.equal(j % 2**level, 0))
            method = self._group_methods()[stream, pass_]
            group = functools.partial(
                method, level=level, r=r, c=c, condition=condition, kernels=kernels
            )
            writes = self._writes(stream, pass_, level)
            self._run_group(maps, fresh, due, self._places(writes, level, r, c), writes, group)
        return maps

    def _group_methods(self):
        return {
            ("u", "up"): self._u_up,
            ("u", "down"): self._u_down,
            ("ul", "up"): self._ul_up,
            ("ul", "down"): self._ul_down,
            ("ul", "rows"): self._ul_rows,
        }

    def _with_pixel(self, cache, images, i, j):
        """The maps with the image map holding the drawn subpixels up to ``(i, j)``."""
        x = self.preprocess(images)
        x = ops.concatenate([x, ops.ones_like(x[..., :1])], axis=-1)
        maps = dict(cache)
        maps["image"] = write_pixels(maps["image"], x, i, j, (1, 1))
        return maps

    def _level_width(self, level):
        return self.image_shape[1] // 2**level

    def _writes(self, stream, pass_, level):
        """What a group writes, in order: map name -> ``"line"`` (its row r, or
        pixel (r, c), at ``level``), ``"upsampled"`` (2 rows or 2 x 2 pixels of
        the level above) or ``"whole"`` (replaced: the row terms, ``[B, 1, W, C]``,
        and the output parameters, ``[B, P]``)."""
        if pass_ == "rows":
            return {_row_term(p, level, k, n): "whole" for p, k, n in self._row_terms(level)}
        writes = {_out(stream, "up", level, 0): "line"} if pass_ == "up" else {}
        blocks = self.num_resnet if pass_ == "up" else self._num_down_blocks(level)
        for k in range(blocks):
            writes[_first_conv(stream, pass_, level, k)] = "line"
            writes[_out(stream, pass_, level, k + 1)] = "line"
        if pass_ == "down" and level > 0:
            writes[_out(stream, "down", level - 1, 0)] = "upsampled"
        if pass_ == "down" and level == 0 and stream == "ul":
            writes["params"] = "whole"
        return writes

    def _row_terms(self, level):
        """``(pass, block, n)`` of every ul row term at ``level``; term ``n`` has
        ``n * num_filters`` channels (the second: both halves of the gate)."""
        passes = (("up", self.num_resnet), ("down", self._num_down_blocks(level)))
        return [(p, k, n) for p, blocks in passes for k in range(blocks) for n in (1, 2)]

    def _places(self, writes, level, r, c=None):
        """Where each ``"line"`` or ``"upsampled"`` map of ``writes`` takes this
        step's values: ``(row, col, height, width)`` in padded coordinates; row
        ``r`` (u stream, ``c=None``) or pixel ``(r, c)`` (ul stream)."""
        width = self._level_width(level)
        if c is None:
            where = {"line": (r + 1, 1, 1, width), "upsampled": (2 * r + 1, 1, 2, 2 * width)}
        else:
            where = {"line": (r + 1, c + 1, 1, 1), "upsampled": (2 * r + 1, 2 * c + 1, 2, 2)}
        return {key: where[kind] for key, kind in writes.items() if kind in where}

    def _run_group(self, maps, fresh, due, places, keys, group):
        """Runs ``group(maps, put, read)``, which hands each value it computes to
        ``put(key, value)``, and stores them in ``maps`` (at ``places[key]``, or
        replacing the map for a key without a place).

        ``due=None``: the group runs at every step and each value is written as
        it is put, before the group's later reads of that map (so that XLA orders
        the read after the write, and needs no copy). Otherwise it runs in a
        branch taken where ``due``, whose other branch reads back the current
        values, and the values are written after the branch.

        ``fresh`` maps each key written in this step to ``(values, row, col)``;
        ``read(key, row, col, height, width)`` takes a window from there when it
        has one (a window inside what was written): XLA would otherwise fuse the
        read with the write and copy the whole map to keep its old values.
        """

        def write(key, value):
            if key not in places:
                maps[key] = ops.cast(value, maps[key].dtype)
                return
            row, col = places[key][:2]
            maps[key] = write_window(maps[key], value, row, col)
            fresh[key] = (value, row, col)

        def read(key, row, col, height, width):
            if key in fresh:
                value, top, left = fresh[key]
                return read_window(value, row - top, col - left, height, width)
            return read_window(maps[key], row, col, height, width)

        if due is None:
            group(maps, write, read)
            return

        def computed():
            values = {}
            group(maps, values.__setitem__, read)
            return {key: ops.cast(values[key], maps[key].dtype) for key in keys}

        def current():
            return {
                key: read_window(maps[key], *places[key]) if key in places else maps[key]
                for key in keys
            }

        for key, value in ops.cond(due, computed, current).items():
            write(key, value)

    def _u_up(self, maps, put, read, level, r, c, condition, kernels):
        """Row ``r`` of the u stream's up pass at ``level``."""
        width = self._level_width(level)
        if level == 0:
            image = maps["image"]
            u = conv_window(*kernels["u_init"], image, ops.maximum(r - 1, 0), 0, width)
            x = u * ops.cast(r > 0, u.dtype)
        else:
            below = maps[_out("u", "up", level - 1, self.num_resnet)]
            downsample = kernels[self.u_downsample[level - 1].name]
            x = conv_window(*downsample, below, r, 0, width, strides=2)
        put(_out("u", "up", level, 0), x)
        for k, block in enumerate(self.up_u[level]):
            c1_key = _first_conv("u", "up", level, k)
            block_kernels = kernels[block.name]
            c1 = block.first_step(maps[_out("u", "up", level, k)], r, 0, x, kernels=block_kernels)
            put(c1_key, c1)
            x = block.gate_step(maps[c1_key], r, 0, x, c1, condition, kernels=block_kernels)
            put(_out("u", "up", level, k + 1), x)

    def _u_down(self, maps, put, read, level, r, c, condition, kernels):
        """Row ``r`` of the u stream's down pass at ``level`` and, above level 0,
        its 2 upsampled rows in the level above."""
        width, h = self._level_width(level), self.num_hierarchies - 1 - level
        first = self._down_input("u", level)
        x = read(first, r + 1, 1, 1, width)
        for m, block in enumerate(self.down_u[h]):
            skip = _out("u", "up", level, self._skip_index(level, m))
            c1_key = _first_conv("u", "down", level, m)
            c1 = block.first_step(
                maps[first if m == 0 else _out("u", "down", level, m)],
                r,
                0,
                x,
                a=read(skip, r + 1, 1, 1, width),
                kernels=kernels[block.name],
            )
            put(c1_key, c1)
            x = block.gate_step(maps[c1_key], r, 0, x, c1, condition, kernels=kernels[block.name])
            put(_out("u", "down", level, m + 1), x)
        if level > 0:
            upsample = self.u_upsample[h]
            put(
                _out("u", "down", level - 1, 0),
                call_with_kernel(upsample, x, *kernels[upsample.name]),
            )

    def _ul_up(self, maps, put, read, level, r, c, condition, kernels):
        """Pixel ``(r, c)`` of the ul stream's up pass at ``level`` (the
        condition is in the row terms)."""
        if level == 0:
            image = read_window(maps["image"], r, c, 2, 3)
            above = correlate(image[:, :1], *kernels["ul_init_down"])
            left = correlate(image[:, :, :1], *kernels["ul_init_right"])
            x = above * ops.cast(r > 0, above.dtype) + left * ops.cast(c > 0, left.dtype)
        else:
            below = maps[_out("ul", "up", level - 1, self.num_resnet)]
            downsample = kernels[self.ul_downsample[level - 1].name]
            x = conv_window(*downsample, below, r, c, 1, strides=2)
        put(_out("ul", "up", level, 0), x)
        for k, block in enumerate(self.up_ul[level]):
            c1_key = _first_conv("ul", "up", level, k)
            pre1, pre2 = self._row_terms_at(maps, "up", level, k, c)
            block_kernels = kernels[block.name]
            x_map = maps[_out("ul", "up", level, k)]
            c1 = block.pixel_first_step(x_map, r, c, x, pre1, kernels=block_kernels)
            put(c1_key, c1)
            x = block.pixel_gate_step(maps[c1_key], r, c, x, c1, pre2, kernels=block_kernels)
            put(_out("ul", "up", level, k + 1), x)

    def _ul_down(self, maps, put, read, level, r, c, condition, kernels):
        """Pixel ``(r, c)`` of the ul stream's down pass at ``level`` and, above
        level 0, its 2 x 2 upsampled pixels in the level above; at level 0 also
        the output parameters there (``"params"``, ``[B, P]``)."""
        h = self.num_hierarchies - 1 - level
        first = self._down_input("ul", level)
        x = read(first, r + 1, c + 1, 1, 1)
        for m, block in enumerate(self.down_ul[h]):
            skip = read(_out("ul", "up", level, self._skip_index(level, m)), r + 1, c + 1, 1, 1)
            c1_key = _first_conv("ul", "down", level, m)
            pre1, pre2 = self._row_terms_at(maps, "down", level, m, c)
            x_map = maps[first if m == 0 else _out("ul", "down", level, m)]
            block_kernels = kernels[block.name]
            c1 = block.pixel_first_step(x_map, r, c, x, pre1, a=skip, kernels=block_kernels)
            put(c1_key, c1)
            x = block.pixel_gate_step(maps[c1_key], r, c, x, c1, pre2, kernels=block_kernels)
            put(_out("ul", "down", level, m + 1), x)
        if level > 0:
            upsample = self.ul_upsample[h]
            put(
                _out("ul", "down", level - 1, 0),
                call_with_kernel(upsample, x, *kernels[upsample.name]),
            )
        else:
            put("params", pointwise(ops.elu(x), *kernels["output"])[:, 0, 0])

    def _ul_rows(self, maps, put, read, level, r, c, condition, kernels):
        """Row ``r`` of every ul block's :meth:`GatedResnet.row_terms` at
        ``level`` (:func:`_row_term`): each kernel's top row on row ``r - 1`` of
        the ul maps, and ``nin`` of the u stream's row ``r`` (the u part of a
        down block's extra input ``[u, skip]``), which the u groups of this row
        step have just computed."""
        width, h = self._level_width(level), self.num_hierarchies - 1 - level
        first = self._down_input("ul", level)
        for pass_, blocks in (("up", self.up_ul[level]), ("down", self.down_ul[h])):
            for k, block in enumerate(blocks):
                if pass_ == "up":
                    x_key = _out("ul", "up", level, k)
                else:
                    x_key = first if k == 0 else _out("ul", "down", level, k)
                pre1, pre2 = block.row_terms(
                    maps[x_key],
                    maps[_first_conv("ul", pass_, level, k)],
                    r,
                    a=read(_out("u", pass_, level, k + 1), r + 1, 1, 1, width),
                    condition=condition,
                    kernels=kernels[block.name],
                )
                put(_row_term(pass_, level, k, 1), pre1)
                put(_row_term(pass_, level, k, 2), pre2)

    def sampling_constants(self):
        """Every kernel the cached steps use, by layer name, computed once where
        the compiled sampling loop starts (see
        :meth:`GatedResnet.sampling_kernels`): the weight-normalized kernels of
        the stream inputs, the down- and upsampling layers and the output layer
        as ``(kernel, bias)``, and each block's kernels; a down block's extra
        input ``[u, skip]`` splits after the u stream's channels."""
        layers = [self.u_init, self.ul_init_down, self.ul_init_right, self.output_layer]
        layers += self.u_downsample + self.ul_downsample + self.u_upsample + self.ul_upsample
        constants = {layer.name: kernel_and_bias(layer) for layer in layers}
        for level in self._levels():
            h = self.num_hierarchies - 1 - level
            for block in self.up_u[level] + self.up_ul[level] + self.down_u[h]:
                constants[block.name] = block.sampling_kernels()
            for block in self.down_ul[h]:
                constants[block.name] = block.sampling_kernels(row_channels=self.num_filters)
        return constants

    def _row_terms_at(self, maps, direction, level, k, c):
        """``(pre1, pre2)`` of ul block ``k`` of the ``direction`` pass at column ``c``."""
        return tuple(
            read_window(maps[_row_term(direction, level, k, n)], 0, c, 1, 1) for n in (1, 2)
        )

    zero_cache_from_scratch = True

    def data_dependent_init(self, images, labels=None):
        """Data-dependent initialization of the weight normalization on a batch.

        Call once before training, with a batch of training images (and labels
        for a conditional model). Returns the number of layers initialized.
        """
        images = self._check(images)
        condition = self._check_labels(labels, len(images))
        inputs = images if condition is None else (images, condition)
        return data_dependent_init(self, inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_resnet=self.num_resnet,
            num_hierarchies=self.num_hierarchies,
            num_filters=self.num_filters,
            num_logistic_mix=self.num_logistic_mix,
            dropout=self.dropout,
            num_bits=self.num_bits,
            weight_norm=self.weight_norm,
        )
        return config
