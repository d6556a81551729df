"""tools/benchmark.py and tools/demo.py, run as scripts."""
import hashlib
import json
import os
import runpy
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import QUICK_CONFIG

from domaingen.engine import AtomicCheckpointer, Trainer, load_config

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


@pytest.mark.slow
def test_benchmark_smallest_cases_report_time_memory_flops_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_tool("benchmark.py", "--suite", "all", "--model", "tiny", "--iters", "2",
                    "--warmup", "1", "--crops", "2", "--batch", "2", "--cases", "text_encoding[7,*",
                    "--cases", "optimization_step*", "--json", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cases = {r["case"]: r for r in report["results"]}
    assert set(cases) == {"text_encoding[7,ours]", "text_encoding[7,authors]",
                          "optimization_step[ours]", "optimization_step[authors]"}
    for r in cases.values():
        assert r["model"] == "tiny" and r["iters"] == 2
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"] and r["iqr_s"] >= 0
        assert r["gflop_per_step"] > 0 and r["peak_memory_mb"] > 0
        assert r["fraction_of_peak"] == pytest.approx(
            r["gflop_per_s"] / report["peak_gflop_per_s"])
    assert report["peak_gflop_per_s"] == max(report["matmul_gflop_per_s"],
                                             report["conv_gflop_per_s"])
    # The authors' 77-token prompts do more work than our shared-prefix path; so does their step.
    assert cases["text_encoding[7,authors]"]["gflop_per_step"] > \
        5 * cases["text_encoding[7,ours]"]["gflop_per_step"]
    assert cases["optimization_step[authors]"]["gflop_per_step"] > \
        cases["optimization_step[ours]"]["gflop_per_step"]
    assert {r["ratio"] for r in report["ratios"]} == {
        "text_encoding at 7 classes: authors' path / ours",
        "optimization step: authors' path / ours"}
    assert "| tiny | text_encoding[7,authors] | 2 images x 7 classes = 14 prompts |" in proc.stdout


@pytest.mark.slow
def test_benchmark_training_loop_reports_the_loader_share(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_tool("benchmark.py", "--suite", "classification", "--model", "tiny", "--iters",
                    "2", "--warmup", "1", "--batch", "2", "--cases", "train_loop[coop,0*",
                    "--json", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = json.loads(out.read_text())["results"]
    assert result["case"] == "train_loop[coop,0 workers]"
    assert result["batch"] == "2 images, 0 loader workers"
    # With no loader workers the step reads and maps its images itself.
    assert 0 < result["loader_share"] < 1
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| tiny | train_loop"))
    assert row.rstrip(" |").split("|")[-1].strip() == f"{100 * result['loader_share']:.1f}"


@pytest.mark.slow
def test_benchmark_detector_iteration_against_the_authors_detector(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_tool("benchmark.py", "--suite", "detection", "--model", "tiny", "--iters", "1",
                    "--warmup", "1", "--batch", "1", "--cases", "detector_train_iter[a*",
                    "--cases", "detector_train_iter[parts]", "--json", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cases = {r["case"]: r for r in report["results"]}
    ours, theirs = cases["detector_train_iter[aug]"], cases["detector_train_iter[authors]"]
    # Theirs carries a second CLIP, a text tower and an R101 res5; it pools over all tokens.
    assert theirs["checkpoint_mb"] > 2 * ours["checkpoint_mb"] > 0
    assert theirs["gflop_per_step"] > ours["gflop_per_step"]
    parts = cases["detector_train_iter[parts]"]
    assert set(parts["parts_s"]) == {"trunk", "rpn", "roi_layer4", "roi_attention_pool",
                                     "roi_pooler_predictor_loss"}
    assert all(t > 0 for t in parts["parts_s"].values())
    assert sum(parts["parts_share"].values()) == pytest.approx(1.0)
    assert [r["ratio"] for r in report["ratios"]] == ["detector iteration: authors' path / ours"]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_demo_missing_input_names_the_path(checkpoint, tmp_path):
    missing = tmp_path / "nowhere.jpg"
    proc = run_tool("demo.py", *demo_args([missing], tmp_path / "out", "MODEL.WEIGHTS", checkpoint))
    assert proc.returncode != 0
    assert str(missing) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_demo_never_writes_over_its_inputs_or_files_it_did_not_write(checkpoint, images,
                                                                     tmp_path):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.iterdir()}
    message = tool_error("demo.py", *demo_args([images], images, "MODEL.WEIGHTS", checkpoint))
    assert f"{images / 'img0.jpg'} would replace the input image" in message
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.jpg").write_bytes(b"someone's file")
    message = tool_error("demo.py", *demo_args([images], out, "MODEL.WEIGHTS", checkpoint))
    assert f"{out / 'img0.jpg'} exists: choose an empty --output folder" in message
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.iterdir()}
    assert after == before and (out / "img0.jpg").read_bytes() == b"someone's file"


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


def test_benchmark_opts_override_every_config_after_the_cases_own_keys():
    from domaingen.benchmark.runner import Context, parse_args

    args = parse_args(["--opts", "SOLVER.AMP.PRECISION", "bfloat16", "MODEL.COMPILE", "True"])
    cfg = Context(args, "tiny").load("quick/synthetic_domains_coop.yaml",
                                     ["MODEL.COMPILE", "False"])
    assert cfg.SOLVER.AMP.PRECISION == "bfloat16" and cfg.MODEL.COMPILE is True
    assert "KEY VALUE pairs" in tool_error("benchmark.py", "--opts", "MODEL.COMPILE")


def test_benchmark_case_patterns_take_brackets_literally():
    from domaingen.benchmark.runner import case_matches

    assert case_matches("text_encoding[7,authors]", "*[7,*")
    assert not case_matches("spg_inference[345,authors]", "*[7,*")  # a glob class would match ","
    assert case_matches("train_loop[adclip,2 workers]", "train_loop[adclip,2 workers]")
    assert case_matches("train_loop[coop,0 workers]", "train_loop[coop,? workers]")


def test_compare_results_never_writes_over_a_results_file(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text("domain,car,mAP\nday,50.0,50.0\n")
    tool_error("compare_results.py", f"a={run}", "--output", run / "results.csv")
    assert "is one of the results files it reads" in capsys.readouterr().err
    assert (run / "results.csv").read_text() == "domain,car,mAP\nday,50.0,50.0\n"


def test_compare_results_writes_the_target_mean_and_a_side_by_side_chart(tmp_path, capsys):
    for run, values in (("base", (60.0, 20.0, 30.0)), ("gap", (58.0, 26.0, 31.0))):
        (tmp_path / run).mkdir()
        (tmp_path / run / "results.csv").write_text(
            "domain,car,mAP\n" + "".join(f"{d},{v},{v}\n" for d, v in
                                         zip(("day", "night", "fog"), values)))
    main = runpy.run_path(os.path.join(TOOLS, "compare_results.py"), run_name="x")["main"]
    main([f"base={tmp_path / 'base'}", f"gap={tmp_path / 'gap'}",
          "--output", str(tmp_path / "comparison.md")])
    table = (tmp_path / "comparison.md").read_text()
    assert "| **target mean** |   25.0 |  28.5 |         +3.5 |" in table
    assert "| day             |   60.0 |  58.0 |         -2.0 |" in table
    assert (tmp_path / "comparison.png").read_bytes().startswith(b"\x89PNG")
