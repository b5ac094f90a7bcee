"""Callbacks of a training run: resumable backups, Polyak averaging, sample grids.

:func:`training_callbacks` puts them in the order that makes them agree with
each other: the backup saves the raw weights (and the optimizer with its moving
averages) before :class:`keras.callbacks.SwapEMAWeights` swaps the averaged
weights in at the end of an epoch, so that the sample grid, the epoch
checkpoint and validation all see the averaged weights, as PixelCNN++
evaluates and samples with its Polyak average.
"""

import os
import time

import keras
import numpy as np

from keras_pixel.images import image_grid, save_image_grid


class SampleGrid(keras.callbacks.Callback):
    """Samples from the model every ``every_n_epochs`` epochs and shows the images.

    Writes ``directory/samples_epoch_NNNN.png`` (a grid of ``num_images``) and,
    with ``log_dir``, a TensorBoard image summary ``samples`` at step = epoch.
    The same ``seed`` every time, so successive grids show how the model changes
    rather than new noise.

    Args:
        directory: folder of the PNG grids.
        every_n_epochs: sample after epochs N, 2N, ... (and after the last one).
        num_images: images per grid.
        seed: sampling seed.
        temperature: sampling temperature.
        labels: for conditional models: the class of each image (default
            0, 1, 2, ... in turn).
        log_dir: TensorBoard log folder, or None.
        method: sampling method (see :meth:`AutoregressiveModel.sample`).
    """

    def __init__(
        self,
        directory,
        every_n_epochs=1,
        num_images=16,
        seed=0,
        temperature=1.0,
        labels=None,
        log_dir=None,
        method=None,
    ):
        super().__init__()
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.directory = os.fspath(directory)
        self.every_n_epochs = int(every_n_epochs)
        self.num_images = int(num_images)
        self.seed = seed
        self.temperature = temperature
        self.labels = labels
        self.log_dir = log_dir
        self.method = method
        self._writer = None

    def _labels(self):
        if not self.model.conditional:
            return None
        if self.labels is not None:
            return self.labels
        if self.model.num_classes is None:
            raise ValueError("SampleGrid needs labels= for a model conditioned on vectors.")
        return np.arange(self.num_images) % self.model.num_classes

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        last = self.params.get("epochs") == done
        if done % self.every_n_epochs and not last:
            return
        images = self.model.sample(
            self.num_images,
            temperature=self.temperature,
            seed=self.seed,
            method=self.method,
            labels=self._labels(),
        )
        path = os.path.join(self.directory, f"samples_epoch_{done:04d}.png")
        save_image_grid(images, path, num_values=self.model.num_values)
        if self.log_dir is not None:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))
            with self._writer.as_default():
                grid = image_grid(images, num_values=self.model.num_values)
                tf.summary.image("samples", grid[None], step=done)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall time in seconds to its logs as ``epoch_seconds`` (the
    callbacks after it, a ``CSVLogger`` say, record it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def training_callbacks(
    output,
    ema=False,
    sample_every=0,
    num_samples=16,
    seed=0,
    labels=None,
    tensorboard=True,
    checkpoints=True,
    backup=True,
    history=False,
    keep_backup=False,
):
    """The callbacks ``keras-pixel train`` passes to ``fit``, in a working order.

    Args:
        output: the run's folder. Backups go to ``output/backup`` (deleted when
            ``fit`` finishes unless ``keep_backup``), per-epoch weights to
            ``output/checkpoints/epoch_NNNN.weights.h5``, PNG grids to
            ``output/samples``, TensorBoard logs to ``output/logs``.
        ema: whether the optimizer keeps a moving average of the weights
            (``use_ema=True``): validation, checkpoints and sample grids then use
            the averaged weights, and ``fit`` leaves them in the model.
        sample_every: write a sample grid every N epochs (0: never).
        num_samples: images per sample grid.
        seed: sampling seed of the grids.
        labels: class of each grid image, for conditional models.
        tensorboard: write TensorBoard scalars (loss in nats per image and
            ``bits_per_dim``, training and validation) and sample images.
        checkpoints: write the per-epoch weights.
        backup: ``keras.callbacks.BackupAndRestore``: rerunning an interrupted
            run resumes after its last finished epoch.
        history: append each epoch's logs and its wall time (``epoch_seconds``)
            to ``output/history.csv``, which thus holds the whole run across
            resumes.
        keep_backup: keep the backup after ``fit``, for a caller that removes it
            once the run's results are safely written (``keras-pixel train``):
            a process killed between ``fit`` and that point then resumes with
            every epoch done.

    Returns:
        A list of ``keras.callbacks.Callback``.
    """
    output = os.fspath(output)
    log_dir = os.path.join(output, "logs") if tensorboard else None
    callbacks = []
    if backup:
        callbacks.append(
            keras.callbacks.BackupAndRestore(
                os.path.join(output, "backup"),
                save_freq="epoch",
                double_checkpoint=True,
                delete_checkpoint=not keep_backup,
            )
        )
    if ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if sample_every:
        callbacks.append(
            SampleGrid(
                os.path.join(output, "samples"),
                every_n_epochs=sample_every,
                num_images=num_samples,
                seed=seed,
                labels=labels,
                log_dir=log_dir,
            )
        )
    if checkpoints:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                os.path.join(output, "checkpoints", "epoch_{epoch:04d}.weights.h5"),
                save_weights_only=True,
            )
        )
    if history:
        callbacks.append(EpochSeconds())
        csv_path = os.path.join(output, "history.csv")
        callbacks.append(keras.callbacks.CSVLogger(csv_path, append=True))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
    return callbacks
