"""The REST and gRPC clients of export/ against a stand-in for TF Serving on loopback.

The tensorflow/serving image cannot be pulled here, so the stand-in serves the
exported SavedModel's signatures the way TF Serving does: gRPC through the
official ``tensorflow-serving-api`` PredictionService, REST through
``POST /v1/models/<name>[/versions/<n>]:predict`` with columnar ``inputs``.
"""

import concurrent.futures
import importlib.util
import json
import pathlib
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from zoo_sizes import SMALL

from keras_pixel import zoo
from keras_pixel.export import export_saved_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAME = "gated_pixelcnn_mnist_conditional"


def _client(name):
    if str(ROOT / "export") not in sys.path:
        sys.path.insert(0, str(ROOT / "export"))  # grpc_client imports rest_client's CLI
    spec = importlib.util.spec_from_file_location(name, ROOT / "export" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = zoo.load(NAME, weights=None, **SMALL[NAME])
    path = export_saved_model(model, tmp_path_factory.mktemp("serving"), NAME, version=1)
    return model, tf.saved_model.load(path).signatures


def _call(signatures, signature, inputs):
    fn = signatures[signature]
    specs = fn.structured_input_signature[1]
    missing = set(specs) - set(inputs)
    if missing:
        raise ValueError(f"missing inputs {sorted(missing)}")
    outputs = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


class _Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, signatures):
        self.signatures = signatures

    def Predict(self, request, context):
        if request.model_spec.name != NAME:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}"
            )
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = _call(
            self.signatures, request.model_spec.signature_name or "serving_default", inputs
        )
        response = predict_pb2.PredictResponse()
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


def test_grpc_client(served, tmp_path):
    model, signatures = served
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _Predictions(signatures), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = _client("grpc_client")
        host = f"127.0.0.1:{port}"
        images = np.random.default_rng(0).integers(0, 256, (2, *model.image_shape), np.uint8)
        labels = [3, 5]
        scores = client.predict(host, NAME, "serving_default", {"images": images, "labels": labels})
        np.testing.assert_allclose(
            scores["log_prob"], model.log_prob(images, labels=labels), rtol=1e-5
        )
        drawn = client.predict(
            host,
            NAME,
            "sample",
            {"num_images": 2, "seed": 4, "temperature": 1.0, "labels": labels},
        )["images"]
        np.testing.assert_array_equal(drawn, model.sample(2, seed=4, labels=labels))
        output = tmp_path / "drawn.npy"
        client.main(
            ["--host", host, "--model", NAME, "--labels", "3,5", "sample", "--num", "2"]
            + ["--seed", "4", "--output", str(output)]
        )
        np.testing.assert_array_equal(np.load(output), drawn)
    finally:
        server.stop(0)


def test_rest_client(served):
    model, signatures = served
    route = re.compile(rf"^/v1/models/{NAME}(/versions/\d+)?:predict$")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not route.match(self.path):
                self._reply(404, {"error": f"no route {self.path}"})
                return
            try:
                outputs = _call(signatures, body["signature_name"], body["inputs"])
            except (ValueError, tf.errors.InvalidArgumentError) as error:
                self._reply(400, {"error": str(error)})
                return
            self._reply(200, {"outputs": {k: v.tolist() for k, v in outputs.items()}})

        def _reply(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = _client("rest_client")
        host = f"127.0.0.1:{server.server_address[1]}"
        images = np.random.default_rng(1).integers(0, 256, (2, *model.image_shape), np.uint8)
        labels = [0, 9]
        scores = client.log_likelihood(host, NAME, images, labels, version=1)
        np.testing.assert_allclose(
            scores["log_prob"], model.log_prob(images, labels=labels), rtol=1e-5
        )
        completed = client.complete(host, NAME, images, 3, seed=2, labels=labels)
        np.testing.assert_array_equal(completed, model.complete(images, 3, seed=2, labels=labels))
        with pytest.raises(RuntimeError, match="num_known_rows must be <= 7"):
            client.complete(host, NAME, images, 9, seed=2, labels=labels)
    finally:
        server.shutdown()


def test_clients_without_a_server_say_so_in_one_line(capsys):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    rest = _client("rest_client")
    with pytest.raises(ConnectionError, match="No TF Serving answers"):
        rest.sample(host, NAME, 1)
    args = ["--host", host, "--model", NAME, "sample", "--num", "1"]
    assert rest.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No TF Serving answers at http://") and "--host" in err
    assert _client("grpc_client").main(args) == 2
    assert capsys.readouterr().err.startswith(f"error: TF Serving at {host}: UNAVAILABLE")
