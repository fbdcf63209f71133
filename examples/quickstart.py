"""Quick start: one callback on your own model, then `cnnvis board runs/quickstart`.

Trains a small Sequential CNN on the built-in `shapes` data (offline) with CNNVisCallback.
"""

import keras

import keras_cnnvis as cv
from keras_cnnvis import datasets


def main(logdir: str = "runs/quickstart", epochs: int = 6) -> None:
    images, labels, masks = datasets.shapes(2000, size=64, seed=0)
    x_train, y_train = images[400:], labels[400:]
    x_val, y_val, masks_val = images[:400], labels[:400], masks[:400]

    model = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            keras.layers.Conv2D(16, 5, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(len(datasets.SHAPE_CLASSES), activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        callbacks=[
            cv.CNNVisCallback(
                logdir,
                validation_data=(x_val, y_val),
                masks=masks_val,
                class_names=datasets.SHAPE_CLASSES,
                # A toy fit of a few seconds per epoch: log every monitor on schedule. The
                # default budget (10% of training time) would keep only a few records.
                budget=None,
            )
        ],
    )
    print(f"Now run: cnnvis board {logdir}")


if __name__ == "__main__":
    main()
