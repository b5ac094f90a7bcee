"""The registry of named models: presets as data, built on demand."""

import dataclasses
import difflib
import inspect
import os
from typing import Any

import keras

_REGISTRY = {}


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
    """

    name: str
    model_class: type
    config: dict
    description: str = ""
    dataset: str = ""
    paper_result: str | None = None
    train: dict = dataclasses.field(default_factory=dict)

    def build(self, **overrides: Any):
        """Builds the model with ``config`` updated by ``overrides``."""
        unknown = set(overrides) - set(_constructor_args(self.model_class))
        if unknown:
            raise ValueError(
                f"Unknown override(s) {sorted(unknown)} for {self.name}; "
                f"{self.model_class.__name__} takes {sorted(_constructor_args(self.model_class))}."
            )
        return self.model_class(**{**self.config, **overrides})


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

    Returns:
        The :class:`Preset`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A zoo name must be a non-empty string, got {name!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"{name!r} is already registered; pass overwrite=True to replace it.")
    preset = Preset(
        name, model_class, dict(config), description, dataset, paper_result, dict(train or {})
    )
    _REGISTRY[name] = preset
    return preset


def list_models():
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


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


def load(name, weights=None, **overrides):
    """Builds a zoo model, optionally with weights.

    Args:
        name: a registered name (see :func:`list_models`).
        weights: None for fresh weights; a path to a ``.weights.h5`` file or a
            ``.keras`` archive saved from the same architecture; ``"pretrained"``
            for the weights we trained (an error names the entries that have none).
        **overrides: constructor arguments that replace the preset's (a smaller
            ``num_layers`` for a test-sized model, say).

    Returns:
        The model, built.
    """
    preset = get_preset(name)
    if weights == "pretrained":
        raise ValueError(
            f"No pretrained weights are shipped for {name!r} yet; use weights=None to build "
            f"it with fresh weights, or pass a path to weights you trained."
        )
    model = preset.build(**overrides)
    if weights is None:
        return model
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No weights file at {path}.")
    try:
        if path.endswith(".keras"):
            source = keras.saving.load_model(path, compile=False)
            _check_same_architecture(model, source, path)
            model.set_weights(source.get_weights())
        elif path.endswith(".weights.h5"):
            model.load_weights(path)
        else:
            raise ValueError(f"Weights must be a .weights.h5 or .keras file, got {path}.")
    except (OSError, KeyError) as error:
        raise ValueError(f"Could not load weights from {path} into {name!r}: {error}") from error
    return model


def _check_same_architecture(model, source, path):
    shapes = [tuple(w.shape) for w in model.weights]
    source_shapes = [tuple(w.shape) for w in source.weights]
    if shapes != source_shapes:
        raise ValueError(
            f"{path} holds a different architecture ({len(source_shapes)} weights) than the "
            f"model being loaded ({len(shapes)} weights)."
        )
