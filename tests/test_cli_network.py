"""`cnnvis network MODEL --image FILE`: your own image through a saved model, written as the same
records NetworkCallback writes; bad files are refused with a clear message."""

import cv2
import numpy as np
import pytest

from callback_helpers import small_cnn
from eventfiles import read_run
from keras_cnnvis.cli import main
from keras_cnnvis.network import input_name, network_trace
from keras_cnnvis.network.records import decode


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("network_cli")
    model = small_cnn()
    path = str(folder / "small.keras")
    model.save(path)
    rng = np.random.default_rng(0)
    pictures = []
    for i, (h, w) in enumerate(((16, 16), (24, 40))):
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        file = str(folder / f"picture{i}.png")
        cv2.imwrite(file, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        pictures.append((file, rgb))
    return model, path, pictures


def test_one_image_is_traced_into_the_network_records(saved, tmp_path, capsys):
    model, path, pictures = saved
    file, rgb = pictures[0]
    code = main(
        ["network", path, "--image", file, "--logdir", str(tmp_path), "--class-names", "a", "b"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Prediction for" in out and "5 layers, full records" in out
    run = read_run(str(tmp_path / "cnnvis"))
    assert {r.step for records in run.values() for r in records} == {0}
    overview = run["json/network/overview"][0].value
    assert overview["n_probes"] == 1 and overview["class_names"] == ["a", "b"]
    x = rgb.astype(np.float32) / 255.0  # 16x16 already: no resizing, [0, 1] pixels
    for record in network_trace(model, x):
        logged = run[f"json/network/layer/{record.path}"][0].value
        np.testing.assert_allclose(decode(logged["outputs"][0]), record.output, atol=1e-6)


def test_several_images_of_other_sizes_are_resized_to_the_model(saved, tmp_path):
    model, path, pictures = saved
    files = [f for f, _ in pictures]
    assert main(["network", path, "--image", *files, "--logdir", str(tmp_path), "--step", "3"]) == 0
    run = read_run(str(tmp_path / "cnnvis"))
    overview = run["json/network/overview"][0]
    assert overview.step == 3 and overview.value["n_probes"] == 2
    image = decode(run[f"json/network/layer/{input_name(model)}"][0].value["outputs"][1])
    resized = cv2.resize(pictures[1][1].astype(np.float32) / 255.0, (16, 16))
    np.testing.assert_allclose(image, resized, atol=1e-6)


def test_bad_files_are_refused(saved, tmp_path, capsys):
    _, path, pictures = saved
    assert main(["network", path, "--image", str(tmp_path / "none.png")]) == 2
    assert "Image file" in capsys.readouterr().err
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["network", path, "--image", str(text), "--logdir", str(tmp_path)]) == 2
    assert "Could not read" in capsys.readouterr().err
    assert main(["network", str(tmp_path / "missing.keras"), "--image", pictures[0][0]]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["network", path])  # --image is required
