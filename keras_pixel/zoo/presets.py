"""The zoo's entries, as data: architecture, dataset, recipe and paper result here;
what training produced (weights file, sha256, measured numbers, commands) in
``trained.json``, written from the training runs."""

import importlib.resources
import json

from keras_pixel.models import GatedPixelCNN, PixelCNN, PixelCNNPlusPlus, PixelRNN
from keras_pixel.zoo import registry

TRAINED = json.loads(
    (importlib.resources.files("keras_pixel.zoo") / "trained.json").read_text(encoding="utf-8")
)


def register(name, *args, **kwargs):
    return registry.register(name, *args, trained=TRAINED.get(name), **kwargs)


register(
    "pixelcnn_digits",
    PixelCNN,
    dict(image_shape=(8, 8, 1), num_layers=3, filters=32, output_filters=128, first_kernel_size=5),
    description="Small PixelCNN for scikit-learn's 8x8 digits (offline demo and tests).",
    dataset="digits",
    train=dict(epochs=30, batch_size=32, learning_rate=2e-3),
    parameters=83_328,
)
register(
    "pixelcnn_mnist",
    PixelCNN,
    dict(image_shape=(28, 28, 1), num_layers=7, filters=32, output_filters=128),
    description="PixelCNN for 8-bit MNIST (28x28x1), 256-way softmax per pixel.",
    dataset="mnist",
    train=dict(epochs=10, batch_size=64, learning_rate=1e-3),
    parameters=138_624,
)
register(
    "pixelcnn_binarized_mnist",
    PixelCNN,
    dict(image_shape=(28, 28, 1), num_layers=15, filters=64, output_filters=256, num_values=2),
    description="PixelCNN for dynamically binarized MNIST (num_values=2: pixels 0 or 1), "
    "15 residual blocks, h=64; scored in nats per image as in the PixelRNN paper's table 4.",
    dataset="mnist",
    paper_result="81.30 nats (PixelCNN, binarized MNIST; PixelRNN paper, table 4)",
    train=dict(epochs=10, batch_size=64, learning_rate=1e-3, binarize=True),
    parameters=842_498,
)
register(
    "pixelcnn_cifar",
    PixelCNN,
    dict(image_shape=(32, 32, 3), num_layers=15, filters=129, output_filters=1026),
    description="PixelCNN for CIFAR-10 (32x32x3): the paper's 15 residual blocks, h=128 "
    "(rounded to 129 so R, G, B groups split evenly).",
    dataset="cifar10",
    paper_result="3.14 bits/dim (PixelRNN paper, table 5)",
    train=dict(epochs=100, batch_size=16, learning_rate=1e-3),
    parameters=4_345_389,
)

register(
    "gated_pixelcnn_mnist",
    GatedPixelCNN,
    dict(image_shape=(28, 28, 1), num_layers=15, filters=64, output_filters=256),
    description="Gated PixelCNN for 8-bit MNIST (28x28x1): vertical + horizontal stacks, "
    "no blind spot; 15 layers of 64 feature maps.",
    dataset="mnist",
    train=dict(epochs=10, batch_size=64, learning_rate=1e-3),
    parameters=1_433_024,
)
register(
    "gated_pixelcnn_mnist_conditional",
    GatedPixelCNN,
    dict(image_shape=(28, 28, 1), num_layers=15, filters=64, output_filters=256, num_classes=10),
    description="Class-conditional Gated PixelCNN for 8-bit MNIST (10 digit classes): "
    "15 layers of 64 feature maps.",
    dataset="mnist",
    train=dict(epochs=10, batch_size=64, learning_rate=1e-3),
    parameters=1_471_424,
)
register(
    "gated_pixelcnn_cifar",
    GatedPixelCNN,
    dict(
        image_shape=(32, 32, 3),
        num_layers=20,
        filters=384,
        kernel_size=5,
        first_kernel_size=7,
        output_filters=1026,
    ),
    description="Gated PixelCNN for CIFAR-10 (32x32x3): the paper's 20 layers of 384 feature "
    "maps with 5x5 kernels.",
    dataset="cifar10",
    paper_result="3.03 bits/dim (Conditional PixelCNN paper, table 1)",
    train=dict(epochs=100, batch_size=16, learning_rate=1e-3),
    parameters=128_130_306,
)
register(
    "gated_pixelcnn_digits_conditional",
    GatedPixelCNN,
    dict(
        image_shape=(8, 8, 1),
        num_layers=3,
        filters=32,
        output_filters=128,
        first_kernel_size=5,
        num_classes=10,
    ),
    description="Small class-conditional Gated PixelCNN for scikit-learn's 8x8 digits.",
    dataset="digits",
    train=dict(epochs=30, batch_size=32, learning_rate=2e-3),
    parameters=95_264,
)

register(
    "row_lstm_mnist",
    PixelRNN,
    dict(kind="row_lstm", num_layers=7, units=16, image_shape=(28, 28, 1), output_filters=64),
    description="Row LSTM PixelRNN for MNIST (28x28x1): 7 layers, h=16, as the paper's "
    "binarized-MNIST Diagonal BiLSTM.",
    dataset="mnist",
    train=dict(epochs=10, batch_size=32, learning_rate=1e-3),
    parameters=89_120,
)
register(
    "diagonal_bilstm_mnist",
    PixelRNN,
    dict(
        kind="diagonal_bilstm", num_layers=7, units=16, image_shape=(28, 28, 1), output_filters=64
    ),
    description="Diagonal BiLSTM PixelRNN for MNIST (28x28x1): the paper's binarized-MNIST "
    "configuration, 7 layers, h=16.",
    dataset="mnist",
    paper_result="79.20 nats on binarized MNIST (PixelRNN paper, table 4)",
    train=dict(epochs=10, batch_size=32, learning_rate=1e-3),
    parameters=82_400,
)
register(
    "row_lstm_cifar",
    PixelRNN,
    dict(kind="row_lstm", num_layers=12, units=129, image_shape=(32, 32, 3), output_filters=1026),
    description="Row LSTM PixelRNN for CIFAR-10 (32x32x3): the paper's 12 layers, h=128 "
    "(rounded to 129 so R, G, B groups split evenly).",
    dataset="cifar10",
    paper_result="3.07 bits/dim (PixelRNN paper, table 5)",
    train=dict(epochs=100, batch_size=16, learning_rate=1e-3),
    parameters=8_690_238,
)
register(
    "diagonal_bilstm_cifar",
    PixelRNN,
    dict(
        kind="diagonal_bilstm",
        num_layers=12,
        units=129,
        image_shape=(32, 32, 3),
        output_filters=1026,
    ),
    description="Diagonal BiLSTM PixelRNN for CIFAR-10 (32x32x3): the paper's 12 layers, "
    "h=128 (rounded to 129 so R, G, B groups split evenly).",
    dataset="cifar10",
    paper_result="3.00 bits/dim (PixelRNN paper, table 5)",
    train=dict(epochs=100, batch_size=16, learning_rate=1e-3),
    parameters=7_897_662,
)

register(
    "pixelcnn_pp_cifar",
    PixelCNNPlusPlus,
    dict(
        num_resnet=5,
        num_hierarchies=3,
        num_filters=160,
        num_logistic_mix=10,
        dropout=0.5,
        image_shape=(32, 32, 3),
    ),
    description="PixelCNN++ for CIFAR-10 (32x32x3): the paper's 3 levels of 5 gated resnets, "
    "160 filters, 10 logistic components.",
    dataset="cifar10",
    paper_result="2.92 bits/dim (PixelCNN++ paper, table 1)",
    train=dict(epochs=100, batch_size=16, learning_rate=1e-3, lr_decay=0.999995, ema=0.9995),
    parameters=53_659_080,
    published=dict(
        source="openai/pixel-cnn, the PixelCNN++ paper's code (Salimans et al. 2017): the "
        "trained CIFAR-10 model linked from its README; that host is gone, a mirror is "
        "given in the repository's issue #35",
        archive="pxpp.zip (656 MB)",
        file="params_cifar.ckpt",
        sha1="c0913e0aea902ad33dde81c96b3d8cea8c0687e9",
        format="openai-pixelcnn-pp",
        paper_result="2.92 bits/dim on the CIFAR-10 test set",
        note="Not measured by us: this project has neither the file nor CIFAR-10 on its "
        "machines. The conversion is verified on checkpoints written with the published "
        "code's variable names and shapes (random values), against an independent "
        "re-implementation of its forward pass and loss (equal within 1e-5), and the full "
        "variable list maps onto this entry parameter for parameter.",
    ),
)
register(
    "pixelcnn_pp_mnist",
    PixelCNNPlusPlus,
    dict(
        num_resnet=1,
        num_hierarchies=2,
        num_filters=32,
        num_logistic_mix=5,
        dropout=0.5,
        image_shape=(28, 28, 1),
    ),
    description="Small PixelCNN++ for 8-bit MNIST (28x28x1): 2 levels of 1 gated resnet, "
    "32 filters, 5 logistic components.",
    dataset="mnist",
    train=dict(epochs=10, batch_size=32, learning_rate=1e-3),
    parameters=354_302,
)
