"""A resident sampling process: a warm ``keras-pixel sample`` in about a second,
with ``model.sample``'s images.

A warm ``keras-pixel sample`` that loads its cached SavedModel sampler
(:mod:`keras_pixel.sampler_cache`) spends most of its time starting TensorFlow
(``pixelcnn_pp_mnist --num 16`` on a 2-core AMD EPYC: import 5.0 s, loading
1.5 s, first call 2.8 s, the draws 0.24 s). The compiled sampler of
:mod:`keras_pixel.sampler_aot` skips all of that but runs other float32 kernels
and draws a few images differently. This module keeps the cached sampler loaded
instead: a server process that has imported TensorFlow once and draws with the
same SavedModel signature the command would load, so its images are the
command's images (:func:`keras_pixel.sampler_cache.draw`), while the command
itself imports neither TensorFlow nor Keras.

The command starts the server (detached, ``python -m
keras_pixel.sampler_server``) when it has drawn from a cached sampler without
one, and the background builder starts it once it has written a new cached
sampler; later ``keras-pixel sample`` calls send it their request over a Unix
socket in the cache folder and write the PNG themselves. The server exits after
``$KERAS_PIXEL_SERVER_TIMEOUT`` seconds without a request (default
:data:`DEFAULT_TIMEOUT`; ``0`` or ``off``: no server is started or used), or
within seconds of its socket file being deleted (deleting the cache folder stops
it). One server per Python environment, keras-pixel source and package versions
(:func:`address`), so a server never answers for other code. Only the user can
reach it: the socket is created with mode 0600 in a folder of mode 0700.

Protocol: one JSON line per connection from the client,
``{"key", "num", "temperature", "seed", "labels"}`` (or ``{"stop": true}``);
the server answers one JSON line, ``{"ok": true, "dtype", "shape"}`` followed by
the image bytes, or ``{"ok": false, "error"}``.
"""

import argparse
import collections
import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np

from keras_pixel import sampler_cache

ENV = "KERAS_PIXEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT = 900.0
MAX_LOADED = 4
_MAX_SOCKET_PATH = 107
_KEY = re.compile(r"[0-9a-f]{64}")
_POLL = 2.0


class ServerError(RuntimeError):
    """The server answered a request with an error, or broke off."""


def idle_timeout():
    """Seconds a server waits for a request before it exits, from
    ``$KERAS_PIXEL_SERVER_TIMEOUT`` (default :data:`DEFAULT_TIMEOUT`); 0 when
    the variable turns the server off (``0``, ``off``, ``none``, ``false``)."""
    value = os.environ.get(ENV)
    if value is None:
        return DEFAULT_TIMEOUT
    if value.strip().lower() in ("0", "off", "none", "false"):
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"${ENV} must be a number of seconds >= 0 (or 'off'), got {value!r}.")
    return seconds


def _environment_digest():
    """sha256 (16 hex digits) of what a server's answers depend on: the Python
    interpreter, the versions of keras-pixel, Keras and TensorFlow, and
    keras-pixel's source."""
    from importlib import metadata

    header = {
        "python": os.path.realpath(sys.executable),
        "versions": [metadata.version(p) for p in ("keras-pixel", "keras", "tensorflow")],
        "source": sampler_cache._source_digest(),
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()[:16]


def address(root=None):
    """The server's socket, ``<cache>/servers/<environment digest>.sock``; None
    when the cache or the server is off, or the path is too long for a Unix
    socket."""
    root = sampler_cache.cache_dir() if root is None else root
    if root is None or idle_timeout() == 0:
        return None
    path = os.path.join(root, "servers", f"{_environment_digest()}.sock")
    return path if len(os.fsencode(path)) <= _MAX_SOCKET_PATH else None


def _send_json(conn, payload):
    conn.sendall(json.dumps(payload).encode() + b"\n")


def _read_line(stream):
    line = stream.readline(1 << 20)
    if not line.endswith(b"\n"):
        raise ServerError("the connection closed before a whole message")
    return json.loads(line)


class Client:
    """A connection to the listening server of the cache ``root`` (process
    ``pid``); see :func:`connect`."""

    def __init__(self, path, timeout, pid):
        self.path, self.timeout, self.pid = path, timeout, pid

    def _exchange(self, request):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(self.timeout)
            try:
                conn.connect(self.path)
                _send_json(conn, request)
                with conn.makefile("rb") as stream:
                    header = _read_line(stream)
                    if not header.get("ok"):
                        raise ServerError(header.get("error", "no reason given"))
                    if "shape" not in header:
                        return None
                    dtype, shape = np.dtype(header["dtype"]), tuple(header["shape"])
                    size = int(np.prod(shape)) * dtype.itemsize
                    data = stream.read(size)
            except (OSError, ValueError) as error:
                raise ServerError(f"{type(error).__name__}: {error}") from error
        if len(data) != size:
            raise ServerError("the connection closed before the whole image data")
        return np.frombuffer(data, dtype).reshape(shape).copy()

    def draw(self, key, num, temperature, seed, labels=None):
        """The images ``sampler_cache.draw`` gives for the cached sampler of
        ``key`` (see :func:`keras_pixel.sampler_cache.draw`): numpy
        ``[num, H, W, C]``. Raises :class:`ServerError` if the server fails."""
        request = {
            "key": key,
            "num": int(num),
            "temperature": float(temperature),
            "seed": int(seed),
            "labels": None if labels is None else [int(v) for v in np.asarray(labels)],
        }
        return self._exchange(request)

    def stop(self):
        """Asks the server to exit."""
        self._exchange({"stop": True})


def connect(root=None, timeout=120.0):
    """A :class:`Client` of the server listening for the cache ``root``, or
    None when there is none (or the server is off)."""
    path = address(root)
    if path is None:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError:
            return None
        try:
            _send_json(probe, {"ping": True})
            with probe.makefile("rb") as stream:
                answer = _read_line(stream)
        except (OSError, ValueError, ServerError):
            return None
    if not isinstance(answer, dict) or not answer.get("ok"):
        return None
    return Client(path, timeout, answer.get("pid"))


def spawn(key=None, num=None, labels=None, root=None):
    """Starts a server for the cache ``root`` detached (its own session, output
    appended to ``<socket>.log``), unless the server is off or one is listening;
    with ``key``, it loads that cached sampler and draws ``num`` images once
    before it waits. Returns the ``Popen`` or None; does not wait."""
    root = sampler_cache.cache_dir() if root is None else root
    path = address(root)
    if path is None or connect(root, timeout=5.0) is not None:
        return None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    command = [sys.executable, "-m", "keras_pixel.sampler_server", "--root", root]
    if key is not None:
        command += ["--preload", key, "--num", str(int(num))]
        if labels is not None:
            command += ["--labels", ",".join(str(int(v)) for v in np.asarray(labels))]
    with open(path[: -len(".sock")] + ".log", "ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait(process, root=None, timeout=300.0):
    """Waits until the server ``process`` (from :func:`spawn`) answers, its
    preloaded sampler ready; returns a :class:`Client`, or None if the process
    exited first (another server holds the socket: that one's client) or
    ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = connect(root, timeout=max(1.0, deadline - time.monotonic()))
        if client is not None or process.poll() is not None:
            return client if client is not None else connect(root, timeout=5.0)
        time.sleep(0.25)
    return None


class _Samplers:
    """The cached samplers a server has loaded, the :data:`MAX_LOADED` last used."""

    def __init__(self, root):
        self.root, self.loaded = root, collections.OrderedDict()

    def draw(self, key, num, temperature, seed, labels):
        from keras_pixel.validation import MAX_IMAGES, check_temperature

        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError("key must be 64 lowercase hex digits")
        for name, value in (("num", num), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if not 1 <= num <= MAX_IMAGES:
            raise ValueError(f"num must be in [1, {MAX_IMAGES}], got {num}")
        temperature = check_temperature(temperature)
        if labels is not None and (
            not isinstance(labels, list) or not all(isinstance(v, int) for v in labels)
        ):
            raise ValueError("labels must be a list of ints or null")
        if key not in self.loaded:
            path = sampler_cache.find(key, self.root)
            if path is None:
                raise ValueError(f"no cached sampler {key} in {self.root}")
            self.loaded[key] = sampler_cache.load(path)
            while len(self.loaded) > MAX_LOADED:
                self.loaded.popitem(last=False)
        self.loaded.move_to_end(key)
        return sampler_cache.draw(self.loaded[key], num, temperature, seed, labels)


def _handle(conn, samplers):
    """Answers one connection; returns True when it asked the server to stop."""
    with conn.makefile("rb") as stream:
        request = _read_line(stream)
    if not isinstance(request, dict):
        raise ValueError("a request must be a JSON object")
    if request.get("ping") or request.get("stop"):
        _send_json(conn, {"ok": True, "pid": os.getpid()})
        return bool(request.get("stop"))
    try:
        images = samplers.draw(
            request.get("key"),
            request.get("num"),
            request.get("temperature"),
            request.get("seed"),
            request.get("labels"),
        )
    except Exception as error:  # noqa: BLE001 - every failure is answered, the server goes on
        print(f"request failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        _send_json(conn, {"ok": False, "error": f"{type(error).__name__}: {error}"})
        return False
    images = np.ascontiguousarray(images)
    _send_json(conn, {"ok": True, "dtype": images.dtype.name, "shape": list(images.shape)})
    conn.sendall(images.tobytes())
    return False


def _same_file(path, stat):
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (stat.st_dev, stat.st_ino)


def serve(root=None, timeout=None, preload=None):
    """Runs a server for the cache ``root`` until it has waited ``timeout``
    seconds (default :func:`idle_timeout`) without a request, its socket file
    is deleted or replaced, or a client asks it to stop. Returns 0, at once
    when another server holds the socket.

    Args:
        root: the cache folder (default :func:`keras_pixel.sampler_cache.cache_dir`).
        timeout: idle seconds before exiting.
        preload: ``(key, num, labels)``: a cached sampler to load and call once
            at ``num`` images before waiting, so the first request finds it
            compiled.
    """
    root = sampler_cache.cache_dir() if root is None else os.path.abspath(root)
    timeout = idle_timeout() if timeout is None else float(timeout)
    path = address(root)
    if path is None or timeout <= 0:
        return 0
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path + ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        if os.path.lexists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_mask)
        stat = os.stat(path)
        listener.listen(16)
        listener.settimeout(_POLL)
        samplers = _Samplers(root)
        print(f"serving {path} (pid {os.getpid()})", file=sys.stderr, flush=True)
        try:
            if preload is not None:
                try:
                    samplers.draw(preload[0], preload[1], 1.0, 0, preload[2])
                except Exception as error:  # noqa: BLE001 - the server serves without it
                    print(f"preload failed: {error}", file=sys.stderr, flush=True)
            last = time.monotonic()
            while time.monotonic() - last < timeout and _same_file(path, stat):
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(60.0)
                    try:
                        stop = _handle(conn, samplers)
                    except (OSError, ValueError, ServerError) as error:
                        print(f"connection dropped: {error}", file=sys.stderr, flush=True)
                        stop = False
                last = time.monotonic()
                if stop:
                    break
        finally:
            listener.close()
            if _same_file(path, stat):
                os.unlink(path)
    print("server exits", file=sys.stderr, flush=True)
    return 0


def main(argv=None):
    """``python -m keras_pixel.sampler_server [--root DIR] [--timeout S]
    [--preload KEY --num N [--labels L]]``: :func:`serve`."""
    parser = argparse.ArgumentParser(prog="python -m keras_pixel.sampler_server")
    parser.add_argument("--root", default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--preload", default=None)
    parser.add_argument("--num", type=int, default=1)
    parser.add_argument("--labels", default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    import signal

    # SIGTERM (``kill``) ends the server through :func:`serve`'s cleanup,
    # which removes its socket.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    sampler_cache.enable_xla_cache()
    labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    preload = None if args.preload is None else (args.preload, args.num, labels)
    return serve(args.root, args.timeout, preload)


if __name__ == "__main__":
    sys.exit(main())
