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
    args = parser.parse_args()
    weights = None if args.weights.lower() == "none" else args.weights

    images, labels, masks = datasets.shapes(1200, size=96, seed=0)
    x_train, y_train = images[300:], labels[300:]
    x_val, y_val, masks_val = images[:300], labels[:300], masks[:300]

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

    print("conv layers seen by keras-cnnvis:", [i.path for i in cv.conv_layers(model)][:5], "...")
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
