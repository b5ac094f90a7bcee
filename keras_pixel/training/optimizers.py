"""Optimizers and learning-rate schedules of the papers.

PixelCNN++ (Salimans et al. 2017, section 3) trains with Adam at a learning rate
of 0.001 decayed by 0.999995 every step and evaluates with a Polyak average of
the weights (decay 0.9995); PixelRNN and the (Gated) PixelCNN papers train with
RMSProp or Adam without stating a schedule, and the zoo uses a constant Adam
rate for them.
"""

import math

import keras

#: PixelCNN++'s recipe: initial learning rate, per-step decay, Polyak decay.
PIXELCNN_PP = {"learning_rate": 1e-3, "lr_decay": 0.999995, "ema": 0.9995}


@keras.saving.register_keras_serializable(package="keras_pixel")
class PerStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate * decay ** step``, exact in float32 for millions of steps,
    after an optional linear warm-up.

    ``keras.optimizers.schedules.ExponentialDecay`` raises the float32 rounding
    of ``decay`` to the power ``step``: 0.999995 rounds to 0.9999949932, which
    after 10^5 steps is 0.07 % off and after 10^6 steps 0.7 %. Here the
    exponent is ``step * log(decay)`` with ``log(decay)`` taken in float64.

    With ``warmup_steps`` the rate is also scaled by ``min(1, (step + 1) /
    warmup_steps)``. A fine-tune needs it: Adam's first step moves every weight
    by the full rate whatever its gradient (its second-moment estimate holds a
    single gradient), and from trained weights that step undoes much of the
    training (from the 7-layer ``gated_pixelcnn_mnist`` published then, 256 test images
    measured 1.017 bits/dim before and 1.162 after one Adam step at 3e-4;
    ``docs/training.md``).

    Args:
        learning_rate: the rate at step 0 (after the warm-up).
        decay: factor per step, in (0, 1], or 1 for none.
        warmup_steps: steps of the linear warm-up, 0 for none.
    """

    def __init__(self, learning_rate, decay, warmup_steps=0):
        self.learning_rate = float(learning_rate)
        self.decay = float(decay)
        self.warmup_steps = int(warmup_steps)
        self._log_decay = math.log(self.decay)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self.learning_rate * keras.ops.exp(step * self._log_decay)
        if self.warmup_steps:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "decay": self.decay,
            "warmup_steps": self.warmup_steps,
        }


def learning_rate_schedule(learning_rate, lr_decay=None, warmup_steps=0):
    """``learning_rate * lr_decay ** step`` after ``warmup_steps`` of linear
    warm-up (:class:`PerStepDecay`), or the constant rate when ``lr_decay`` is
    None or 1 and there is no warm-up."""
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
    if lr_decay is not None and not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay}.")
    if warmup_steps is None or int(warmup_steps) != warmup_steps or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps}.")
    if (lr_decay is None or lr_decay == 1) and not warmup_steps:
        return float(learning_rate)
    return PerStepDecay(learning_rate, 1.0 if lr_decay is None else lr_decay, warmup_steps)


@keras.saving.register_keras_serializable(package="keras_pixel")
class PolyakAdam(keras.optimizers.Adam):
    """Adam whose moving average of the weights (``use_ema=True``) warms up.

    The average's decay at step ``t`` is ``min(ema_momentum, (1 + t) / (10 + t))``,
    the schedule of ``tf.train.ExponentialMovingAverage`` with ``num_updates``:
    early on the average follows the weights closely, and it forgets the random
    initial weights as fast as training moves away from them. Keras's constant
    decay keeps ``ema_momentum ** t`` of the initial weights in the average:
    with 0.9995, 39% after 1,876 steps (two epochs of MNIST at batch 64), which
    made short runs validate far worse than they had trained. Over a long run
    (``t`` well past ``1 / (1 - ema_momentum)``) the two agree.
    """

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = keras.ops.cast(self.iterations, "float32")
        decay = keras.ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        decay = decay * keras.ops.cast(keras.ops.not_equal(self.iterations, 0), "float32")
        for var, average in zip(
            trainable_variables, self._model_variables_moving_average, strict=True
        ):
            if average is not None:
                momentum = keras.ops.cast(decay, var.dtype)
                average.assign(momentum * average + (1 - momentum) * var)


def make_optimizer(learning_rate=1e-3, lr_decay=None, ema=None, warmup_steps=0):
    """Adam with an optional warm-up, per-step decay and Polyak averaging.

    Args:
        learning_rate: initial learning rate.
        lr_decay: per-step multiplicative decay (PixelCNN++: 0.999995), or None.
        warmup_steps: steps of linear learning-rate warm-up (for fine-tuning
            trained weights, see :class:`PerStepDecay`), 0 for none.
        ema: decay of the exponential moving average of the weights (PixelCNN++:
            0.9995), or None/0 for none. With it, pass the callbacks of
            :func:`~keras_pixel.training.training_callbacks` with ``ema=True``
            so that validation and sampling use the average. The average
            warms up (:class:`PolyakAdam`).

    Returns:
        ``keras.optimizers.Adam`` (:class:`PolyakAdam` with ``ema``).
    """
    if ema and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1), got {ema}.")
    schedule = learning_rate_schedule(learning_rate, lr_decay, warmup_steps)
    if ema:
        return PolyakAdam(schedule, use_ema=True, ema_momentum=float(ema))
    return keras.optimizers.Adam(schedule)
