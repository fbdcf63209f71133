"""Embedding Projector data read back through TensorBoard's own Projector plugin (its WSGI
routes over a real log directory), plus sprite geometry and the .tsv formats."""

import json
import os

import numpy as np
import pytest

from feature_helpers import decode_png, get, projector_client, served_tensor
from keras_cnnvis import summary
from keras_cnnvis.features.projector import (
    class_metadata,
    make_sprite,
    metadata_tsv,
    read_config,
    tensor_tsv,
    write_embedding,
)


def _event_file(run_dir):
    writer = summary.LogWriter(str(run_dir))
    writer.scalar("x", 1.0, 0)
    writer.close()


@pytest.fixture
def images():
    return np.random.default_rng(0).random((10, 8, 6, 3)).astype(np.float32)


def test_sprite_geometry(images):
    sprite = make_sprite(images, max_size=32)
    assert sprite.per_row == 4 and sprite.count == 10 and sprite.single_image_dim == (8, 6)
    assert sprite.image.shape == (4 * 8, 4 * 6, 3)
    for i in range(10):
        r, c = divmod(i, 4)
        np.testing.assert_allclose(sprite.image[r * 8 : r * 8 + 8, c * 6 : c * 6 + 6], images[i])
    assert np.all(sprite.image[2 * 8 :, 2 * 6 :] == 0.0)  # cells 10..15 unused
    small = make_sprite(images * 255.0, max_size=4)  # 0..255 input is divided by 255
    assert small.single_image_dim == (4, 3) and small.image.shape == (16, 12, 3)
    assert 0.2 < small.image[:4, :3].mean() < 0.8
    gray = make_sprite(np.random.default_rng(1).random((5, 28, 28)), max_size=14)
    assert gray.image.shape == (3 * 14, 3 * 14, 1)
    # The Projector's texture limit: at most 8192 pixels per side.
    many = make_sprite(np.zeros((300, 64, 64, 3), np.float32), max_size=4096)
    assert many.per_row == 18 and many.image.shape[1] <= 8192
    with pytest.raises(ValueError, match="non-empty batch"):
        make_sprite(np.zeros((0, 4, 4, 3)))


def test_tsv_formats():
    assert (
        tensor_tsv(np.array([[1.0, -0.5], [1234567.0, 1e-9]])) == b"1\t-0.5\n1.23457e+06\t1e-09\n"
    )
    assert (
        metadata_tsv({"label": ["a", "b\tc"], "ok": ["yes", "no"]})
        == b"label\tok\na\tyes\nb c\tno\n"
    )
    assert metadata_tsv({"label": ["a", "b"]}) == b"a\nb\n"  # one column: no header


def test_class_metadata_names_labels_and_predictions():
    columns = class_metadata(np.array([7, 2, 5]), [0, 1, 1], [0, 0, 3], ["cat", "dog"])
    assert columns == {
        "index": [7, 2, 5],
        "label": ["cat", "dog", "dog"],
        "prediction": ["cat", "cat", "class 3"],  # a class beyond the names keeps a name
        "correct": ["yes", "no", "no"],
    }
    assert metadata_tsv(columns).split(b"\n")[:2] == [
        b"index\tlabel\tprediction\tcorrect",
        b"7\tcat\tcat\tyes",
    ]


def test_projector_plugin_lists_and_serves_our_embeddings(tmp_path, images):
    run = tmp_path / "cnnvis"
    _event_file(run)
    rng = np.random.default_rng(2)
    feats = {step: rng.normal(size=(10, 7)).astype(np.float32) for step in (1, 2)}
    sprite = make_sprite(images)
    labels = [f"c{i % 3}" for i in range(10)]
    for step, f in feats.items():
        write_embedding(
            str(run),
            f"features_epoch_{step:03d}",
            f,
            {"label": labels, "step": [step] * 10},
            sprite,
        )
    # Every path in the config is relative and inside the run directory.
    config = read_config(str(run))
    for e in config.embeddings:
        for path in (e.tensor_path, e.metadata_path, e.sprite.image_path):
            assert not os.path.isabs(path) and os.path.exists(run / path), path

    client = projector_client(tmp_path)
    assert json.loads(get(client, "runs").get_data()) == ["cnnvis"]
    info = json.loads(get(client, "info", run="cnnvis").get_data())
    by_name = {e["tensorName"]: e for e in info["embeddings"]}
    assert sorted(by_name) == ["features_epoch_001", "features_epoch_002"]
    for step, f in feats.items():
        name = f"features_epoch_{step:03d}"
        entry = by_name[name]
        assert [int(s) for s in entry["tensorShape"]] == [10, 7]
        assert entry["sprite"]["singleImageDim"] == [6, 8]  # the Projector's [width, height]
        np.testing.assert_allclose(
            served_tensor(client, "cnnvis", name, (10, 7)), f, rtol=1e-5, atol=1e-6
        )
        text = get(client, "metadata", run="cnnvis", name=name).get_data(as_text=True)
        rows = [line.split("\t") for line in text.strip("\n").split("\n")]
        assert rows[0] == ["label", "step"] and len(rows) == 11
        assert [r[0] for r in rows[1:]] == labels and {r[1] for r in rows[1:]} == {str(step)}
        png = get(client, "sprite_image", run="cnnvis", name=name)
        assert png.headers["Content-Type"] == "image/png"
        served = decode_png(png.get_data())
        np.testing.assert_array_equal(
            served, (np.clip(sprite.image, 0, 1) * 255 + 0.5).astype(np.uint8)
        )
        # The Projector counts sprites per row as image width / single_image_dim[0].
        assert served.shape[1] // entry["sprite"]["singleImageDim"][0] == sprite.per_row
    # One sprite file, shared by both entries (same images).
    assert len([f for f in os.listdir(run / "projector") if f.startswith("sprite_")]) == 1


def test_rewriting_an_entry_replaces_it_and_keeps_the_others(tmp_path):
    run = tmp_path / "cnnvis"
    _event_file(run)
    a, b, c = (np.full((4, 2), v, np.float32) for v in (1.0, 2.0, 3.0))
    write_embedding(str(run), "e1", a)
    write_embedding(str(run), "e2", b)
    write_embedding(str(run), "e1", c, {"label": list("wxyz")})
    config = read_config(str(run))
    assert [e.tensor_name for e in config.embeddings] == ["e1", "e2"]
    assert config.embeddings[0].metadata_path == "projector/e1_metadata.tsv"
    assert not config.embeddings[1].metadata_path and not config.embeddings[1].sprite.image_path
    client = projector_client(tmp_path)
    np.testing.assert_array_equal(served_tensor(client, "cnnvis", "e1", (4, 2)), c)
    np.testing.assert_array_equal(served_tensor(client, "cnnvis", "e2", (4, 2)), b)
    assert get(client, "metadata", run="cnnvis", name="e1").get_data(as_text=True) == "w\nx\ny\nz\n"


def test_the_log_directory_can_move(tmp_path):
    run = tmp_path / "a" / "cnnvis"
    _event_file(run)
    write_embedding(
        str(run), "e", np.eye(4, dtype=np.float32), sprite=make_sprite(np.zeros((4, 2, 2, 3)))
    )
    os.rename(tmp_path / "a", tmp_path / "b")
    client = projector_client(tmp_path / "b")
    np.testing.assert_array_equal(served_tensor(client, "cnnvis", "e", (4, 4)), np.eye(4))
    assert decode_png(get(client, "sprite_image", run="cnnvis", name="e").get_data()).shape == (
        4,
        4,
        3,
    )


def test_bad_embeddings_are_refused(tmp_path):
    run = str(tmp_path / "cnnvis")
    with pytest.raises(ValueError, match="only letters, digits"):
        write_embedding(run, "../escape", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_embedding(run, "e", np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="has 2 values for 3 points"):
        write_embedding(run, "e", np.zeros((3, 2)), {"label": ["a", "b"]})
    with pytest.raises(ValueError, match="holds 4 images for 3 points"):
        write_embedding(run, "e", np.zeros((3, 2)), sprite=make_sprite(np.zeros((4, 2, 2, 3))))
    assert not os.path.exists(os.path.join(run, "projector_config.pbtxt"))


def _names(client):
    info = json.loads(get(client, "info", run="cnnvis").get_data())
    return [e["tensorName"] for e in info["embeddings"]]


def test_a_running_projector_sees_new_epochs_through_the_refresh_checkpoint(tmp_path):
    run = tmp_path / "cnnvis"
    _event_file(run)
    write_embedding(str(run), "e1", np.eye(4, dtype=np.float32))
    client = projector_client(tmp_path)
    assert _names(client) == ["e1"]
    write_embedding(str(run), "e2", 2 * np.eye(4, dtype=np.float32))
    # Same TensorBoard instance: the new checkpoint makes it re-read the config, and the
    # checkpoint's scalar adds no embedding of its own.
    assert _names(client) == ["e1", "e2"]
    np.testing.assert_array_equal(served_tensor(client, "cnnvis", "e2", (4, 4)), 2 * np.eye(4))
    assert sorted(os.listdir(run / "projector")) == [
        "e1.tsv",
        "e2.tsv",
        "refresh-2.data-00000-of-00001",
        "refresh-2.index",
    ]
    # Without the refresh checkpoint the running Projector keeps its stale config.
    write_embedding(str(run), "e3", np.eye(4, dtype=np.float32), refresh=False)
    assert _names(client) == ["e1", "e2"]
    assert _names(projector_client(tmp_path)) == ["e1", "e2", "e3"]  # a restart sees it
