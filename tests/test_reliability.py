"""Reliability: exact resume (also after SIGKILL), bad inputs with clear messages, NaN losses,
2-process equivalence and a dying worker."""
import os
import random
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
from PIL import Image

from domaingen.data.datasets import DatasetAnnotationError, load_voc_style_instances, register_voc_style
from domaingen.data.mappers import ClassificationMapper, ImageDecodeError
from domaingen.data.synthetic.domains import generate_domains
from domaingen.engine import ConfigError, Trainer, TrainingDivergedError, load_config

from conftest import FAST_OPTS, QUICK_CONFIG, launch_on_cpu

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
QUICK = os.path.join(REPO, "configs", "quick")
COOP = os.path.join(QUICK, "synthetic_domains_coop.yaml")
# Subprocesses import this checkout's domaingen and read the tests' synthetic data.
ENV = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
KILL_TRIALS = int(os.environ.get("DOMAINGEN_KILL_TRIALS", "1"))


@pytest.fixture(scope="module")
def synthetic_domains():
    generate_domains(os.environ["DETECTRON2_DATASETS"], seed=0, num_per_class=6)


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
