"""Call a keras-pixel model on TF Serving's gRPC API (port 8500) with ``tensorflow-serving-api``.

python export/grpc_client.py --model pixelcnn_mnist log-likelihood images.npy
python export/grpc_client.py --model pixelcnn_mnist sample --num 4 --seed 0 --output s.npy
python export/grpc_client.py --model pixelcnn_mnist complete images.npy --known-rows 14
"""

import sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

DTYPES = {
    "images": np.uint8,
    "num_images": np.int32,
    "num_known_rows": np.int32,
    "seed": np.int64,
    "temperature": np.float32,
}


def predict(host, model, signature, inputs, version=None, timeout=600):
    """Sends ``inputs`` (name -> numpy or scalar, cast to the signature's dtypes) to
    ``signature`` of ``model``; returns ``{name: numpy}``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        value = np.asarray(value)
        if name in DTYPES:
            value = value.astype(DTYPES[name])
        elif name == "labels":
            value = value.astype(np.int32 if np.issubdtype(value.dtype, np.integer) else np.float32)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    with grpc.insecure_channel(host) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def main(argv=None):
    """Runs the command; an unreachable server or a refused request is one
    ``error:`` line and exit code 2."""
    from rest_client import parse_args, run

    args = parse_args(__doc__.split("\n\n")[0], "localhost:8500", argv)
    try:
        run(args, predict)
    except grpc.RpcError as error:
        print(
            f"error: TF Serving at {args.host}: {error.code().name}: {error.details()}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
