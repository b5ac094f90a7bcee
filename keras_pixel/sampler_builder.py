"""The builder of :mod:`keras_pixel.sampler_cache`'s entries, run detached by
``keras-pixel sample`` after a cache miss: ``python -m keras_pixel.sampler_builder
MODEL [--weights W] [--override K=V ...] --method M --num N [--labels L] --key KEY``.

It loads the model as the command did (:func:`keras_pixel.cli._load_model`),
writes the cached sampler and compiles it once, in a fresh process, at the batch
size the command asked for; starts the sampling server
(:mod:`keras_pixel.sampler_server`) with it loaded, or has the running one
load it, and waits until it answers;
then, with ``KERAS_PIXEL_AOT=on`` and where the machine can
(:func:`keras_pixel.sampler_aot.available`), compiles it ahead of time for that
number of images (:mod:`keras_pixel.sampler_aot`). It runs at a lower priority
(``nice``) than the user's commands. A module of its own: the command imports
:mod:`keras_pixel.sampler_cache`, the builder imports the command.
"""

import argparse
import os
import subprocess
import sys

from keras_pixel import sampler_aot, sampler_cache, sampler_server


def main(argv=None):
    """The builder: checks that its arguments give the key the caller computed,
    loads the model as ``keras-pixel sample`` did, writes the cached sampler and compiles it
    once at ``--num`` images (filling XLA's persistent cache), starts the
    sampling server with it loaded (or has the running one load it), then, with
    ``KERAS_PIXEL_AOT=on`` and where the machine can, compiles it ahead of time
    for ``--num`` images. Returns at once (0) where another builder of the same
    entry is running (:func:`keras_pixel.sampler_cache.building`)."""
    sampler_cache.enable_xla_cache()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--warm"]:
        return _warm(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m keras_pixel.sampler_builder")
    parser.add_argument("model")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--weights-sha256", default=None)
    parser.add_argument("--override", action="append", default=[])
    parser.add_argument("--method", default="cached")
    parser.add_argument("--num", type=int, required=True)
    parser.add_argument("--labels", default=None)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)

    from keras_pixel import cli

    key = sampler_cache.args_key(args)
    if key != args.key:
        print(f"not cached: this request has key {key}, not {args.key}", file=sys.stderr)
        return 1
    with sampler_cache.building(key) as mine:
        if not mine:
            print(f"another builder is writing the cached sampler {key}", file=sys.stderr)
            return 0
        return _build(cli._load_model(args), key, args)


def _build(model, key, args):
    """Writes, compiles and serves the cached sampler of ``key`` (the builder's
    lock held)."""
    path = sampler_cache.write(model, key, model._sampling_method(args.method))
    # Compiled in a fresh process, as `keras-pixel sample` will load it: XLA's
    # cache key covers the names TensorFlow gives the loaded functions, which
    # depend on what the process traced before.
    warm = [sys.executable, "-m", "keras_pixel.sampler_builder", "--warm", path]
    subprocess.run(
        [*warm, "--num", str(args.num), *(["--labels", args.labels] if args.labels else [])],
        check=True,
    )
    print(f"cached sampler {path}", file=sys.stderr)
    labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    _serve(key, args.num, labels)
    if sampler_aot.available():
        compiled = sampler_aot.entry_path(path, args.num)
        try:
            method = model._sampling_method(args.method)
            root = sampler_cache.cache_dir()
            sampler_aot.compile_sampler(model, method, args.num, compiled, root)
        except (RuntimeError, ValueError, OSError) as error:
            print(f"no compiled sampler: {error}", file=sys.stderr)
        else:
            print(f"compiled sampler {compiled}", file=sys.stderr)
    return 0


def _serve(key, num, labels):
    """Starts the sampling server with the new sampler loaded, or has the one
    already running load it (a first draw of ``num`` images), and returns once
    it can answer: a finished builder means a fast next call (a running server
    took 4 s to load a new sampler on its first request)."""
    try:
        server = sampler_server.spawn(key, num, labels)
        if server is not None:
            if sampler_server.wait(server) is not None:
                print(f"sampling server ready (pid {server.pid})", file=sys.stderr)
            return
        client = sampler_server.connect()
        if client is not None:
            client.draw(key, num, 1.0, 0, labels)
            print(f"sampler loaded by the running server (pid {client.pid})", file=sys.stderr)
    except (OSError, sampler_server.ServerError) as error:
        print(f"no sampling server: {error}", file=sys.stderr)


def _warm(argv):
    """``--warm PATH --num N [--labels L]``: one call of a cached sampler, to
    fill XLA's persistent cache at that batch size."""
    parser = argparse.ArgumentParser(prog="python -m keras_pixel.sampler_builder --warm")
    parser.add_argument("path")
    parser.add_argument("--num", type=int, required=True)
    parser.add_argument("--labels", default=None)
    args = parser.parse_args(argv)
    labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    sampler_cache.sample(args.path, args.num, 1.0, 0, labels)
    return 0


if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(10)
    sys.exit(main())
