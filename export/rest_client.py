"""Call a keras-pixel model on TF Serving's REST API (port 8501): numpy + the standard library.

    python export/rest_client.py --model pixelcnn_mnist log-likelihood images.npy
    python export/rest_client.py --model pixelcnn_mnist sample --num 4 --seed 0 --output s.npy
    python export/rest_client.py --model pixelcnn_mnist complete images.npy --known-rows 14

``images.npy`` holds uint8 ``[B, H, W, C]``; conditional models take ``--labels 3,1,4``.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

import numpy as np


def predict(host, model, signature, inputs, version=None, timeout=600):
    """POSTs ``inputs`` (name -> numpy or scalar) to ``signature`` of ``model``;
    returns its outputs as ``{name: numpy}``."""
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    body = {
        "signature_name": signature,
        "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()},
    }
    request = urllib.request.Request(
        f"http://{host}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            outputs = json.loads(response.read())["outputs"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"TF Serving refused the request: {error.read().decode()}") from error
    except urllib.error.URLError as error:
        raise ConnectionError(
            f"No TF Serving answers at http://{host} ({error.reason}); start it (see "
            "export/README.md) or pass --host HOST:PORT."
        ) from error
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return {k: np.asarray(v) for k, v in outputs.items()}


def log_likelihood(host, model, images, labels=None, version=None):
    """uint8 ``[B, H, W, C]`` -> ``{"log_prob": nats [B], "bits_per_dim": [B]}``."""
    inputs = {"images": images} if labels is None else {"images": images, "labels": labels}
    return predict(host, model, "serving_default", inputs, version)


def sample(host, model, num, seed=0, temperature=1.0, labels=None, version=None):
    """-> uint8 ``[num, H, W, C]``; the same seed gives the same images."""
    inputs = {"num_images": num, "seed": seed, "temperature": temperature}
    if labels is not None:
        inputs["labels"] = labels
    return predict(host, model, "sample", inputs, version)["images"].astype(np.uint8)


def complete(host, model, images, known_rows, seed=0, temperature=1.0, labels=None, version=None):
    """Keeps the first ``known_rows`` rows of ``images`` and samples the rest."""
    inputs = {
        "images": images,
        "num_known_rows": known_rows,
        "seed": seed,
        "temperature": temperature,
    }
    if labels is not None:
        inputs["labels"] = labels
    return predict(host, model, "complete", inputs, version)["images"].astype(np.uint8)


def parse_args(description, default_host, argv=None):
    """The command line both clients share (``grpc_client.py`` imports it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=default_host)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--labels", default=None, help="comma-separated class ids")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("log-likelihood")
    p.add_argument("images")
    for command in ("sample", "complete"):
        p = sub.add_parser(command)
        if command == "sample":
            p.add_argument("--num", type=int, default=4)
        else:
            p.add_argument("images")
            p.add_argument("--known-rows", type=int, required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--temperature", type=float, default=1.0)
        p.add_argument("--output", default=f"{command}.npy")
    return parser.parse_args(argv)


def run(args, predict_fn):
    """Runs the parsed command through ``predict_fn(host, model, signature, inputs, version)``."""
    extra = {} if args.labels is None else {"labels": [int(x) for x in args.labels.split(",")]}
    if args.command == "log-likelihood":
        inputs = {"images": np.load(args.images), **extra}
        result = predict_fn(args.host, args.model, "serving_default", inputs, args.version)
        print(json.dumps({k: np.asarray(v).tolist() for k, v in result.items()}))
        return
    inputs = {"seed": args.seed, "temperature": args.temperature, **extra}
    if args.command == "sample":
        inputs["num_images"] = args.num
    else:
        inputs.update(images=np.load(args.images), num_known_rows=args.known_rows)
    images = predict_fn(args.host, args.model, args.command, inputs, args.version)["images"]
    images = np.asarray(images).astype(np.uint8)
    np.save(args.output, images)
    print(f"wrote {args.output}: {images.shape} uint8")


def main(argv=None):
    """Runs the command; a refused request or an unreachable server is one
    ``error:`` line and exit code 2."""
    try:
        run(parse_args(__doc__.split("\n\n")[0], "localhost:8501", argv), predict)
    except (ConnectionError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
