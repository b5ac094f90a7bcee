"""Call a keras-pixel model on TF Serving's gRPC API (port 8500) with ``tensorflow-serving-api``.

python export/grpc_client.py --model pixelcnn_mnist log-likelihood images.npy
python export/grpc_client.py --model pixelcnn_mnist sample --num 4 --seed 0 --output s.npy
python export/grpc_client.py --model pixelcnn_mnist complete images.npy --known-rows 14
"""

import argparse
import json

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost:8500")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--labels", default=None, help="comma-separated class ids")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("log-likelihood")
    p.add_argument("images")
    p = sub.add_parser("sample")
    p.add_argument("--num", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--output", default="samples.npy")
    p = sub.add_parser("complete")
    p.add_argument("images")
    p.add_argument("--known-rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--output", default="completions.npy")
    args = parser.parse_args(argv)
    extra = {} if args.labels is None else {"labels": [int(x) for x in args.labels.split(",")]}
    if args.command == "log-likelihood":
        inputs = {"images": np.load(args.images), **extra}
        result = predict(args.host, args.model, "serving_default", inputs, args.version)
        print(json.dumps({k: v.tolist() for k, v in result.items()}))
        return
    inputs = {"seed": args.seed, "temperature": args.temperature, **extra}
    if args.command == "sample":
        inputs["num_images"] = args.num
    else:
        inputs.update(images=np.load(args.images), num_known_rows=args.known_rows)
    images = predict(args.host, args.model, args.command, inputs, args.version)["images"]
    np.save(args.output, images)
    print(f"wrote {args.output}: {images.shape} uint8")


if __name__ == "__main__":
    main()
