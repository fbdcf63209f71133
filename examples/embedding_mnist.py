"""Watch the ten digit classes of MNIST separate in a small CNN's feature space as it trains
(PCA and t-SNE per epoch, scores, t-SNE image grid, Projector data). Downloads MNIST (11 MB).

Run:
    python examples/embedding_mnist.py [--logdir runs/embedding_mnist] [--epochs 5]
    tensorboard --logdir runs/embedding_mnist
then open the cnnvis tab (Embeddings) or the Projector tab (run "cnnvis"; colour by "label",
sprite thumbnails on).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="runs/embedding_mnist")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=20000, help="training images used")
    parser.add_argument("--points", type=int, default=1000, help="test images embedded")
    parser.add_argument("--every", type=int, default=1, help="embed every N epochs")
    args = parser.parse_args()

    import keras

    from keras_cnnvis.callbacks import EmbeddingCallback
    from keras_cnnvis.demo import build_demo_model

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train[: args.train, :, :, None].astype(np.float32) / 255.0
    y_train = y_train[: args.train].astype(np.int64)
    x_test = x_test[:, :, :, None].astype(np.float32) / 255.0
    y_test = y_test.astype(np.int64)
    class_names = [str(d) for d in range(10)]

    model = build_demo_model((28, 28, 1), 10, seed=0)
    embedding = EmbeddingCallback(
        args.logdir,
        data=(x_test, y_test),
        class_names=class_names,
        n_images=args.points,  # a class-balanced subset of the test set, fixed over training
        max_points=max(1000, args.points),
        sprite_size=28,  # MNIST digits at full resolution in the sprite
        every_n_epochs=args.every,
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_test[:2000], y_test[:2000]),
        epochs=args.epochs,
        batch_size=64,
        callbacks=[keras.callbacks.TensorBoard(args.logdir), embedding],
        verbose=2,
    )
    print(f"\nTensorBoard: tensorboard --logdir {args.logdir}")
    print("Scalars embedding/knn_accuracy and embedding/tsne/trustworthiness show the trend.")


if __name__ == "__main__":
    main()
