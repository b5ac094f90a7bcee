"""Test-sized overrides for the zoo entries whose full size is slow on 2 cores."""

SMALL = {
    "pixelcnn_cifar": dict(image_shape=(6, 6, 3), num_layers=2, filters=6, output_filters=12),
    "pixelcnn_mnist": dict(image_shape=(7, 7, 1), num_layers=2),
    "pixelcnn_binarized_mnist": dict(image_shape=(7, 7, 1), num_layers=2),
    "gated_pixelcnn_cifar": dict(
        image_shape=(6, 6, 3), num_layers=2, filters=6, kernel_size=3, output_filters=12
    ),
    "gated_pixelcnn_mnist": dict(image_shape=(7, 7, 1), num_layers=2),
    "gated_pixelcnn_mnist_conditional": dict(image_shape=(7, 7, 1), num_layers=2),
    "pixelcnn_pp_cifar": dict(
        image_shape=(4, 4, 3), num_resnet=1, num_filters=8, num_logistic_mix=2
    ),
    "pixelcnn_pp_mnist": dict(image_shape=(8, 8, 1)),
    "row_lstm_mnist": dict(image_shape=(7, 7, 1), num_layers=2),
    "diagonal_bilstm_mnist": dict(image_shape=(7, 7, 1), num_layers=2),
    "row_lstm_cifar": dict(image_shape=(5, 5, 3), num_layers=2, units=6, output_filters=12),
    "diagonal_bilstm_cifar": dict(image_shape=(5, 5, 3), num_layers=2, units=6, output_filters=12),
}
