"""Transfer learning: a keras.applications base model nested inside your classifier.

The callbacks see inside the nested base (layers are named `<base>/<layer>`), so Grad-CAM,
filter grids and patches work on its convolutions. With `--weights imagenet` (the default)
the base downloads its ImageNet weights on first use; `--weights none` runs offline.
"""

import argparse

import keras

import keras_cnnvis as cv
from keras_cnnvis import datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default="imagenet", help="imagenet (download) or none")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--logdir", default="runs/transfer")
    parser.add_argument(
        "--n", type=int, default=1200, help="shapes images (a quarter for validation)"
    )
    args = parser.parse_args()
    weights = None if args.weights.lower() == "none" else args.weights

    images, labels, masks = datasets.shapes(args.n, size=96, seed=0)
    n_val = args.n // 4
    x_train, y_train = images[n_val:], labels[n_val:]
    x_val, y_val, masks_val = images[:n_val], labels[:n_val], masks[:n_val]

    base = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=weights, alpha=0.35
    )
    base.trainable = False
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> MobileNet's [-1, 1]
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(datasets.SHAPE_CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    anatomy = cv.model_anatomy(model)  # what CNNVisCallback watches inside the nested base
    print("layers watched by keras-cnnvis:", anatomy.pick(4))
    print("Grad-CAM layer (the feature map):", anatomy.feature_map)
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        callbacks=[
            cv.CNNVisCallback(
                args.logdir,
                validation_data=(x_val, y_val),
                masks=masks_val,
                class_names=datasets.SHAPE_CLASSES,
                # A toy fit of a few seconds per epoch: log every monitor on schedule. The
                # default budget (10% of training time) would keep only a few records.
                budget=None,
                exclude=("classes",),
            )
        ],
    )
    print(f"Now run: cnnvis board {args.logdir}")


if __name__ == "__main__":
    main()
