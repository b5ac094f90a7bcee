"""A persistent cache of compiled samplers: a first sample in seconds.

Sampling from a model in a fresh process costs far more than drawing the
images: Python traces the Keras layers into the cached sampler's graph, then XLA
compiles it (``keras-pixel sample pixelcnn_pp_mnist --num 16``: about 20 s, of
which the draws are 0.3 s). Both costs are the same every time for the same
model and weights, so ``keras-pixel sample`` keeps their results in the user's
cache folder:

* the sampler as a SavedModel holding only the ``sample`` signature of
  :func:`keras_pixel.export.graphs.serving_functions` (the same images as
  ``model.sample`` for the same seed), under ``samplers/<key>/``, where the key
  (:func:`request_key`) is a sha256 of the request: the zoo entry, its
  overrides, the weights file's sha256, the method, the versions of
  keras-pixel, Keras and TensorFlow and keras-pixel's source. Finding it needs
  no model: a warm ``keras-pixel sample`` neither builds the Keras model nor
  traces it.
* XLA's persistent compilation cache (``xla/``, TensorFlow's
  ``--tf_xla_persistent_cache_directory``), which skips the compilation of a
  graph XLA has compiled before, for the same batch size.

A process that misses the cache samples as before and then starts a detached
builder process (``python -m keras_pixel.sampler_builder``) that writes the
SavedModel (whole or not at all, see :func:`~keras_pixel.export.publish_all`)
and compiles it once at the batch size just asked for, so the user's command
takes no longer than without the cache; the next one loads it. One builder per
entry: a builder holds ``samplers/<key>.lock`` (:func:`building`) until it is
done, and a command that misses the cache while that entry's builder runs
starts none (two builders of one entry did the same minutes of work twice, on
the cores the user's commands were using). With
``KERAS_PIXEL_AOT=on`` and where the machine can, the builder then compiles the
sampler ahead of time for that batch size (:mod:`keras_pixel.sampler_aot`,
beside the entry): the next command with that ``--num`` does not import
TensorFlow at all, but may draw a few images differently from ``model.sample``
(off by default for that reason).

A warm command still imports TensorFlow to load the SavedModel (about 9 s of
its 9.5 s on 2 cores): the builder, and a warm command that found no server,
start a resident sampling server (:mod:`keras_pixel.sampler_server`) that keeps
the SavedModel loaded; while it runs (15 minutes after its last request by
default), ``keras-pixel sample`` sends it the request and draws the same images
in about half a second, without importing TensorFlow.

The folder is ``$KERAS_PIXEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/keras_pixel``,
else ``~/.cache/keras_pixel``; ``KERAS_PIXEL_CACHE_DIR=off`` turns the cache
off. Deleting the folder is always safe.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys

ENV = "KERAS_PIXEL_CACHE_DIR"
INFO = "keras_pixel_sampler.json"
_OFF = ("", "0", "off", "none", "false")
_XLA_FLAG = "--tf_xla_persistent_cache_directory"


def cache_dir():
    """The cache folder (absolute path), or None when ``$KERAS_PIXEL_CACHE_DIR`` is off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else os.path.abspath(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras_pixel")


def enable_xla_cache():
    """Points XLA's persistent compilation cache at ``<cache>/xla`` through
    ``TF_XLA_FLAGS``, unless the cache is off or the flag is already set.

    Must run before TensorFlow reads its XLA flags (the ``keras-pixel`` command
    calls it before importing TensorFlow). Returns the folder, or None.
    """
    root = cache_dir()
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if root is None or _XLA_FLAG in flags:
        return None
    directory = os.path.join(root, "xla")
    os.environ["TF_XLA_FLAGS"] = f"{flags} {_XLA_FLAG}={directory}".strip()
    return directory


def _source_digest():
    """sha256 of keras-pixel's own source files and zoo table: a cached sampler
    is a traced graph of this code, stale once the code changes (as it does in
    a development install without a new version number)."""
    package = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith((".py", ".json"))):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, package).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _shipped_sha256(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo", "trained.json")
    with open(path) as f:
        return json.load(f).get(name, {}).get("sha256")


def request_key(name, weights=None, weights_sha256=None, overrides=(), method="cached"):
    """The cache key (sha256 hex) of a ``keras-pixel sample`` request, or None
    where it cannot be cached.

    Computed without building the model, so that a cached sampler is found
    in the time it takes to hash the weights file: the key covers the zoo
    entry's name, the ``--override`` items, the weights (the shipped file's
    recorded sha256, a file's own sha256, or a URL's ``--weights-sha256``),
    the method, the versions of keras-pixel, Keras and TensorFlow and the
    package's source (:func:`_source_digest`). Fresh weights (``none``), a URL
    without its sha256 and a missing file are not cached (the latter two fail
    on the uncached path with their usual errors).
    """
    from importlib import metadata

    if weights is None or weights == "pretrained":
        weights_digest = _shipped_sha256(name)
    elif weights.lower() == "none":
        weights_digest = None
    elif weights.startswith(("http://", "https://")):
        weights_digest = weights_sha256
    elif os.path.isfile(weights):
        digest = hashlib.sha256()
        with open(weights, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        weights_digest = digest.hexdigest()
    else:
        weights_digest = None
    if weights_digest is None:
        return None
    header = {
        "versions": [metadata.version(p) for p in ("keras-pixel", "keras", "tensorflow")],
        "source": _source_digest(),
        "model": name,
        "overrides": list(overrides),
        "weights": weights_digest,
        "method": method,
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


def args_key(args):
    """:func:`request_key` of parsed ``keras-pixel sample`` arguments."""
    return request_key(
        args.model, args.weights, args.weights_sha256, args.override or (), args.method
    )


def entry_path(key, root=None):
    """``<cache>/samplers/<key>`` (None when the cache is off)."""
    root = cache_dir() if root is None else root
    return None if root is None else os.path.join(root, "samplers", key)


def find(key, root=None):
    """The folder of a complete cached sampler for ``key``, or None."""
    path = entry_path(key, root)
    if path is None or not os.path.isfile(os.path.join(path, "saved_model.pb")):
        return None
    return path


def read_info(path):
    """The :func:`model_info` of the cached sampler at ``path``."""
    with open(os.path.join(path, INFO)) as f:
        return json.load(f)


def load(path):
    """The ``sample`` signature of the cached sampler at ``path`` (a folder
    returned by :func:`find`); raises if it cannot be read."""
    import tensorflow as tf

    return tf.saved_model.load(path).signatures["sample"]


def draw(signature, num, temperature, seed, labels=None):
    """Draws ``num`` images with a cached sampler's ``signature`` (see
    :func:`load`): the images ``model.sample(num, temperature, seed,
    labels=labels)`` draws.

    Args:
        signature: from :func:`load`.
        num: number of images, at most
            :data:`~keras_pixel.export.graphs.MAX_IMAGES`.
        temperature: float > 0.
        seed: int >= 0.
        labels: class ids ``[num]`` for a class-conditional model, else None.

    Returns:
        numpy ``[num, H, W, C]`` in the model's image dtype.
    """
    import tensorflow as tf

    inputs = dict(
        num_images=tf.constant(num, tf.int32),
        seed=tf.constant(seed, tf.int64),
        temperature=tf.constant(temperature, tf.float32),
    )
    if labels is not None:
        inputs["labels"] = tf.constant(labels, tf.int32)
    return signature(**inputs)["images"].numpy()


def sample(path, num, temperature, seed, labels=None):
    """:func:`draw` with the cached sampler at ``path``."""
    return draw(load(path), num, temperature, seed, labels)


def model_info(model):
    """What ``keras-pixel sample`` needs to know of a cached model without
    building it: ``{"num_values", "conditional", "num_classes", "image_shape"}``."""
    return {
        "num_values": int(model.num_values),
        "conditional": bool(model.conditional),
        "num_classes": model.num_classes,
        "image_shape": list(model.image_shape),
    }


def publish_once(save, path, info_name, info):
    """Runs ``save(tmp)``, writes ``info`` as JSON to ``tmp/info_name`` and
    moves ``tmp`` to ``path`` in one rename; a ``path`` that exists (another
    builder's) is kept. Returns ``path``."""
    from keras_pixel.export.saved_model import publish_atomically

    def write(tmp):
        save(tmp)
        with open(os.path.join(tmp, info_name), "w") as f:
            json.dump(info, f)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        return publish_atomically(write, path)
    except FileExistsError:
        return path


def write(model, key, method, root=None):
    """Writes the SavedModel of ``model``'s ``sample`` signature for ``key``
    (whole or not at all); returns its folder. An entry that exists is kept."""
    from keras_pixel.export.graphs import serving_functions
    from keras_pixel.export.saved_model import write_signatures

    path = entry_path(key, root)
    if find(key, root) is not None:
        return path

    def save(tmp):
        write_signatures(model, {"sample": serving_functions(model, method)["sample"]}, tmp)

    return publish_once(save, path, INFO, model_info(model))


@contextlib.contextmanager
def building(key, root=None):
    """Holds the builder's lock of ``key``'s entry, ``<cache>/samplers/<key>.lock``
    (an exclusive ``flock``, released when the block ends or the process dies):
    yields True, or False at once, without waiting, where another process holds
    it (that entry's builder is running)."""
    path = entry_path(key, root) + ".lock"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        yield held


def builder_running(key, root=None):
    """Whether a builder of ``key``'s entry holds its lock (see :func:`building`)."""
    with building(key, root) as free:
        return not free


def spawn_builder(argv, key):
    """Starts ``python -m keras_pixel.sampler_builder ARGV`` detached (its own
    session, output appended to ``<cache>/samplers/<key>.log``) and returns
    the ``Popen``; the caller does not wait for it. Returns None, starting
    nothing, while a builder of ``key`` runs (:func:`builder_running`)."""
    if builder_running(key):
        return None
    log_path = entry_path(key) + ".log"
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "keras_pixel.sampler_builder", *argv, "--key", key],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def builder_argv(args, num, labels):
    """The builder's arguments for a ``keras-pixel sample`` invocation ``args``."""
    argv = [args.model, "--method", args.method or "cached", "--num", str(num)]
    if args.weights is not None:
        argv += ["--weights", args.weights]
    if args.weights_sha256 is not None:
        argv += ["--weights-sha256", args.weights_sha256]
    for item in args.override or []:
        argv += ["--override", item]
    if labels is not None:
        argv += ["--labels", ",".join(str(int(v)) for v in labels)]
    return argv
