"""``keras-pixel``: train, evaluate, sample from and complete with zoo models."""

import argparse
import ast
import json
import math
import os
import secrets
import sys

EPILOG = """\
examples:
  keras-pixel list
  keras-pixel sample pixelcnn_mnist --num 16 --output mnist.png   (the shipped weights)
  keras-pixel train pixelcnn_digits --dataset digits --output runs/digits
  keras-pixel evaluate pixelcnn_digits --weights runs/digits/model.keras --dataset digits
  keras-pixel sample pixelcnn_digits --weights runs/digits/model.keras --num 16 --output s.png
  keras-pixel complete pixelcnn_digits --weights runs/digits/model.keras --known-rows 4 \\
      --dataset digits --output completions.png
  keras-pixel export pixelcnn_digits serving/ --weights runs/digits/model.keras --version 1

datasets (--dataset): digits (scikit-learn 8x8 digits, offline), mnist (idx files in
--data-dir or $KERAS_PIXEL_MNIST_DIR, else tensorflow-datasets), cifar10, tfds:NAME,
idx:DIR, folder:DIR, npz:FILE.
"""


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text):
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def _number(text, kind, ok, what):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _parse_overrides(items):
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--override takes KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def _weights_arg(args, fresh_by_default=False):
    """The ``weights=`` of ``zoo.load`` for ``--weights``: the shipped weights by
    default (``train``: fresh ones), ``none`` for fresh ones. An entry that ships
    none is refused unless ``--weights`` names a file or says ``none``: a sample
    grid of noise from an untrained model is never what was asked for."""
    from keras_pixel import zoo

    if args.weights is None:
        if fresh_by_default:
            return None
        if not zoo.get_preset(args.model).has_weights:
            raise ValueError(
                f"{args.model} ships no pretrained weights (see `keras-pixel list`): pass "
                "--weights FILE (a .keras or .weights.h5 you trained, or an http(s) URL) or "
                "--weights none for fresh, untrained weights."
            )
        return "pretrained"
    if args.weights.lower() == "none":
        return None
    return args.weights


def _initial_weights_sha256(args):
    """sha256 of the weights a ``train`` run started from, for its record: what
    ``pretrained`` names changes once a run is published, and a file can be
    overwritten. None for fresh weights; for a URL, its ``--weights-sha256``."""
    from keras_pixel import zoo

    weights = _weights_arg(args, fresh_by_default=True)
    if weights is None:
        return None
    if weights == "pretrained":
        return zoo.get_preset(args.model).trained["sha256"]
    if os.path.isfile(weights):
        return zoo.sha256_of(weights)
    return args.weights_sha256


def _load_model(args, fresh_by_default=False):
    from keras_pixel import zoo

    return zoo.load(
        args.model,
        weights=_weights_arg(args, fresh_by_default),
        file_hash=args.weights_sha256,
        **_parse_overrides(args.override),
    )


def _load_data(args, model, split):
    from keras_pixel import data, zoo

    if args.dataset is None:
        args.dataset = zoo.get_preset(args.model).dataset or "digits"
    images, labels = data.load(args.dataset, split, data_dir=args.data_dir)
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise ValueError(
            f"dataset {args.dataset!r} has images of shape {images.shape[1:]}, but "
            f"{args.model} models {tuple(model.image_shape)}; pick a matching dataset or "
            f"pass --override image_shape=..."
        )
    if getattr(args, "binarize", False) and split != "train":
        images = data.binarize(images, seed=0, num_values=model.num_values)
    if getattr(args, "max_images", None) is not None:
        images = images[: args.max_images]
        labels = None if labels is None else labels[: args.max_images]
    if not model.conditional:
        return images, None
    if labels is None:
        raise ValueError(f"{args.model} is conditional but dataset {args.dataset!r} has no labels.")
    model.check_class_ids(labels)
    return images, labels


def _sample_labels(args, model, num):
    """The classes of `sample`/`train` for ``num`` images, one row of the grid per
    class: ``(labels, grid keyword arguments)``; the classes are --labels, or
    0, 1, 2, ... (None and no layout for an unconditional model)."""
    if not model.conditional:
        if getattr(args, "labels", None):
            raise ValueError(f"{args.model} is unconditional: it takes no --labels.")
        return None, {}
    if getattr(args, "labels", None):
        classes = [int(v) for v in args.labels.split(",")]
    elif model.num_classes is None:
        raise ValueError(f"{args.model} is conditioned on vectors; sample it from Python.")
    else:
        classes = list(range(min(model.num_classes, num)))
    per_row = -(-num // len(classes))
    labels = [c for c in classes for _ in range(per_row)][:num]
    rows = -(-len(labels) // per_row)
    return labels, dict(ncols=per_row, row_labels=[f"{c}" for c in classes[:rows]])


def _write_json(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)


def cmd_list(args):
    from keras_pixel import zoo

    names = zoo.list_models()
    width = max(len(n) for n in names)
    print(f"{'NAME':<{width}}  {'FAMILY':<16} {'SHAPE':<8} {'WEIGHTS':<10} DESCRIPTION")
    for name in names:
        preset = zoo.get_preset(name)
        shape = "x".join(str(d) for d in preset.config.get("image_shape", ()))
        kind = preset.model_class.__name__
        weights = "pretrained" if preset.has_weights else "-"
        print(f"{name:<{width}}  {kind:<16} {shape:<8} {weights:<10} {preset.description}")


#: What ``train`` writes into ``--output``; ``metrics.json`` is written last and
#: marks a finished run.
RUN_FILES = (
    "model.keras",
    "samples.png",
    "history.csv",
    "metrics.json",
    "run.json",
    "checkpoints",
    "samples",
    "logs",
    "backup",
)


def _finished_run(output):
    """The metrics of the finished run in ``output``, or None."""
    path = os.path.join(output, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _remove_run(output):
    """Removes what an earlier run wrote into ``output`` (``--overwrite``)."""
    import shutil

    for name in RUN_FILES:
        path = os.path.join(output, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def _check_same_run(output, model_name, model):
    """Records what ``output`` trains in ``run.json``, or refuses to resume a backup
    that another model (or configuration) left there."""
    identity = {"model": model_name, "weights": [list(w.shape) for w in model.weights]}
    path = os.path.join(output, "run.json")
    if os.path.exists(path) and os.path.exists(os.path.join(output, "backup")):
        with open(path) as f:
            recorded = json.load(f)
        if recorded != identity:
            raise ValueError(
                f"{output} holds an interrupted run of {recorded.get('model')} with other "
                f"weights than this {model_name}: rerun it with its own options, pass "
                "--overwrite to start over there, or choose another --output."
            )
    _write_json(path, identity)


def _read_history(path):
    """``history.csv`` (one row per finished epoch, over every resume; a row
    written twice around an interruption counts once) -> ``{metric: [values]}``."""
    import csv

    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row.pop("epoch"))] = row
    history = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if value not in ("", None):
                history.setdefault(key, []).append(float(value))
    return history


def _resumed_epoch(backup_dir):
    """Epochs an interrupted run finished, from its BackupAndRestore metadata."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f).get("epoch", 0))


def cmd_train(args):
    import keras

    from keras_pixel import data, training, zoo

    preset = zoo.get_preset(args.model)
    recipe = preset.train
    finished = _finished_run(args.output)
    if finished is not None and not args.overwrite:
        print(
            f"{args.output} holds a finished run of {finished.get('model')} (test bits/dim "
            f"{finished.get('test_bits_per_dim')}); left as it is. Pass --overwrite to retrain "
            "into it (its files are removed first), or choose another --output."
        )
        return
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    epochs = args.epochs if args.epochs is not None else recipe.get("epochs", 10)
    batch_size = args.batch_size if args.batch_size is not None else recipe.get("batch_size", 32)
    learning_rate = (
        args.learning_rate if args.learning_rate is not None else recipe.get("learning_rate", 1e-3)
    )
    lr_decay = args.lr_decay if args.lr_decay is not None else recipe.get("lr_decay")
    ema = args.ema if args.ema is not None else recipe.get("ema")
    if args.dataset is None:
        args.dataset = preset.dataset or "digits"
    args.binarize = args.binarize or recipe.get("binarize", False)
    if args.logical_cpus:
        training.use_logical_cpus(args.logical_cpus)
    strategy = training.get_strategy(args.strategy, tpu=args.tpu)
    chief = training.is_chief()
    output = args.output if chief else os.path.join(args.output, f"worker_{training.task()[1]}")
    if args.dtype_policy:
        _warn_if_bfloat16_is_emulated(args.dtype_policy, args.tpu)
        keras.config.set_dtype_policy(args.dtype_policy)
    with strategy.scope():
        model = _load_model(args, fresh_by_default=True)
        jit_compile = args.jit_compile
        if jit_compile is None:
            jit_compile = model.xla_faster and model.image_shape[0] * model.image_shape[1] >= 256
        if jit_compile and args.seed is not None:
            if args.jit_compile:
                import warnings

                warnings.warn(
                    "--jit-compile is off with --seed: --seed makes TensorFlow's ops "
                    "deterministic, and Keras does not compile deterministic ops with XLA. "
                    "Drop --seed to train with XLA.",
                    stacklevel=2,
                )
            jit_compile = False
        model.compile(
            optimizer=training.make_optimizer(
                learning_rate, lr_decay=lr_decay, ema=ema, warmup_steps=args.warmup_steps
            ),
            jit_compile=jit_compile,
        )
        jit_compile = bool(model.jit_compile)
    train_images, train_labels = _load_data(args, model, "train")
    test_images, test_labels = _load_data(args, model, "test")
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"--batch-size {batch_size} (the global batch) must split evenly over the "
            f"{replicas} replicas of --strategy {args.strategy}."
        )
    print(
        f"Training {args.model} ({model.count_params():,} parameters) on {args.dataset}: "
        f"{len(train_images)} training, {len(test_images)} test images, {epochs} epochs, "
        f"global batch {batch_size} over {replicas} replica(s), "
        f"dtype policy {keras.config.dtype_policy().name}, jit_compile={jit_compile}"
        + (f", EMA {ema}" if ema else "")
        + "."
    )
    if args.overwrite and chief:
        _remove_run(output)
    os.makedirs(output, exist_ok=True)
    if chief:
        _check_same_run(output, args.model, model)
    resumed = _resumed_epoch(os.path.join(output, "backup"))
    if resumed:
        print(f"Resuming an interrupted run: {resumed} of {epochs} epochs were done.")
    train_ds = data.make_dataset(
        train_images,
        train_labels,
        batch_size=batch_size,
        seed=args.seed,
        repeat=bool(args.steps_per_epoch),
        binarize_dynamic=args.binarize,
        num_values=model.num_values,
        drop_remainder=replicas > 1,
    )
    test_ds = data.make_dataset(test_images, test_labels, batch_size=batch_size, shuffle=False)
    if replicas > 1:
        train_ds, test_ds = training.distributable(train_ds), training.distributable(test_ds)
    labels, _ = _sample_labels(args, model, args.num_samples)
    sample_seed = 0 if args.seed is None else args.seed
    callbacks = training.training_callbacks(
        output,
        ema=bool(ema),
        sample_every=args.sample_every if chief else 0,
        num_samples=args.num_samples,
        seed=sample_seed,
        labels=labels,
        tensorboard=chief,
        checkpoints=chief,
        history=chief,
        keep_backup=True,
    )
    history = model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_data=test_ds,
        verbose=args.verbose,
        shuffle=False,
        callbacks=callbacks,
    )
    if not chief:
        print("worker done (the chief writes the outputs).")
        return
    if ema and not history.history:
        # Every epoch was done before this process: the backup restored the raw
        # weights and no epoch end swapped the averaged ones in.
        model.optimizer.finalize_variable_values(model.trainable_variables)
    _publish_run(args, model, output, test_images, test_labels, labels, sample_seed, {
        "model": args.model,
        "overrides": _parse_overrides(args.override),
        "initial_weights": args.weights,
        "initial_weights_sha256": _initial_weights_sha256(args),
        "dataset": args.dataset,
        "epochs": epochs,
        "resumed_after_epoch": resumed,
        "batch_size": batch_size,
        "strategy": args.strategy,
        "replicas": replicas,
        "dtype_policy": keras.config.dtype_policy().name,
        "jit_compile": jit_compile,
        "learning_rate": learning_rate,
        "lr_decay": lr_decay,
        "warmup_steps": args.warmup_steps,
        "ema": ema,
        "seed": args.seed,
        "parameters": model.count_params(),
    })  # fmt: skip


def _warn_if_bfloat16_is_emulated(policy, tpu=None):
    """Warns when ``mixed_bfloat16`` would run on a CPU without bfloat16
    instructions (no GPU or TPU): TensorFlow emulates them there, and training is
    several times slower than in float32 (AMD EPYC, AVX2 only,
    ``benchmarks/bench_flops.py``: PixelCNN++ 10.2 against 67.0 images/s, Row
    LSTM 15.4 against 78.2)."""
    import warnings

    import tensorflow as tf

    from keras_pixel import cpu

    if policy != "mixed_bfloat16" or tpu or tf.config.list_logical_devices("GPU"):
        return
    if not cpu.has_native_bfloat16():
        warnings.warn(
            "--dtype-policy mixed_bfloat16: this CPU has no bfloat16 instructions "
            "(avx512_bf16 or amx_bf16), so TensorFlow emulates them and training runs "
            "several times slower than in float32 (PixelCNN++ on an AVX2 CPU: 10 against "
            "67 images/s); float32 is faster here.",
            stacklevel=2,
        )


def _float32_twin(model):
    """The same model and weights computing in float32.

    A run under ``mixed_bfloat16`` / ``mixed_float16`` is validated in 16 bits;
    a model loaded as float32 (the zoo's default) can measure differently: a
    ``pixelcnn_mnist`` fine-tune at a low learning rate reached 1.0289 bits/dim
    in bfloat16 and 1.0778 in float32 (docs/training.md)."""
    import keras

    config = model.get_config()
    config.pop("dtype", None)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        twin = type(model).from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def _publish_run(args, model, output, test_images, test_labels, labels, seed, metrics):
    """The final artifacts of a run, each written whole (temporary name, then
    rename), ``metrics.json`` last; only then is the backup removed. A run killed
    anywhere before that resumes from its backup when rerun and redoes this."""
    import shutil

    from keras_pixel.images import save_image_grid

    partial = os.path.join(output, "model.partial.keras")
    model.save(partial)
    os.replace(partial, os.path.join(output, "model.keras"))
    compute_bpd = None
    if model.compute_dtype != "float32":
        compute_bpd = model.bits_per_dim(test_images, labels=test_labels)
        model = _float32_twin(model)
    test_bpd = model.bits_per_dim(test_images, labels=test_labels)
    samples = model.sample(args.num_samples, seed=seed, progress=True, labels=labels)
    grid = save_image_grid(
        samples, os.path.join(output, "samples.png"), num_values=model.num_values
    )
    history = _read_history(os.path.join(output, "history.csv"))
    train_seconds = sum(history.pop("epoch_seconds", []))
    metrics.update(
        train_seconds=round(train_seconds, 1),
        test_bits_per_dim=test_bpd,
        test_bits_per_dim_in_compute_dtype=compute_bpd,
        history=history,
    )
    _write_json(os.path.join(output, "metrics.json"), metrics)
    shutil.rmtree(os.path.join(output, "backup"), ignore_errors=True)
    print(f"test bits/dim: {test_bpd:.4f}  (float32; trained in {train_seconds:.0f} s)")
    if compute_bpd is not None:
        print(
            f"test bits/dim in the training policy's {metrics['dtype_policy']}: "
            f"{compute_bpd:.4f} (the validation figures above); a model loaded as "
            "float32, as the zoo does, measures the float32 figure"
        )
    print(f"wrote {os.path.join(output, 'model.keras')} and {grid}")


def cmd_evaluate(args):
    from keras_pixel import zoo
    from keras_pixel.losses import nats_to_bits_per_dim

    args.binarize = args.binarize or zoo.get_preset(args.model).train.get("binarize", False)
    model = _load_model(args)
    images, labels = _load_data(args, model, args.split)
    if len(images) == 0:
        raise ValueError(f"dataset {args.dataset!r} ({args.split} split) holds no images.")
    from tqdm.auto import tqdm

    total, size = 0.0, args.batch_size
    with tqdm(total=len(images), desc="evaluating", unit="image", file=sys.stderr) as bar:
        for start in range(0, len(images), size):
            part = slice(start, start + size)
            log_prob = model.log_prob(
                images[part], batch_size=size, labels=None if labels is None else labels[part]
            )
            total += float(log_prob.astype("float64").sum())
            bar.update(len(images[part]))
    nats = -total / len(images)
    bpd = nats_to_bits_per_dim(nats, model.num_dims)
    print(
        json.dumps(
            {
                "model": args.model,
                "dataset": args.dataset,
                "split": args.split,
                "images": len(images),
                "bits_per_dim": bpd,
                "nats_per_image": nats,
            }
        )
    )


def cmd_sample(args):
    from keras_pixel.images import save_image_grid

    seed = secrets.randbits(62) if args.seed is None else args.seed
    found = _sample_from_cache(args, seed)
    if found is None:
        samples, model, layout = _sample_and_cache(args, seed)
        num_values = model.num_values
    else:
        samples, num_values, layout = found
    path = save_image_grid(samples, args.output, num_values=num_values, **layout)
    print(f"wrote {path}")


def _sample_from_cache(args, seed):
    """`sample` with a cached sampler for this request, without building the
    model: ``(samples, num_values, grid layout)``, or None when there is none
    (or it cannot be read: it is then removed). The same images as
    ``model.sample``. With ``KERAS_PIXEL_AOT=on``, a sampler compiled ahead of
    time for ``--num`` images (:mod:`keras_pixel.sampler_aot`: not always the
    same images) is used first, without importing TensorFlow; then the sampling
    server (:mod:`keras_pixel.sampler_server`), also without TensorFlow; else
    the cached SavedModel (:mod:`keras_pixel.sampler_cache`), after which a
    server is started for the next call."""
    from keras_pixel import sampler_aot, sampler_cache
    from keras_pixel.validation import MAX_IMAGES

    if sampler_cache.cache_dir() is None or args.num > MAX_IMAGES:
        return None
    key = sampler_cache.args_key(args)
    path = None if key is None else sampler_cache.find(key)
    if path is None:
        return None
    compiled = sampler_aot.find(path, args.num)
    if compiled is not None:
        found = _cached_draw(args, seed, compiled, _load_compiled, "compiled")
        if found is not None:
            return found
    from keras_pixel import sampler_server

    client = sampler_server.connect()
    if client is not None:
        try:
            return _cached_draw(args, seed, path, _load_served(client, key), "server")
        except sampler_server.ServerError as error:
            import warnings

            warnings.warn(
                f"the sampling server failed ({str(error)[:200]}); sampling without it.",
                stacklevel=2,
            )
    from keras_pixel import _quiet_command_line

    _quiet_command_line()
    found = _cached_draw(args, seed, path, _load_saved_model, "cached")
    if found is not None:
        try:
            sampler_server.spawn(key, args.num, _labels_for_server(args, path))
        except OSError as error:
            import warnings

            warnings.warn(f"no sampling server was started: {error}", stacklevel=2)
    return found


def _load_compiled(path):
    from keras_pixel.sampler_aot import CompiledSampler

    sampler = CompiledSampler(path)
    return sampler.info, lambda num, temperature, seed, labels: sampler.draw(
        temperature, seed, labels
    )


def _load_served(client, key):
    """A ``load`` for :func:`_cached_draw` that draws through the sampling
    server's ``client`` (:mod:`keras_pixel.sampler_server`)."""

    def load(path):
        from keras_pixel import sampler_cache

        return sampler_cache.read_info(path), lambda num, temperature, seed, labels: client.draw(
            key, num, temperature, seed, labels
        )

    return load


def _labels_for_server(args, path):
    """The class ids the server's first draw uses (those of this command, where
    it has any), or None."""
    import types

    from keras_pixel import sampler_cache

    info = sampler_cache.read_info(path)
    labels, _ = _sample_labels(args, types.SimpleNamespace(**info), args.num)
    return labels


def _load_saved_model(path):
    from keras_pixel import sampler_cache

    info = sampler_cache.read_info(path)
    signature = sampler_cache.load(path)
    return info, lambda num, temperature, seed, labels: sampler_cache.draw(
        signature, num, temperature, seed, labels
    )


def _cached_draw(args, seed, path, load, kind):
    """Draws ``args.num`` images with the cached sampler at ``path`` opened by
    ``load`` (-> its info and a draw function); None if it cannot be read."""
    import shutil
    import types
    import warnings

    from keras_pixel.validation import check_class_ids, check_temperature

    try:
        info, draw = load(path)
    except Exception as error:  # noqa: BLE001 - any unreadable entry is skipped
        warnings.warn(
            f"the {kind} sampler {path} could not be read ({type(error).__name__}: "
            f"{str(error)[:200]}); removed, sampling without it.",
            stacklevel=3,
        )
        shutil.rmtree(path, ignore_errors=True)
        return None
    temperature = check_temperature(args.temperature)
    labels, layout = _sample_labels(args, types.SimpleNamespace(**info), args.num)
    if labels is not None:
        check_class_ids(labels, info["num_classes"])
    from tqdm.auto import tqdm

    from keras_pixel import _native_stderr_to_devnull

    with (
        _native_stderr_to_devnull(),
        tqdm(total=args.num, desc=f"sampling ({kind})", unit="image", file=sys.stderr) as bar,
    ):
        samples = draw(args.num, temperature, seed, labels)
        bar.update(args.num)
    return samples, info["num_values"], layout


def _sample_and_cache(args, seed):
    """`sample` without a cached sampler: builds the model, samples, then starts
    the detached builder of the cached sampler for the next call (a cache that
    cannot be written only warns). Returns ``(samples, model, grid layout)``."""
    import warnings

    from keras_pixel import (
        _native_stderr_to_devnull,
        _quiet_command_line,
        _register_serializables,
        sampler_cache,
    )
    from keras_pixel.validation import MAX_IMAGES

    _quiet_command_line()
    _register_serializables()
    model = _load_model(args)
    labels, layout = _sample_labels(args, model, args.num)
    with _native_stderr_to_devnull():
        samples = model.sample(
            args.num,
            temperature=args.temperature,
            seed=seed,
            method=args.method,
            progress=True,
            labels=labels,
        )
    cacheable = sampler_cache.cache_dir() is not None and args.num <= MAX_IMAGES
    key = sampler_cache.args_key(args) if cacheable else None
    if key is not None and not (model.conditional and model.num_classes is None):
        try:
            sampler_cache.spawn_builder(sampler_cache.builder_argv(args, args.num, labels), key)
        except OSError as error:
            warnings.warn(f"the sampler was not cached: {error}", stacklevel=2)
    return samples, model, layout


def cmd_complete(args):
    import numpy as np

    from keras_pixel.images import save_image_grid

    model = _load_model(args)
    images, labels = _load_data(args, model, "test")
    images = images[: args.num]
    labels = None if labels is None else labels[: args.num]
    completions = model.complete(
        images,
        args.known_rows,
        temperature=args.temperature,
        seed=args.seed,
        method=args.method,
        progress=True,
        labels=labels,
    )
    occluded = images.copy()
    occluded[:, args.known_rows :] = 0
    rows = np.concatenate([occluded, completions, images])
    path = save_image_grid(rows, args.output, ncols=len(images), num_values=model.num_values)
    print(f"wrote {path} (rows: occluded, completed, original)")


def cmd_export(args):
    from keras_pixel.export import export

    model = _load_model(args)
    paths = export(
        model,
        args.outdir,
        format=args.format,
        model_name=args.model_name or args.model,
        version=args.version,
        overwrite=args.overwrite,
        max_images=args.max_images,
    )
    for path in paths:
        print(f"wrote {path}")


def cmd_convert(args):
    from keras_pixel import convert, zoo

    model = zoo.load(args.model, weights=None, **_parse_overrides(args.override))
    path = convert.FORMATS[args.format](
        model, args.checkpoint, args.output, use_ema=not args.raw, overwrite=args.overwrite
    )
    print(f"wrote {path}")
    print(f"load it with: keras_pixel.zoo.load({args.model!r}, weights={path!r})")


def method_arg(p):
    """The --method option of `sample` and `complete`."""
    p.add_argument(
        "--method",
        choices=["cached", "naive"],
        default="cached",
        help="cached: per-layer caches, only what each subpixel changes (default); "
        "naive: a full forward pass per subpixel. Same images for the same --seed.",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-pixel",
        description="Train, evaluate and sample autoregressive image models (PixelCNN family). "
        "MODEL is a zoo name: see `keras-pixel list`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (before COMMAND)"
    )
    parser.add_argument(
        "--verbose",
        dest="tensorflow_logs",
        action="store_true",
        help="show TensorFlow's start-up log lines (oneDNN, CUDA; before COMMAND; "
        "hidden otherwise, see keras_pixel/__init__.py)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(
        p,
        weights_help="weights to load: by default the pretrained weights shipped with the "
        "package (an entry without them is refused); a .keras or .weights.h5 file; an "
        "http(s) URL; 'pretrained'; or 'none' for fresh, untrained weights",
    ):
        p.add_argument("model", metavar="MODEL", help="zoo name, see `keras-pixel list`")
        p.add_argument("--weights", default=None, help=weights_help)
        p.add_argument(
            "--weights-sha256", default=None, help="sha256 of the file behind a --weights URL"
        )
        p.add_argument(
            "--override",
            action="append",
            metavar="KEY=VALUE",
            help="change a hyperparameter, e.g. --override num_layers=2 (repeatable)",
        )
        p.add_argument(
            "--seed",
            type=non_negative_int,
            default=0,
            help="random seed (default 0; train: none unless given, and with it the run is "
            "reproducible: seeded weights, data order and TensorFlow's deterministic ops)",
        )

    def data_args(p):
        p.add_argument(
            "--dataset",
            default=None,
            help="dataset spec (default: the zoo entry's dataset, e.g. mnist for *_mnist)",
        )
        p.add_argument("--data-dir", default=None, help="tfds data_dir or MNIST idx folder")
        p.add_argument(
            "--binarize",
            action="store_true",
            help="dynamically binarize (binarized-MNIST experiments)",
        )
        p.add_argument("--max-images", type=positive_int, default=None, help="use only the first N")

    p = sub.add_parser("list", help="list the zoo's models (and which have pretrained weights)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "train",
        help="train a zoo model with model.fit; writes model.keras, "
        "samples.png and metrics.json to --output",
    )
    model_args(
        p,
        "weights to start from (fine-tuning): 'pretrained', a .keras or .weights.h5 file, "
        "or an http(s) URL (default: fresh weights)",
    )
    data_args(p)
    p.add_argument("--epochs", type=positive_int, default=None, help="default: the preset's recipe")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--learning-rate", type=positive_float, default=None)
    p.add_argument("--steps-per-epoch", type=positive_int, default=None)
    p.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the train step with XLA (default: on for Gated PixelCNN on images of "
        "16x16 and up, where it measured 1.3x faster on CPU; off for smaller images, where "
        "compiling costs more than it saves, and for PixelCNN, PixelRNN and PixelCNN++, which "
        "train faster without it on CPU; always off with --seed, whose deterministic ops "
        "Keras does not compile)",
    )
    p.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multiworker", "tpu"],
        default="default",
        help="tf.distribute strategy: mirrored (this machine's GPUs, or its logical CPUs), "
        "multiworker (cluster from TF_CONFIG; run the same command on every worker), tpu",
    )
    p.add_argument("--tpu", default=None, help="TPU name or grpc:// address for --strategy tpu")
    p.add_argument(
        "--logical-cpus",
        type=positive_int,
        default=None,
        help="split the CPU into N logical devices (to try --strategy mirrored without GPUs)",
    )
    p.add_argument(
        "--dtype-policy",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        default=None,
        help="Keras dtype policy (the likelihood is computed in float32 under any policy)",
    )
    p.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help="per-step learning-rate decay (PixelCNN++: 0.999995; default: the recipe's)",
    )
    p.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        default=0,
        help="linear learning-rate warm-up over the first N steps (default 0: none); "
        "for fine-tuning trained weights, where Adam's first full-rate steps undo much "
        "of the training, e.g. 500",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=None,
        help="Polyak averaging: decay of the moving average of the weights used for "
        "validation, checkpoints, sampling and the saved model (PixelCNN++: 0.9995; "
        "0 turns it off; default: the recipe's)",
    )
    p.add_argument(
        "--sample-every",
        type=non_negative_int,
        default=1,
        help="write samples/samples_epoch_N.png (and a TensorBoard image) every N epochs "
        "(0: only samples.png at the end)",
    )
    p.add_argument("--num-samples", type=positive_int, default=16, help="images in samples.png")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="retrain into an --output that holds a finished run (its files are removed "
        "first); without it a finished run is reported and left as it is",
    )
    p.add_argument(
        "--output",
        default="runs/latest",
        help="output folder: model.keras, samples.png, metrics.json, checkpoints/, samples/, "
        "logs/ (TensorBoard); backup/ while training: rerun the same command after an "
        "interruption to resume",
    )
    p.add_argument(
        "--verbose",
        type=int,
        default=2 if not sys.stdout.isatty() else 1,
        help="Keras verbosity: 1 progress bar, 2 one line per epoch",
    )
    p.set_defaults(func=cmd_train, seed=None)

    p = sub.add_parser("evaluate", help="report bits/dim and nats/image on a dataset split")
    model_args(p)
    data_args(p)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="draw images and save them as a PNG grid")
    model_args(p)
    p.add_argument("--num", type=positive_int, default=16, help="number of images")
    p.add_argument("--temperature", type=positive_float, default=1.0)
    p.add_argument(
        "--labels",
        default=None,
        help="conditional models: comma-separated classes, one row of the grid each "
        "(--num split between them; default 0, 1, 2, ...), labelled on the left",
    )
    p.add_argument("--output", default="samples.png", help="PNG file to write")
    method_arg(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("complete", help="complete the bottom of test images (PNG grid)")
    model_args(p)
    data_args(p)
    p.add_argument("--num", type=positive_int, default=8, help="number of test images")
    p.add_argument(
        "--known-rows", type=non_negative_int, required=True, help="rows kept from each image"
    )
    p.add_argument("--temperature", type=positive_float, default=1.0)
    p.add_argument("--output", default="completions.png", help="PNG file to write")
    method_arg(p)
    p.set_defaults(func=cmd_complete)

    p = sub.add_parser(
        "export",
        help="export for serving: SavedModel (TF Serving layout), LiteRT or ONNX",
        description="saved_model: OUTDIR/NAME/VERSION/ with signatures serving_default "
        "(log-likelihood), sample and complete; litert: OUTDIR/NAME.tflite (log-likelihood) "
        "and OUTDIR/NAME_next_subpixel.tflite (one sampling step); onnx: OUTDIR/NAME.onnx "
        "(log-likelihood).",
    )
    model_args(p)
    p.add_argument("outdir", metavar="OUTDIR", help="folder to write into")
    p.add_argument("--format", choices=["saved_model", "litert", "onnx"], default="saved_model")
    p.add_argument("--model-name", default=None, help="artifact name (default: MODEL)")
    p.add_argument("--version", type=positive_int, default=1, help="SavedModel version folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing artifacts")
    p.add_argument(
        "--max-images",
        type=positive_int,
        default=1024,
        help="SavedModel: the most images one sample/complete request may ask for (1024)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "convert",
        help="convert weights written by other code into a .weights.h5 of a zoo model",
        description="openai-pixelcnn-pp: a TensorFlow 1 checkpoint of openai/pixel-cnn's "
        "PixelCNN++ (the paper's CIFAR-10 model is params_cifar.ckpt in pxpp.zip) into "
        "pixelcnn_pp_cifar's weights. OUTPUT appears only if the conversion succeeds.",
    )
    p.add_argument("format", choices=["openai-pixelcnn-pp"], help="what wrote CHECKPOINT")
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="the checkpoint prefix (.../params_cifar.ckpt), its .index file or its folder",
    )
    p.add_argument("output", metavar="OUTPUT", help="the .weights.h5 file to write")
    p.add_argument(
        "--model",
        default="pixelcnn_pp_cifar",
        help="the zoo entry the checkpoint fits (default pixelcnn_pp_cifar)",
    )
    p.add_argument(
        "--override",
        action="append",
        metavar="KEY=VALUE",
        help="change a hyperparameter for a checkpoint of another size (repeatable)",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="take the raw weights instead of their Polyak averages (the paper evaluated "
        "the averages)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv=None):
    """Entry point of the ``keras-pixel`` console script.

    Known failures (bad values, missing or corrupt files, a full or read-only
    disk, an unreachable URL, a missing optional dependency) end in one
    ``error:`` line and exit code 2; ``--debug`` shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_pixel.validation import MissingDependencyError

    try:
        args.func(args)
    except (ValueError, OSError, MissingDependencyError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
