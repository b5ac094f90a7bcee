"""The resident sampling process behind a warm `keras-pixel sample`
(keras_pixel.sampler_server)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

from keras_pixel import sampler_cache, sampler_server, zoo
from keras_pixel.cli import main

TINY = {"num_layers": 1, "filters": 8}
TINY_ARGS = ["--override", "num_layers=1", "--override", "filters=8"]


@pytest.fixture
def root(monkeypatch):
    """A cache folder with a short path (a Unix socket's path is at most 107
    bytes), the server on."""
    path = tempfile.mkdtemp(prefix="kps")
    monkeypatch.setenv(sampler_cache.ENV, path)
    # The builder points XLA's cache into the folder for the processes it starts.
    monkeypatch.setenv("TF_XLA_FLAGS", os.environ.get("TF_XLA_FLAGS", ""))
    monkeypatch.setenv(sampler_server.ENV, "120")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _wait_for_server(root, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client = sampler_server.connect(root, timeout=5.0)
        if client is not None:
            return client
        time.sleep(0.2)
    raise AssertionError("no server listened")


@pytest.fixture
def server(root):
    """A server of ``root`` running in a thread of this process."""
    thread = threading.Thread(target=sampler_server.serve, args=(root, 120.0), daemon=True)
    thread.start()
    client = _wait_for_server(root)
    yield client, thread
    if thread.is_alive():
        client.stop()
        thread.join(30)


@pytest.mark.parametrize(
    "value, seconds",
    [(None, sampler_server.DEFAULT_TIMEOUT), ("30", 30.0), ("0.5", 0.5), ("0", 0.0),
     ("off", 0.0), (" OFF ", 0.0), ("false", 0.0)],
)  # fmt: skip
def test_the_idle_timeout_comes_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(sampler_server.ENV, raising=False)
    else:
        monkeypatch.setenv(sampler_server.ENV, value)
    assert sampler_server.idle_timeout() == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_idle_timeout_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(sampler_server.ENV, value)
    with pytest.raises(ValueError, match=sampler_server.ENV):
        sampler_server.idle_timeout()


def test_the_address_is_in_the_cache_folder_or_none(root, monkeypatch):
    path = sampler_server.address()
    assert os.path.dirname(path) == os.path.join(root, "servers") and path.endswith(".sock")
    assert sampler_server.address(os.path.join(root, "x" * 120)) is None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    assert sampler_server.wait(gone, root, timeout=60) is None
    monkeypatch.setenv(sampler_server.ENV, "off")
    assert sampler_server.address() is None and sampler_server.connect() is None
    assert sampler_server.spawn("k" * 64, 4) is None
    monkeypatch.setenv(sampler_server.ENV, "60")
    monkeypatch.setenv(sampler_cache.ENV, "off")
    assert sampler_server.address() is None


@pytest.mark.parametrize(
    "name, labels",
    [("pixelcnn_digits", None), ("gated_pixelcnn_digits_conditional", [3, 0, 9])],
)
def test_the_server_draws_the_images_model_sample_draws(root, server, name, labels):
    client, _ = server
    model = zoo.load(name, weights=None, **TINY)
    model.log_prob(
        np.zeros((1, *model.image_shape), np.uint8), labels=None if labels is None else [0]
    )
    key = "ab" * 32
    sampler_cache.write(model, key, "cached", root=root)
    served = client.draw(key, 3, 0.8, 7, labels)
    direct = model.sample(3, temperature=0.8, seed=7, labels=labels)
    assert served.dtype == direct.dtype and served.shape == direct.shape
    np.testing.assert_array_equal(served, direct)
    np.testing.assert_array_equal(client.draw(key, 3, 0.8, 7, labels), served)
    assert not np.array_equal(client.draw(key, 3, 0.8, 8, labels), served)


def test_a_bad_request_is_answered_with_its_reason_and_the_server_goes_on(root, server):
    client, thread = server
    with pytest.raises(sampler_server.ServerError, match="no cached sampler"):
        client.draw("cd" * 32, 2, 1.0, 0)
    with pytest.raises(sampler_server.ServerError, match="64 lowercase hex"):
        client.draw("../../etc", 2, 1.0, 0)
    with pytest.raises(sampler_server.ServerError, match="temperature"):
        client._exchange({"key": "cd" * 32, "num": 2, "temperature": -1.0, "seed": 0})
    with pytest.raises(sampler_server.ServerError, match="num must be"):
        client._exchange({"key": "cd" * 32, "num": 0, "temperature": 1.0, "seed": 0})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(sampler_server.address(root))
        raw.sendall(b"not json\n")
        raw.recv(1)
    assert thread.is_alive() and sampler_server.connect(root) is not None


def test_the_socket_is_the_users_alone(root, server):
    path = sampler_server.address(root)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_the_server_exits_when_idle_and_removes_its_socket(root):
    thread = threading.Thread(target=sampler_server.serve, args=(root, 1.0), daemon=True)
    thread.start()
    _wait_for_server(root)
    thread.join(15)
    assert not thread.is_alive()
    assert not os.path.exists(sampler_server.address(root))
    assert sampler_server.connect(root) is None


def test_deleting_the_socket_stops_the_server(root, server):
    _, thread = server
    os.unlink(sampler_server.address(root))
    thread.join(15)
    assert not thread.is_alive()


def test_a_second_server_leaves_at_once_and_a_stale_socket_is_replaced(root, server):
    client, thread = server
    done = subprocess.run(
        [sys.executable, "-m", "keras_pixel.sampler_server", "--root", root, "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "serving" not in done.stderr
    assert thread.is_alive() and sampler_server.connect(root) is not None
    client.stop()
    thread.join(30)
    path = sampler_server.address(root)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
    assert os.path.exists(path) and sampler_server.connect(root) is None
    thread = threading.Thread(target=sampler_server.serve, args=(root, 60.0), daemon=True)
    thread.start()
    _wait_for_server(root).stop()
    thread.join(30)
    assert not thread.is_alive()


def test_a_warm_sample_command_is_served_without_tensorflow(
    root, builder_in_process, tiny_weights, sample_command, tmp_path
):
    """The builder starts the server with the new sampler loaded; the next
    `keras-pixel sample` imports neither TensorFlow nor Keras and writes the
    grid the first one wrote."""
    weights = tiny_weights()
    args = ["sample", "pixelcnn_digits", "--weights", weights, "--num", "4", "--seed", "5"]
    assert main([*args, "--output", str(tmp_path / "a.png"), *TINY_ARGS]) == 0
    client = sampler_server.connect(root, timeout=10.0)
    assert client is not None, "the builder ended before its server answered"
    try:
        out = tmp_path / "b.png"
        done = sample_command([*args[1:], "--output", str(out), *TINY_ARGS])
        assert done.returncode == 0, done.stderr[-2000:]
        assert "sampling (server)" in done.stderr
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(out))
        )
    finally:
        client.stop()
        _wait_for_exit(client.pid)


def _wait_for_exit(pid, seconds=60):
    """Waits until process ``pid`` (a server started by this test) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[-1].startswith(("Z", "X")):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.2)
    raise AssertionError(f"the server {pid} did not exit")


def test_a_warm_command_without_a_server_starts_one(
    root, builder_in_process, tiny_weights, monkeypatch, tmp_path
):
    started = []
    monkeypatch.setattr(sampler_server, "spawn", lambda *a: started.append(a))
    weights = tiny_weights("gated_pixelcnn_digits_conditional")
    args = ["sample", "gated_pixelcnn_digits_conditional", "--weights", weights, "--num", "4"]
    args += ["--labels", "2,7", "--seed", "3", *TINY_ARGS]
    assert main([*args, "--output", str(tmp_path / "a.png")]) == 0
    assert len(started) == 1
    assert main([*args, "--output", str(tmp_path / "b.png")]) == 0
    key = sampler_cache.request_key(
        "gated_pixelcnn_digits_conditional", weights, None, TINY_ARGS[1::2]
    )
    assert started[1] == (key, 4, [2, 2, 7, 7])
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )


def test_a_failing_server_is_warned_of_and_the_command_samples_without_it(
    root, builder_in_process, tiny_weights, monkeypatch, tmp_path
):
    monkeypatch.setattr(sampler_server, "spawn", lambda *a: None)
    weights = tiny_weights()
    args = ["sample", "pixelcnn_digits", "--weights", weights, "--num", "4", "--seed", "5"]
    assert main([*args, "--output", str(tmp_path / "a.png"), *TINY_ARGS]) == 0

    class Broken:
        def draw(self, *args):
            raise sampler_server.ServerError("the connection closed")

    monkeypatch.setattr(sampler_server, "connect", lambda *a, **k: Broken())
    with pytest.warns(UserWarning, match="sampling server failed"):
        assert main([*args, "--output", str(tmp_path / "b.png"), *TINY_ARGS]) == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )


def test_the_builder_has_a_running_server_load_the_new_sampler(
    root, server, builder_in_process, tiny_weights, monkeypatch, tmp_path
):
    """A server started for another model learns of the new sampler from the
    builder, not from the user's next command."""
    drawn = []
    draw = sampler_server.Client.draw
    monkeypatch.setattr(
        sampler_server.Client, "draw", lambda self, *a: drawn.append(a) or draw(self, *a)
    )
    weights = tiny_weights()
    args = ["sample", "pixelcnn_digits", "--weights", weights, "--num", "3", "--seed", "5"]
    assert main([*args, "--output", str(tmp_path / "a.png"), *TINY_ARGS]) == 0
    key = sampler_cache.request_key("pixelcnn_digits", weights, None, TINY_ARGS[1::2])
    assert drawn == [(key, 3, 1.0, 0, None)]
    assert main([*args, "--output", str(tmp_path / "b.png"), *TINY_ARGS]) == 0
    assert len(drawn) == 2
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )
