"""Watch the classes of the built-in `shapes` data separate in the demo CNN's feature space as it
trains: PCA and t-SNE per epoch, scores, a t-SNE image grid and Projector data. Runs offline.

Run:
    python examples/embedding_shapes.py [--logdir runs/embedding_shapes] [--epochs 8]
    tensorboard --logdir runs/embedding_shapes
then open the cnnvis tab (Embeddings) or the Projector tab (run "cnnvis", one tensor per
epoch: features_epoch_000, ...). `--pictures DIR` also saves the first and last t-SNE, the
last PCA and the last t-SNE grid as PNG files.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def read_records(run_dir: str) -> dict:
    """Scalars and images of a run, by tag: {tag: [(step, value), ...]} (images decoded)."""
    import cv2
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(run_dir, size_guidance={ea.TENSORS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        values = []
        for event in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "images":
                png = np.frombuffer(arr[2], np.uint8)
                value = cv2.imdecode(png, cv2.IMREAD_COLOR)[..., ::-1]
            elif plugin == "scalars":
                value = float(arr)
            else:
                continue
            values.append((int(event.step), value))
        out[tag] = values
    return out


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    h = max(left.shape[0], right.shape[0])
    pad = lambda a: np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0)), constant_values=255)
    return np.concatenate([pad(left), pad(right)], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="runs/embedding_shapes")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--n", type=int, default=2000, help="images (train + validation)")
    parser.add_argument("--n-val", type=int, default=400, help="validation images embedded")
    parser.add_argument("--pictures", default=None, help="folder for PNG pictures")
    args = parser.parse_args()

    import keras

    from keras_cnnvis import datasets
    from keras_cnnvis.callbacks import EmbeddingCallback
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, _ = datasets.shapes(args.n, size=64, seed=0)
    x_val, y_val = images[: args.n_val], labels[: args.n_val]
    x_train, y_train = images[args.n_val :], labels[args.n_val :]
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)

    embedding = EmbeddingCallback(
        args.logdir,
        data=(x_val, y_val),
        class_names=datasets.SHAPE_CLASSES,
        n_images=args.n_val,
        methods=("pca", "tsne"),
    )
    train_demo_model(
        model,
        x_train,
        y_train,
        epochs=args.epochs,
        callbacks=[keras.callbacks.TensorBoard(args.logdir), embedding],
        validation_data=(x_val, y_val),
        verbose=2,
    )

    records = read_records(os.path.join(args.logdir, "cnnvis"))
    print("\nepoch  kNN accuracy  trustworthiness (PCA, t-SNE)")
    knn = dict(records["embedding/knn_accuracy"])
    pca = dict(records["embedding/pca/trustworthiness"])
    tsne = dict(records["embedding/tsne/trustworthiness"])
    for step in sorted(knn):
        print(f"{step:5d}  {knn[step]:12.3f}  {pca[step]:.3f}, {tsne[step]:.3f}")
    print(f"\nTensorBoard: tensorboard --logdir {args.logdir}")

    if args.pictures:
        save_pictures(records, args.pictures)


def save_pictures(records: dict, folder: str) -> None:
    """The first and last t-SNE side by side, the last PCA and the last t-SNE grid as PNGs
    with a 256-colour palette (small enough for a README)."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    first, last = records["embedding/tsne"][0][1], records["embedding/tsne"][-1][1]
    pictures = {
        "embedding_tsne_epochs.png": side_by_side(first, last),
        "embedding_pca.png": records["embedding/pca"][-1][1],
        "embedding_tsne_grid.png": records["embedding/tsne_grid"][-1][1],
    }
    for name, picture in pictures.items():
        path = os.path.join(folder, name)
        palette = Image.fromarray(np.ascontiguousarray(picture)).quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        palette.save(path, optimize=True)
        print("wrote", path)


if __name__ == "__main__":
    main()
