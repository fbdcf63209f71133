"""`cnnvis maximize|dream|invert|texture|style|adversarial` in-process, offline: the trained
demo model saved to a file, built-in sample images, few steps; PNGs read back and checked."""

import cv2
import numpy as np
import pytest

from keras_cnnvis.cli import main


@pytest.fixture(scope="module")
def saved_demo(trained_demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "demo.keras"
    trained_demo["model"].save(path)
    return str(path)


def png(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img[..., ::-1].astype(np.float32) / 255


def run(args, saved_demo, out, capsys):
    rc = main(args + ["--model", saved_demo, "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_maximize_channels_and_classes(saved_demo, tmp_path, capsys):
    rc, out, _ = run(
        ["maximize", "--layer", "conv3", "--channel", "0", "7", "--steps", "4"],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0 and "conv3_7.png" in out
    a, b = png(tmp_path / "conv3_0.png"), png(tmp_path / "conv3_7.png")
    assert a.shape == (64, 64, 3) and not np.array_equal(a, b)
    rc, _, _ = run(["maximize", "--class", "2", "--steps", "4"], saved_demo, tmp_path, capsys)
    assert rc == 0 and png(tmp_path / "class_2.png").shape == (64, 64, 3)


def test_dream_changes_the_sample_image(saved_demo, tmp_path, capsys):
    rc, _, _ = run(
        [
            "dream",
            "--image",
            "astronaut",
            "--size",
            "80",
            "--layers",
            "conv2=1",
            "conv3=0.5",
            "--steps",
            "3",
        ],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0
    from keras_cnnvis.synthesis.samples import sample_image

    dreamt = png(tmp_path / "dream.png")
    assert dreamt.shape == (80, 80, 3)
    assert np.abs(dreamt - sample_image("astronaut", 80)).mean() > 0.01


def test_invert_reports_psnr(saved_demo, tmp_path, capsys):
    rc, out, _ = run(
        ["invert", "--image", "coffee", "--layer", "conv1", "--steps", "60"],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0
    db = float(out.split("PSNR of the reconstruction: ")[1].split(" dB")[0])
    from keras_cnnvis.synthesis.invert import psnr
    from keras_cnnvis.synthesis.samples import sample_image

    rebuilt = png(tmp_path / "invert_conv1.png")
    assert abs(psnr(rebuilt, sample_image("coffee", 64)) - db) < 0.5  # 8-bit rounding


def test_texture_and_style(saved_demo, tmp_path, capsys):
    rc, _, _ = run(
        ["texture", "--image", "brick", "--size", "48", "--steps", "3"],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0 and png(tmp_path / "texture.png").shape == (48, 48, 3)
    rc, _, _ = run(
        ["style", "--content", "chelsea", "--style", "gravel", "--size", "48", "--steps", "3"],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0 and png(tmp_path / "style.png").shape == (48, 48, 3)


def test_adversarial_and_fooling(saved_demo, tmp_path, capsys):
    rc, out, _ = run(
        ["adversarial", "--image", "chelsea", "--epsilon", "8/255", "--steps", "5"],
        saved_demo,
        tmp_path,
        capsys,
    )
    assert rc == 0 and "max pixel change 8.0/255" in out
    from keras_cnnvis.synthesis.samples import sample_image

    adv = png(tmp_path / "adversarial.png")
    assert np.abs(adv - sample_image("chelsea", 64)).max() <= 8 / 255 + 1 / 255
    assert png(tmp_path / "perturbation.png").shape == (64, 64, 3)
    rc, out, _ = run(["adversarial", "--fool", "1", "--steps", "30"], saved_demo, tmp_path, capsys)
    assert rc == 0 and "fooling image: class 1" in out
    assert (tmp_path / "fooling_1.png").exists()


def test_keras_applications_name_with_random_weights(tmp_path, capsys):
    rc = main(
        [
            "texture",
            "--model",
            "vgg16",
            "--weights",
            "none",
            "--image",
            "gravel",
            "--size",
            "32",
            "--steps",
            "2",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0 and png(tmp_path / "texture.png").shape == (32, 32, 3)


def test_errors_name_the_problem(saved_demo, tmp_path, capsys):
    cases = [
        (["maximize", "--layer", "nope", "--channel", "0"], "No layer named 'nope'"),
        (["maximize", "--layer", "conv1", "--channel", "99"], "has 16 channels"),
        (["maximize", "--class", "7"], "Class index 7 is out of range"),
        (["maximize", "--steps", "1"], "either --layer with --channel, or --class"),
        (["dream", "--image", "no_such_file.png"], "built-in sample name"),
    ]
    for args, message in cases:
        rc, _, err = run(args, saved_demo, tmp_path, capsys)
        assert rc == 2 and message in err, (args, err)
    missing = str(tmp_path / "missing.keras")
    rc = main(["invert", "--layer", "conv1", "--model", missing])
    assert rc == 2 and f"Model file '{missing}' does not exist" in capsys.readouterr().err
