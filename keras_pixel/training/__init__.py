"""Training at scale: distribution strategies, paper optimizers, run callbacks."""

from keras_pixel.training.callbacks import SampleGrid, training_callbacks
from keras_pixel.training.optimizers import (
    PIXELCNN_PP,
    PerStepDecay,
    PolyakAdam,
    learning_rate_schedule,
    make_optimizer,
)
from keras_pixel.training.strategy import (
    STRATEGIES,
    distributable,
    get_strategy,
    in_multi_worker_mode,
    is_chief,
    task,
    use_logical_cpus,
)

__all__ = [
    "PIXELCNN_PP",
    "STRATEGIES",
    "PerStepDecay",
    "PolyakAdam",
    "SampleGrid",
    "distributable",
    "get_strategy",
    "in_multi_worker_mode",
    "is_chief",
    "learning_rate_schedule",
    "make_optimizer",
    "task",
    "training_callbacks",
    "use_logical_cpus",
]
