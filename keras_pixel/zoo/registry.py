"""The registry of named models: presets as data, built on demand."""

import dataclasses
import difflib
import hashlib
import importlib.resources
import inspect
import os
import urllib.parse
import warnings
from typing import Any

import keras

_REGISTRY = {}

CACHE_DIR = None
"""Where URL downloads are cached (None: the Keras cache, ``~/.keras``)."""


class UnknownModelError(KeyError, ValueError):
    """Raised for a name that is not in the zoo; the message lists close matches."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One zoo entry.

    Attributes:
        name: the registered name.
        model_class: the ``AutoregressiveModel`` subclass to build.
        config: its constructor arguments.
        description: one line for ``keras-pixel list``.
        dataset: the dataset spec it is trained on (see :func:`keras_pixel.data.load`).
        paper_result: the paper's number for this configuration, as text, or None.
        train: recommended training settings (``epochs``, ``batch_size``, ...).
        trained: what training it produced, or None where no weights are shipped:
            ``weights`` (file name in ``keras_pixel/zoo/weights/``), ``sha256``,
            ``command`` (reproduces the weights), ``evaluate_command``,
            ``test_bits_per_dim`` (and ``test_nats`` for binarized MNIST),
            ``slice`` (the number on the first images of the test set, checked by
            the tests), ``train_seconds``, ``hardware``, ``parameters``.
        published: weights that others trained and published, which the entry
            can load (not shipped with the package), or None: ``source``,
            ``archive``, ``file``, ``sha1``, ``format`` (of ``keras-pixel
            convert``), ``paper_result``, ``note``.
    """

    name: str
    model_class: type
    config: dict
    description: str = ""
    dataset: str = ""
    paper_result: str | None = None
    train: dict = dataclasses.field(default_factory=dict)
    trained: dict | None = None
    parameters: int | None = None
    published: dict | None = None

    @property
    def has_weights(self):
        """Whether pretrained weights ship with the package."""
        return bool(self.trained and self.trained.get("weights"))

    def build(self, **overrides: Any):
        """Builds the model with ``config`` updated by ``overrides``."""
        unknown = set(overrides) - set(_constructor_args(self.model_class))
        if unknown:
            raise ValueError(
                f"Unknown override(s) {sorted(unknown)} for {self.name}; "
                f"{self.model_class.__name__} takes {sorted(_constructor_args(self.model_class))}."
            )
        return self.model_class(**{**self.config, **overrides})

    def optimizer(self):
        """Adam at the recipe's learning rate and per-step decay (``train``), as
        :func:`load` compiles with. Without Polyak averaging, which needs the
        callbacks of :func:`keras_pixel.training.training_callbacks`
        (``keras-pixel train`` adds both where the recipe has ``ema``)."""
        from keras_pixel.training import make_optimizer

        return make_optimizer(
            self.train.get("learning_rate", 1e-3), lr_decay=self.train.get("lr_decay")
        )


def _constructor_args(cls):
    names = set()
    for klass in cls.__mro__:
        if klass is keras.Model:
            break
        if "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters
            names |= {p for p in params if p not in ("self", "args", "kwargs")}
    return names | {"name", "dtype"}


def register(
    name,
    model_class,
    config,
    description="",
    dataset="",
    paper_result=None,
    train=None,
    overwrite=False,
    trained=None,
    parameters=None,
    published=None,
):
    """Adds a named model to the zoo.

    Args:
        name: the name used with :func:`load`.
        model_class: an ``AutoregressiveModel`` subclass.
        config: dict of constructor arguments.
        description: one line for ``keras-pixel list``.
        dataset: the dataset spec it trains on.
        paper_result: the paper's number, as text, or None.
        train: recommended training settings (``epochs``, ``batch_size``,
            ``learning_rate``).
        overwrite: replace an existing entry of the same name.
        trained: what training produced (see :class:`Preset`), or None.
        parameters: the full-size model's parameter count (for the zoo table;
            a test checks it).
        published: weights published by others that the entry loads (see
            :class:`Preset`), or None.

    Returns:
        The :class:`Preset`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A zoo name must be a non-empty string, got {name!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"{name!r} is already registered; pass overwrite=True to replace it.")
    preset = Preset(
        name,
        model_class,
        dict(config),
        description,
        dataset,
        paper_result,
        dict(train or {}),
        None if trained is None else dict(trained),
        parameters,
        None if published is None else dict(published),
    )
    _REGISTRY[name] = preset
    return preset


def list_models(pretrained=False):
    """Names of the registered models, sorted; ``pretrained=True``: only those
    whose trained weights ship with the package."""
    return sorted(name for name, p in _REGISTRY.items() if p.has_weights or not pretrained)


def info(name):
    """The facts of a zoo entry's model card, as a dict.

    Keys: ``name``, ``model_class``, ``config``, ``description``, ``dataset``,
    ``train`` (the recipe), ``paper_result``, ``pretrained`` (bool),
    ``parameters`` (of the full-size model),
    ``measured`` (our measured result and how it was obtained: the ``trained``
    facts of :class:`Preset`, or None), ``published_weights`` (weights others
    published that the entry converts and loads, see :class:`Preset`, or None),
    ``card`` (the card's path in the repository, ``zoo/<name>.md``).
    """
    preset = get_preset(name)
    return {
        "name": preset.name,
        "model_class": preset.model_class.__name__,
        "config": dict(preset.config),
        "description": preset.description,
        "dataset": preset.dataset,
        "train": dict(preset.train),
        "paper_result": preset.paper_result,
        "pretrained": preset.has_weights,
        "parameters": preset.parameters,
        "measured": None if preset.trained is None else dict(preset.trained),
        "published_weights": None if preset.published is None else dict(preset.published),
        "card": f"zoo/{preset.name}.md",
    }


def get_preset(name):
    """The :class:`Preset` registered as ``name``; unknown names raise
    :class:`UnknownModelError` naming the close matches."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown zoo model {name!r}.{hint} Available: {', '.join(list_models())}."
        )
    return _REGISTRY[name]


def sha256_of(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_path(name):
    """The packaged weights file of ``name``, checked against its sha256.

    Raises:
        ValueError: the entry has no trained weights (the message lists those that
            have), or the file is missing or does not match its sha256.
    """
    preset = get_preset(name)
    if not preset.has_weights:
        have = ", ".join(list_models(pretrained=True)) or "none yet"
        raise ValueError(
            f"No pretrained weights are shipped for {name!r}; use weights=None to build it "
            f"with fresh weights, or pass a path to weights you trained. Entries with "
            f"weights: {have}."
        )
    path = importlib.resources.files("keras_pixel.zoo") / "weights" / preset.trained["weights"]
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"The pretrained weights of {name!r} are missing from the package: {path}")
    _check_hash(path, preset.trained["sha256"])
    return path


def _check_hash(path, expected):
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ValueError(
            f"{path} is corrupt or not the expected file: sha256 {actual}, expected {expected}."
        )


def _is_url(weights):
    return isinstance(weights, str) and urllib.parse.urlparse(weights).scheme in (
        "http",
        "https",
        "file",
    )


def download(url, file_hash):
    """Downloads ``url`` once into the Keras cache (``~/.keras/keras_pixel/``) with
    ``keras.utils.get_file`` and checks its sha256; later calls reuse the file.

    Raises:
        ValueError: the download does not match ``file_hash`` (the bad file is
            removed) or no hash was given.
    """
    if not file_hash:
        raise ValueError(
            f"Pass file_hash= (the sha256 of the file) to load weights from {url}: "
            "downloads are always checked."
        )
    file_hash = str(file_hash).strip().lower()
    fname = os.path.basename(urllib.parse.urlparse(url).path)
    if not fname.endswith((".weights.h5", ".keras")):
        raise ValueError(f"A weights URL must end in .weights.h5 or .keras, got {url}.")
    if CACHE_DIR is not None:
        # keras.utils.get_file falls back to /tmp/.keras for a folder that does
        # not exist yet.
        os.makedirs(CACHE_DIR, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname,
            origin=url,
            file_hash=file_hash,
            hash_algorithm="sha256",
            cache_dir=CACHE_DIR,
            cache_subdir="keras_pixel",
        )
    except ValueError as error:
        raise ValueError(f"The download of {url} failed the sha256 check: {error}") from error
    except Exception as error:  # keras.utils.get_file raises a bare Exception for URL errors
        raise ConnectionError(f"Could not download {url}: {error}") from None
    _check_hash(path, file_hash)
    return path


SHIPPED = "default"
"""The default of :func:`load`'s ``weights``: the shipped weights where the entry
has them, else fresh weights and a ``UserWarning``."""


def load(name, weights=SHIPPED, file_hash=None, **overrides):
    """Builds a zoo model with its pretrained weights, or with the weights you name.

    Like keras-hub's ``from_preset``, the shipped weights are loaded unless told
    otherwise.

    Args:
        name: a registered name (see :func:`list_models`).
        weights: ``"default"`` (the default): the weights we trained where the
            entry ships them (see :func:`list_models` with ``pretrained=True``);
            for an entry without them, or when ``overrides`` change the shapes
            of the weights, fresh weights and a ``UserWarning`` that says so.
            None: fresh weights, no warning. ``"pretrained"``: the shipped
            weights, checked against their sha256, or a ``ValueError`` where
            there are none. A path to a ``.weights.h5`` file or a ``.keras``
            archive saved from the same architecture, or an ``http(s)://`` URL
            of such a file, downloaded once into the Keras cache and checked
            against ``file_hash``. For PixelCNN++ also an openai/pixel-cnn
            TensorFlow 1 checkpoint (``.../params_cifar.ckpt``, its ``.index``
            or its folder), converted on the fly with its Polyak-averaged
            weights (see :mod:`keras_pixel.convert`).
        file_hash: sha256 of the file behind a URL (required for URLs; the
            entry's own hash is used when the URL names its packaged file).
        **overrides: constructor arguments that replace the preset's (a smaller
            ``num_layers`` for a test-sized model, say).

    Returns:
        The model, built and compiled with the entry's recipe
        (:meth:`Preset.optimizer`), so ``fit`` and ``evaluate`` work at once;
        ``compile`` again for other settings. A corrupt file or one of another
        architecture raises ``ValueError`` and no model is returned. Read a
        training checkpoint with ``weights=path``, which loads it before
        compiling; ``load_weights`` on the compiled model warns that it skips
        the checkpoint's optimizer state (Adam's moments, not loaded either way).
    """
    preset = get_preset(name)
    model = _load(preset, weights, file_hash, overrides)
    model.compile(optimizer=preset.optimizer())
    return model


def _load(preset, weights, file_hash, overrides):
    name = preset.name
    if isinstance(weights, str) and weights == SHIPPED:
        return _load_shipped_or_fresh(preset, overrides)
    if isinstance(weights, str) and weights == "pretrained":
        path = pretrained_path(name)
    elif _is_url(weights):
        if file_hash is None and preset.has_weights:
            if weights.endswith("/" + preset.trained["weights"]):
                file_hash = preset.trained["sha256"]
        path = download(weights, file_hash)
    elif weights is None:
        return preset.build(**overrides)
    else:
        path = os.fspath(weights)
    model = preset.build(**overrides)
    _load_file(model, path, name)
    return model


def _load_shipped_or_fresh(preset, overrides):
    model = preset.build(**overrides)
    if not preset.has_weights:
        warnings.warn(
            f"No pretrained weights are shipped for {preset.name!r}: this model has fresh, "
            "untrained weights. Pass weights=None to ask for fresh weights (and silence this "
            "warning), or weights=PATH to load weights you trained.",
            UserWarning,
            stacklevel=4,
        )
        return model
    path = pretrained_path(preset.name)
    if overrides and _file_shapes(path) != _model_shapes(model):
        warnings.warn(
            f"The pretrained weights of {preset.name!r} do not fit the overridden "
            f"configuration {overrides}: this model has fresh, untrained weights. Pass "
            "weights=None to ask for fresh weights (and silence this warning).",
            UserWarning,
            stacklevel=4,
        )
        return model
    _load_file(model, path, preset.name)
    return model


def _load_file(model, path, name):
    from keras_pixel.convert import is_checkpoint, load_openai_checkpoint

    if is_checkpoint(path):
        load_openai_checkpoint(model, path)
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"No weights file at {path}.")
    try:
        if path.endswith(".keras"):
            source = keras.saving.load_model(path, compile=False)
            _check_same_architecture(model, source, path)
            model.set_weights(source.get_weights())
        elif path.endswith(".weights.h5"):
            _check_weights_file(model, path)
            model.load_weights(path)
        else:
            raise ValueError(
                f"Weights must be a .weights.h5 or .keras file (or, for PixelCNN++, an "
                f"openai/pixel-cnn checkpoint), got {path}."
            )
    except (OSError, KeyError) as error:
        raise ValueError(f"Could not load weights from {path} into {name!r}: {error}") from error


def _file_shapes(path):
    """Sorted shapes of the model's arrays in a ``.weights.h5`` file (without the
    optimizer's, which a compiled model's ``save_weights`` adds: the epoch
    checkpoints of ``keras-pixel train``)."""
    import h5py

    shapes = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, item: (
                shapes.append(tuple(item.shape))
                if isinstance(item, h5py.Dataset) and not name.startswith("optimizer/")
                else None
            )
        )
    return sorted(shapes)


def _model_shapes(model):
    return sorted(tuple(w.shape) for w in model.weights)


def _check_weights_file(model, path):
    """Refuses a ``.weights.h5`` whose arrays are not the model's (Keras loads a
    file of a smaller or larger model partially, without a word)."""
    shapes, expected = _file_shapes(path), _model_shapes(model)
    if shapes != expected:
        raise ValueError(
            f"{path} holds a different architecture ({len(shapes)} arrays) than the model "
            f"being loaded ({len(expected)} weights)."
        )


def _check_same_architecture(model, source, path):
    shapes = [tuple(w.shape) for w in model.weights]
    source_shapes = [tuple(w.shape) for w in source.weights]
    if shapes != source_shapes:
        raise ValueError(
            f"{path} holds a different architecture ({len(source_shapes)} weights) than the "
            f"model being loaded ({len(shapes)} weights)."
        )
