"""Training, checkpointing, evaluation and launching through tools/train_net.py's code path."""
import os
import subprocess
import sys

import pytest
import torch
from detectron2.engine import default_argument_parser
from helpers import FAST_OPTS, QUICK_CONFIG
from torch import nn

from domaingen.engine import (
    AtomicCheckpointer,
    CheckpointError,
    Trainer,
    create_ddp_model,
    load_config,
)
from domaingen.engine.cli import main

REPO = os.path.join(os.path.dirname(__file__), "..")


def train(output_dir, iters, *opts):
    cfg = load_config(QUICK_CONFIG, [*FAST_OPTS, "SOLVER.MAX_ITER", str(iters),
                                     "SOLVER.WARMUP_ITERS", "5", "SOLVER.STEPS", "()",
                                     "SOLVER.BASE_LR", "0.01", "SEED", "0",
                                     "OUTPUT_DIR", str(output_dir), *opts])
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train_results = trainer.train()
    return trainer


@pytest.fixture(scope="module")
def trained(synthetic_weather, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    return out, train(out, 30)


def test_a_training_step_is_sgd_at_the_warm_up_learning_rate(synthetic_weather, tmp_path):
    """The engine's step, by hand: every parameter moves by -lr (grad + weight_decay p) (SGD's
    first momentum step) at iteration 0's warm-up LR, BASE_LR x WARMUP_FACTOR; the rest stays."""
    cfg = load_config(QUICK_CONFIG, [*FAST_OPTS, "SOLVER.MAX_ITER", "1", "DATASETS.TEST", "()",
                                     "SOLVER.BASE_LR", "0.5", "SOLVER.WARMUP_FACTOR", "0.01",
                                     "OUTPUT_DIR", str(tmp_path)])
    trainer = Trainer(cfg)
    seen = []

    def before_step(optimizer, args, kwargs):
        for group in optimizer.param_groups:
            seen.extend((p, p.detach().clone(), None if p.grad is None else p.grad.clone(),
                         group["lr"], group["weight_decay"]) for p in group["params"])

    trainer.optimizer.register_step_pre_hook(before_step)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert [lr for *_, lr, _ in seen] == pytest.approx([0.5 * 0.01] * len(seen))
    moved = 0
    for param, before, grad, lr, decay in seen:
        expected = before if grad is None else before - lr * (grad + decay * before)
        torch.testing.assert_close(param.detach(), expected)
        moved += grad is not None and bool(grad.abs().sum() > 0)
    assert moved > 50  # the RPN, the box head and CLIP's trunk all trained


def test_train_returns_the_final_test_results(trained):
    _, trainer = trained  # a config without DATASETS.VAL: the test after the last iteration
    name = "synthetic_dw_daytime_clear_test"
    expected = Trainer.test(trainer.cfg, trainer.model)[name]["bbox"]["AP50"]
    assert trainer.train_results[name]["bbox"]["AP50"] == pytest.approx(expected, abs=1e-6)


def test_output_dir_layout(trained):
    out, _ = trained
    for name in ("model_final.pth", "last_checkpoint", "metrics.json", "results.md",
                 "results.csv", "ap50_per_domain.png"):
        assert os.path.isfile(out / name), name
    assert open(out / "last_checkpoint").read() == "model_final.pth"
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_eval_only_reproduces_the_ap(trained):
    out, trainer = trained
    expected = Trainer.test(trainer.cfg, trainer.model)
    args = default_argument_parser().parse_args([
        "--config-file", QUICK_CONFIG, "--eval-only", *FAST_OPTS,
        "MODEL.WEIGHTS", str(out / "model_final.pth"), "OUTPUT_DIR", str(out / "eval")])
    results = main(args)
    name = "synthetic_dw_daytime_clear_test"
    assert results[name]["bbox"]["AP50"] == pytest.approx(expected[name]["bbox"]["AP50"], abs=1e-6)
    assert "| daytime_clear |" in open(out / "eval" / "results.md").read()


def test_resume_continues_from_the_last_checkpoint(trained, tmp_path):
    out, _ = trained
    first = train(tmp_path, 4, "SOLVER.CHECKPOINT_PERIOD", "2")
    assert os.path.isfile(tmp_path / "model_0000001.pth")
    cfg = first.cfg.clone()
    cfg.defrost()
    cfg.SOLVER.MAX_ITER = 6
    resumed = Trainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 4
    resumed.train()
    assert resumed.iter == 6  # train() leaves iter == MAX_ITER after finishing


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": nn.ReLU()}, path)
    with pytest.raises(CheckpointError, match="evil.pth needs arbitrary unpickling"):
        AtomicCheckpointer(nn.Linear(1, 1)).load(str(path))


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"model": nn.Linear(4, 4).state_dict()}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cut.pth is not a readable checkpoint"):
        AtomicCheckpointer(nn.Linear(4, 4)).load(str(path))


def test_single_process_model_is_not_wrapped():
    model = nn.Linear(2, 2)
    assert create_ddp_model(model) is model


@pytest.mark.distributed
def test_two_process_cpu_training(synthetic_weather, tmp_path):
    cmd = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--num-gpus", "2",
           "--config-file", QUICK_CONFIG, *FAST_OPTS, "SOLVER.IMS_PER_BATCH", "4",
           "SOLVER.MAX_ITER", "3", "OUTPUT_DIR", str(tmp_path)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert os.path.isfile(tmp_path / "log.txt.rank1")  # the second process logged too
