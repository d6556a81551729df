"""Reliability: exact resume (also after SIGKILL), bad inputs with clear messages, NaN losses,
2-process equivalence and a dying worker."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.env import seed_all_rng
from helpers import FAST_OPTS, QUICK_CONFIG, free_port
from PIL import Image

from domaingen.data.datasets import (
    DatasetAnnotationError,
    load_voc_style_instances,
    register_voc_style,
)
from domaingen.data.mappers import ClassificationMapper, ImageDecodeError
from domaingen.engine import ConfigError, Trainer, TrainingDivergedError, load_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
QUICK = os.path.join(REPO, "configs", "quick")
COOP = os.path.join(QUICK, "synthetic_domains_coop.yaml")
# Subprocesses import this checkout's domaingen and read the tests' synthetic data.
ENV = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
KILL_TRIALS = int(os.environ.get("DOMAINGEN_KILL_TRIALS", "1"))


def final_weights(out_dir):
    return torch.load(os.path.join(out_dir, "model_final.pth"), weights_only=True)["model"]


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def train(cfg):
    seed_all_rng(cfg.SEED)  # as tools/train_net.py's default_setup does, before the model is built
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=True)
    trainer.train()
    return trainer


# ------------------------------------------------------------------------------ exact resume

RESUME_RUNS = {
    # The detector with CLIP the Gap: the optimization step, then detection with injection.
    "clip_gap": (os.path.join(QUICK, "diverse_weather_clip_gap.yaml"),
                 [*FAST_OPTS, "DATASETS.TEST", "()", "MODEL.CLIP_GAP.OPT_ITERS", "2",
                  "MODEL.CLIP_GAP.OPT_IMS_PER_BATCH", "1", "SOLVER.WARMUP_ITERS", "1"]),
    # AD-CLIP: the paired source/target loader.
    "adclip": (os.path.join(QUICK, "synthetic_domains_adclip.yaml"),
               ["SOLVER.IMS_PER_BATCH", "4", "DATASETS.TEST", "()"]),
}


@pytest.mark.parametrize("run", sorted(RESUME_RUNS))
def test_resume_from_a_checkpoint_gives_the_uninterrupted_weights(run, synthetic_weather,
                                                                 synthetic_domains, tmp_path):
    config, opts = RESUME_RUNS[run]
    opts = [*opts, "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD",
            "0", "SEED", "0"]
    train(load_config(config, [*opts, "OUTPUT_DIR", str(tmp_path / "full")]))
    stopped = tmp_path / "stopped"  # a run stopped after its iteration-2 checkpoint
    stopped.mkdir()
    shutil.copy(tmp_path / "full" / "model_0000001.pth", stopped)
    (stopped / "last_checkpoint").write_text("model_0000001.pth")
    resumed = train(load_config(config, [*opts, "OUTPUT_DIR", str(stopped)]))
    assert resumed.start_iter == 2
    assert_same_weights(final_weights(tmp_path / "full"), final_weights(stopped))


def train_net(out_dir, *extra):
    cmd = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", COOP,
           *extra, "SOLVER.MAX_ITER", "10", "SOLVER.CHECKPOINT_PERIOD", "2",
           "SOLVER.IMS_PER_BATCH", "8", "TEST.EVAL_PERIOD", "0",
           "DATASETS.TEST", "('synthetic_domains_sketch_test',)", "OUTPUT_DIR", str(out_dir)]
    return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def finish(proc):
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_weights(synthetic_domains, tmp_path):
    """CoOp through tools/train_net.py, SIGKILLed at a random moment after its first checkpoint,
    then resumed with --resume; the kill moments are seeded, the outcomes printed."""
    reference = train_net(tmp_path / "reference")
    finish(reference)
    expected = final_weights(tmp_path / "reference")
    rng = random.Random(0)
    outcomes = []
    for trial in range(KILL_TRIALS):
        out = tmp_path / f"trial{trial}"
        proc = train_net(out)
        while not os.path.exists(out / "last_checkpoint") and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        killed_at = (out / "last_checkpoint").read_text()
        finish(train_net(out, "--resume"))
        same = all(torch.equal(v, final_weights(out)[k]) for k, v in expected.items())
        outcomes.append(f"trial {trial}: killed (rc {proc.returncode}) after {killed_at}, "
                        f"resumed, final weights {'identical' if same else 'DIFFERENT'}")
    print("\n".join(outcomes))
    assert all(o.endswith("identical") for o in outcomes), outcomes


GAP_KILL_RUN = [  # 40 optimization-step iterations (3 s), then 2 detector iterations
    "--config-file", os.path.join(QUICK, "diverse_weather_clip_gap.yaml"), *FAST_OPTS,
    "DATASETS.TEST", "()", "MODEL.CLIP_GAP.OPT_ITERS", "40",
    "MODEL.CLIP_GAP.OPT_IMS_PER_BATCH", "1", "MODEL.CLIP_GAP.OPT_CROPS_PER_IMAGE", "2",
    "MODEL.CLIP_GAP.OPT_LOG_PERIOD", "1",
    "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "SEED", "0"]


@pytest.mark.slow
def test_sigkill_during_the_clip_gap_optimization_step_then_resume(synthetic_weather, tmp_path):
    """Killed in the optimization step (before any checkpoint), --resume runs the step again
    from its start: the same seeds give the same bank, and the detector the same weights."""
    def start(out, *flags):
        cmd = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), *flags,
               *GAP_KILL_RUN, "OUTPUT_DIR", str(out)]
        return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    finish(start(tmp_path / "reference"))
    out = tmp_path / "killed"
    proc = start(out)
    log = out / "log.txt"
    while proc.poll() is None and "augmentation iter 2/40" not in (
            log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = re.findall(r"augmentation iter (\d+)/40", log.read_text())
    assert proc.returncode == -signal.SIGKILL and int(done[-1]) < 40, done  # mid-optimization
    assert not (out / "last_checkpoint").exists()
    finish(start(out, "--resume"))
    assert log.read_text().count("Optimizing 15 semantic augmentations") == 2  # from the start
    assert_same_weights(final_weights(tmp_path / "reference"), final_weights(out))


# ------------------------------------------------------------------------------ bad input

def _jpeg(path, size=(64, 48)):
    Image.new("RGB", size, (90, 120, 150)).save(path)


@pytest.fixture
def detection_set_with_a_broken_image(tmp_path):
    """A 3-image VOC split whose middle image is a truncated JPEG, registered for training."""
    root = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    ids = ["good1", "broken", "good2"]
    for image_id in ids:
        _jpeg(root / "JPEGImages" / f"{image_id}.jpg")
        (root / "Annotations" / f"{image_id}.xml").write_text(
            "<annotation><size><width>64</width><height>48</height></size><object><name>car"
            "</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>40</xmax><ymax>30</ymax></bndbox>"
            "</object></annotation>")
    broken = root / "JPEGImages" / "broken.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids))
    name = "reliability_broken_image_train"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    classes = MetadataCatalog.get("synthetic_dw_daytime_clear_train").thing_classes
    register_voc_style(name, str(root), "train", classes)
    return name, str(broken)


def test_detection_loader_names_an_unreadable_image_or_skips_it(detection_set_with_a_broken_image,
                                                                caplog):
    name, broken = detection_set_with_a_broken_image
    opts = [*FAST_OPTS, "DATASETS.TRAIN", f"('{name}',)", "SOLVER.IMS_PER_BATCH", "3", "SEED", "0"]
    with pytest.raises(ImageDecodeError) as err:
        next(iter(Trainer.build_train_loader(load_config(QUICK_CONFIG, opts))))
    assert str(err.value).startswith(f"cannot read image {broken}: ")
    assert "set DATALOADER.SKIP_BAD_IMAGES True" in str(err.value)

    skipping = load_config(QUICK_CONFIG, [*opts, "DATALOADER.SKIP_BAD_IMAGES", "True"])
    batch = next(iter(Trainer.build_train_loader(skipping)))
    assert len(batch) == 3 and broken not in {d["file_name"] for d in batch}
    assert f"skipped unreadable image {broken}" in caplog.text
    assert "1 skipped so far in this worker" in caplog.text


def test_voc_box_outside_the_image_is_an_error(tmp_path):
    root = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    _jpeg(root / "JPEGImages" / "a.jpg", (100, 80))
    xml = root / "Annotations" / "a.xml"
    xml.write_text("<annotation><size><width>100</width><height>80</height></size><object><name>"
                   "car</name><bndbox><xmin>120</xmin><ymin>10</ymin><xmax>150</xmax><ymax>40"
                   "</ymax></bndbox></object></annotation>")
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    with pytest.raises(DatasetAnnotationError) as err:
        load_voc_style_instances(str(root), "train", ("car",))
    assert str(err.value).startswith(
        f"Box for 'car' lies outside the 100x80 image in {xml}: xmin=120 ymin=10 xmax=150 "
        f"ymax=40; fix the box or the <size>")
    # A box reaching past the edge is kept as annotated (Detectron2 clips it for training).
    xml.write_text(xml.read_text().replace("<xmin>120</xmin>", "<xmin>60</xmin>"))
    (record,) = load_voc_style_instances(str(root), "train", ("car",))
    assert record["annotations"][0]["bbox"] == [59, 9, 149, 39]


def test_yaml_value_of_the_wrong_type_names_the_file_and_key(tmp_path):
    bad = tmp_path / "wrong_type.yaml"
    bad.write_text("SOLVER:\n  BASE_LR: fast\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(bad))
    message = str(err.value)
    assert message.startswith(f"{bad}: ")
    assert "SOLVER.BASE_LR" in message and "fast" in message and "float" in message


def test_nan_loss_stops_with_the_iteration_and_the_last_good_checkpoint(synthetic_domains,
                                                                        tmp_path):
    cfg = load_config(COOP, ["SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2",
                             "SOLVER.IMS_PER_BATCH", "4", "TEST.EVAL_PERIOD", "0",
                             "OUTPUT_DIR", str(tmp_path)])
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    model = trainer._trainer.model
    forward = model.forward

    def diverging(batch):
        losses = forward(batch)
        return {k: v * float("nan") for k, v in losses.items()} if trainer.iter == 2 else losses

    model.forward = diverging
    with pytest.raises(TrainingDivergedError) as err:
        trainer.train()
    message = str(err.value)
    assert message.startswith("Training diverged: the loss became NaN or infinite at iteration 2")
    assert f"The last good checkpoint is {tmp_path / 'model_0000001.pth'}; after the fix, " \
           f"continue from it with --resume." in message
    assert "Lower SOLVER.BASE_LR (now 0.02)" in message
    assert "check the training data (boxes, labels, images) of synthetic_domains_" in message
    assert not os.path.exists(tmp_path / "model_final.pth")


# ------------------------------------------------------------------------------ distributed

def _test_transforms(cls, cfg, is_train):
    return cls(False, cfg.INPUT.CLS_SIZE, image_format=cfg.INPUT.FORMAT)


def _equivalence_worker(out_dir):
    """A few CoOp steps at total batch 8 with deterministic (test-time) transforms: random
    augmentation is seeded per rank, so it differs between 1 and 2 processes by design."""
    from detectron2.engine.train_loop import TrainerBase
    from detectron2.utils import comm

    ClassificationMapper.from_cfg = classmethod(_test_transforms)
    cfg = load_config(COOP, ["SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "8",
                             "SOLVER.CHECKPOINT_PERIOD", "100", "OUTPUT_DIR", out_dir])
    seed_all_rng(cfg.SEED)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer._hooks = [h for h in trainer._hooks if type(h).__name__ != "EvalHook"]
    TrainerBase.train(trainer, 0, cfg.SOLVER.MAX_ITER)
    model = trainer.model.module if comm.get_world_size() > 1 else trainer.model
    torch.save(model.prompts.ctx.detach(), os.path.join(out_dir, f"ctx{comm.get_world_size()}"
                                                                 f"-rank{comm.get_rank()}.pt"))


@pytest.mark.distributed
def test_two_processes_match_one_process_with_the_same_total_batch(synthetic_domains, tmp_path,
                                                                   monkeypatch, launch_on_cpu):
    monkeypatch.setattr(ClassificationMapper, "from_cfg", classmethod(_test_transforms))
    _equivalence_worker(str(tmp_path))
    launch_on_cpu(_equivalence_worker, (str(tmp_path),))
    one = torch.load(tmp_path / "ctx1-rank0.pt", weights_only=True)
    two = [torch.load(tmp_path / f"ctx2-rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert torch.equal(two[0], two[1])
    print(f"1 vs 2 processes: max |ctx difference| {(one - two[0]).abs().max().item():.3g}")
    torch.testing.assert_close(two[0], one, rtol=0, atol=1e-6)


@pytest.mark.distributed
def test_two_machines_match_one_process(synthetic_domains, tmp_path, monkeypatch):
    """tools/train_net.py as two "machines" of one process each (Detectron2's --num-machines,
    gloo over loopback, one OUTPUT_DIR) ends with the weights of one process at the same total
    batch. The deterministic transforms of the test above reach both processes (and the
    workers they spawn) through a sitecustomize module."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent('''
        from domaingen.data.mappers import ClassificationMapper

        ClassificationMapper.from_cfg = classmethod(
            lambda cls, cfg, is_train: cls(False, cfg.INPUT.CLS_SIZE, '''
        '''image_format=cfg.INPUT.FORMAT))
    '''))
    monkeypatch.setattr(ClassificationMapper, "from_cfg", classmethod(_test_transforms))
    _equivalence_worker(str(tmp_path))
    out = tmp_path / "machines"
    url = f"tcp://127.0.0.1:{free_port()}"
    env = dict(ENV, PYTHONPATH=f"{site}{os.pathsep}{REPO}")
    machines = [subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", COOP,
         "--num-machines", "2", "--machine-rank", str(rank), "--dist-url", url,
         "SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.CHECKPOINT_PERIOD", "100",
         "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "('synthetic_domains_sketch_test',)",
         "OUTPUT_DIR", str(out)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for proc in machines:
        finish(proc)
    assert (out / "log.txt.rank1").exists()  # the second machine trained in the same group
    one = torch.load(tmp_path / "ctx1-rank0.pt", weights_only=True)
    two = final_weights(out)["prompts.ctx"]
    print(f"1 process vs 2 machines: max |ctx difference| {(one - two).abs().max().item():.3g}")
    torch.testing.assert_close(two, one, rtol=0, atol=1e-6)


@pytest.mark.distributed
def test_a_dying_worker_ends_the_launch_with_an_error(tmp_path):
    script = tmp_path / "dying_worker.py"
    script.write_text(textwrap.dedent('''
        import os
        import sys

        from detectron2.engine import default_argument_parser
        from detectron2.utils import comm

        from domaingen.engine import launch


        def main(args):
            if comm.get_rank() == 1:
                os._exit(3)
            comm.synchronize()  # without the launcher watching, rank 0 would wait here forever


        if __name__ == "__main__":
            launch(main, default_argument_parser().parse_args(sys.argv[1:]))
    '''))
    proc = subprocess.run([sys.executable, str(script), "--num-gpus", "2"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "process 1 terminated with exit code 3" in proc.stderr, proc.stderr[-3000:]
