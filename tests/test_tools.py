"""tools/benchmark.py and tools/demo.py, run as scripts."""
import json
import os
import runpy
import subprocess
import sys

import cv2
import numpy as np
import pytest

from domaingen.engine import AtomicCheckpointer, Trainer, load_config

from conftest import QUICK_CONFIG

TOOLS = os.path.join(os.path.dirname(__file__), "..", "tools")
IMAGE_SIZES = [(120, 160), (90, 200)]  # (height, width)


def run_tool(name, *args):
    """The tool as a script, in a new process."""
    return subprocess.run([sys.executable, os.path.join(TOOLS, name), *map(str, args)],
                          capture_output=True, text=True, timeout=180)


def tool_error(name, *args) -> str:
    """Run the tool's ``main`` in this process (no import cost) and return its exit message."""
    main = runpy.run_path(os.path.join(TOOLS, name), run_name=f"tools_{name[:-3]}")["main"]
    with pytest.raises(SystemExit) as info:
        main(list(map(str, args)))
    assert info.value.code not in (0, None)
    return str(info.value.code)


def test_benchmark_smallest_detection_suite_writes_positive_timings(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_tool("benchmark.py", "--suite", "detection", "--model", "tiny", "--iters", "1",
                    "--warmup", "0", "--json", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cases = {r["case"]: r for r in report["results"]}
    assert set(cases) == {"optimization_step", "detector_train_iter[aug]",
                          "detector_train_iter[no_aug]"}
    for result in cases.values():
        assert result["model"] == "tiny" and result["iters"] == 1
        assert 0 < result["min_s"] <= result["median_s"] <= result["max_s"]
        assert result["iters_per_s"] > 0
    assert cases["optimization_step"]["batch"].startswith("60 crops")
    [ratio] = report["ratios"]
    assert ratio["model"] == "tiny" and ratio["value"] > 0
    assert "| tiny | optimization_step |" in proc.stdout
    assert "60 crops" in proc.stdout


def test_benchmark_adclip_smoke_reports_images_per_second_and_truncation_ratios():
    main = runpy.run_path(os.path.join(TOOLS, "benchmark.py"), run_name="tools_benchmark")["main"]
    report = main(["--suite", "classification", "--model", "tiny", "--iters", "1",
                   "--warmup", "0", "--batch", "2"])
    cases = {r["case"]: r for r in report["results"]}
    assert set(cases) == {"adclip_train_step[truncated]", "adclip_train_step[naive]",
                          "adclip_inference[truncated]", "adclip_inference[naive]"}
    assert cases["adclip_train_step[naive]"]["batch"] == "2+2 images, 65 classes"
    assert all(r["images_per_s"] > 0 for r in cases.values())
    step = cases["adclip_train_step[truncated]"]
    assert step["images_per_s"] == pytest.approx(4 / step["median_s"])
    assert [r["ratio"] for r in report["ratios"]] == [
        "adclip_train_step naive / truncated", "adclip_inference naive / truncated"]


def test_benchmark_rejects_an_unknown_model():
    assert "RN50x64" in tool_error("benchmark.py", "--model", "tiny,RN50x64")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-init tiny ClipRCNN saved with AtomicCheckpointer."""
    save_dir = tmp_path_factory.mktemp("demo_model")
    model = Trainer.build_model(load_config(QUICK_CONFIG, ["MODEL.DEVICE", "cpu"]))
    AtomicCheckpointer(model, save_dir=str(save_dir)).save("model")
    return save_dir / "model.pth"


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(IMAGE_SIZES):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"img{i}.jpg"), image)
    return folder


def demo_args(inputs, output, *opts):
    return ["--config-file", QUICK_CONFIG, "--input", *inputs, "--output", output,
            "--confidence-threshold", "0.0", "MODEL.DEVICE", "cpu", *opts]


def test_demo_writes_one_overlay_per_image_at_the_input_size(checkpoint, images, tmp_path):
    out = tmp_path / "out"
    proc = run_tool("demo.py", *demo_args([images / "img0.jpg", images / "img1.jpg"], out,
                                          "MODEL.WEIGHTS", checkpoint))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for i, (h, w) in enumerate(IMAGE_SIZES):
        drawn = cv2.imread(str(out / f"img{i}.jpg"))
        assert drawn is not None and drawn.shape == (h, w, 3)
    lines = [line for line in proc.stdout.splitlines() if "detections" in line]
    assert len(lines) == 2 and "img0.jpg" in lines[0] and "img1.jpg" in lines[1]


def test_demo_missing_input_names_the_path(checkpoint, tmp_path):
    missing = tmp_path / "nowhere.jpg"
    proc = run_tool("demo.py", *demo_args([missing], tmp_path / "out", "MODEL.WEIGHTS", checkpoint))
    assert proc.returncode != 0
    assert str(missing) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_demo_undecodable_image_names_the_path(checkpoint, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    message = tool_error("demo.py", *demo_args([broken], tmp_path / "out",
                                               "MODEL.WEIGHTS", checkpoint))
    assert str(broken) in message and "decode" in message


def test_demo_without_weights_says_so(images, tmp_path):
    assert "MODEL.WEIGHTS" in tool_error("demo.py", *demo_args([images], tmp_path / "out"))
    missing = tmp_path / "missing.pth"
    assert str(missing) in tool_error("demo.py", *demo_args([images], tmp_path / "out",
                                                            "MODEL.WEIGHTS", missing))
