"""``tf.distribute`` strategies by name, for ``keras-pixel train --strategy``.

Keras 3 on TensorFlow distributes ``fit`` by itself once the model is built and
compiled inside ``strategy.scope()``: it splits each global batch of the dataset
over the replicas and all-reduces the gradients (the model's loss is scaled by
``1 / num_replicas_in_sync``, see
:meth:`~keras_pixel.models.AutoregressiveModel.compute_loss`, so the step is the
single-device step on the same global batch).
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def in_multi_worker_mode(strategy=None):
    """Whether ``strategy`` (default: the current one) is a
    ``MultiWorkerMirroredStrategy`` over more than one worker.

    The condition under which Keras 3 averages a step's logs across workers
    with ``strategy.reduce("MEAN", value, axis=0)`` (Keras reads it from the
    private ``strategy.extended._in_multi_worker_mode()``); computed here from
    public API: the strategy's cluster resolver, whose chief and workers are
    the workers.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1


def _tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    if "cluster" not in config or "task" not in config:
        raise ValueError('TF_CONFIG needs "cluster" and "task" entries.')
    return config


def get_strategy(name="default", tpu=None):
    """The ``tf.distribute`` strategy called ``name``.

    Args:
        name: ``"default"`` (no distribution: the current default strategy),
            ``"mirrored"`` (``MirroredStrategy`` over this machine's GPUs, or its
            logical CPU devices when it has no GPU), ``"multiworker"``
            (``MultiWorkerMirroredStrategy``; the cluster comes from the
            ``TF_CONFIG`` environment variable, which must be set) or ``"tpu"``
            (``TPUStrategy``).
        tpu: for ``"tpu"``: the TPU's name or ``grpc://`` address (default: the
            local TPU or the one the environment names).

    Returns:
        A ``tf.distribute.Strategy``. Create it before any other TensorFlow work
        in the process (multi-worker and TPU strategies need that).

    Raises:
        ValueError: an unknown name, ``"multiworker"`` without ``TF_CONFIG``,
            or ``"tpu"`` with no TPU to connect to.
    """
    if name is None or name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None
        if not tf.config.list_logical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        if _tf_config() is None:
            raise ValueError(
                "--strategy multiworker needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}) on every worker.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise ValueError(f"--strategy tpu: no TPU to connect to ({error}).") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def task():
    """``(type, index)`` of this process in ``TF_CONFIG``'s cluster, or
    ``("worker", 0)`` without ``TF_CONFIG``."""
    config = _tf_config()
    if config is None:
        return "worker", 0
    return config["task"].get("type", "worker"), int(config["task"].get("index", 0))


def is_chief():
    """Whether this process is the one that writes a run's outputs.

    True without ``TF_CONFIG``; under it, for the ``chief`` task, or for worker 0
    when the cluster has no chief (the ``MultiWorkerMirroredStrategy`` rule).
    """
    config = _tf_config()
    if config is None:
        return True
    kind, index = task()
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in config["cluster"]


def use_logical_cpus(count):
    """Splits this machine's CPU into ``count`` logical devices (for testing and
    benchmarking ``"mirrored"`` without GPUs). Call it before TensorFlow
    initializes its devices.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        raise ValueError(
            f"use_logical_cpus must run before TensorFlow initializes its devices ({error})."
        ) from None


def distributable(dataset):
    """``dataset`` with its uint8 images widened to int32.

    Under a strategy, Keras builds the model from a first batch averaged across
    replicas, and ``MultiWorkerMirroredStrategy``'s collective all-reduce has no
    uint8 kernel; the models take int32 images as they take uint8 ones.
    """

    def widen(element):
        return tf.nest.map_structure(
            lambda t: tf.cast(t, tf.int32) if t.dtype == tf.uint8 else t, element
        )

    return dataset.map(widen)
