"""CLIP the Gap: bank files, the engine (step before training, resume), the optimize tool."""
import math
import os
import re
import subprocess
import sys

import pytest
import torch
from clip_gap_helpers import (
    GAP_CONFIG,
    REPO,
    RES4_CHANNELS,
    SOURCE,
    TARGETS,
    small_bank,
    small_cfg,
)
from detectron2.modeling import build_model
from helpers import FAST_OPTS, QUICK_CONFIG

import domaingen.methods.clip_gap.optimize as engine_augmentation
from domaingen.clip import build_clip_from_cfg
from domaingen.engine import Trainer, load_config
from domaingen.methods.clip_gap import (
    BANK_FILE,
    AugmentationBankError,
    SemanticAugmentationBank,
    build_augmentation_bank,
    optimize_augmentations,
)

# ---------------------------------------------------------------- 5. bank files


def test_save_and_load_round_trip(clip, tmp_path):
    bank = small_bank(clip)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        bank.offsets.copy_(torch.randn(bank.offsets.shape, generator=g))
    bank.optimized_iters.fill_(7)
    path = str(tmp_path / "bank.pth")
    bank.save(path)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    fresh = small_bank(clip)
    fresh.load(path)
    assert torch.equal(fresh.offsets, bank.offsets)
    assert int(fresh.optimized_iters) == 7
    assert not fresh.offsets.requires_grad


@pytest.fixture(scope="module")
def saved_bank(clip, tmp_path_factory):
    bank = small_bank(clip)
    with torch.no_grad():
        bank.offsets.fill_(0.25)
    bank.optimized_iters.fill_(3)
    path = str(tmp_path_factory.mktemp("bank") / "saved_bank.pth")
    bank.save(path)
    return path


def test_load_rejects_other_prompts(clip, saved_bank):
    other = small_bank(clip, "MODEL.CLIP_GAP.TARGET_PROMPTS", str(TARGETS[:2]))
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {saved_bank} was trained for other "
                                       f"prompts")):
        other.load(saved_bank)
    assert torch.count_nonzero(other.offsets) == 0  # nothing half-loaded


def test_load_rejects_another_shape(clip, saved_bank):
    bank = small_bank(clip)
    other = SemanticAugmentationBank(SOURCE, TARGETS, bank.text_directions, (RES4_CHANNELS, 7, 7))
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {saved_bank} has offsets of shape "
                                       f"(3, {RES4_CHANNELS}, 14, 14); this model needs "
                                       f"(3, {RES4_CHANNELS}, 7, 7)")):
        other.load(saved_bank)


def test_load_rejects_another_clip(saved_bank):
    cfg = small_cfg("MODEL.CLIP.INIT_SEED", "1")
    other = build_augmentation_bank(cfg, build_clip_from_cfg(cfg), RES4_CHANNELS)
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {saved_bank} was optimised with "
                                       f"another CLIP model (domaingen-tiny-RN)")):
        other.load(saved_bank)


def test_load_rejects_missing_and_foreign_files(clip, tmp_path):
    bank = small_bank(clip)
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {missing} does not exist")):
        bank.load(missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a torch file")
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {garbage} is not a readable "
                                       "checkpoint")):
        bank.load(str(garbage))
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"model": {"w": torch.zeros(1)}}, checkpoint)
    with pytest.raises(AugmentationBankError,
                       match=re.escape(f"augmentation bank {checkpoint} lacks ['offsets', "
                                       f"'source_prompt', 'target_prompts', 'text_directions']")):
        bank.load(str(checkpoint))


def test_aug_weights_loads_the_bank_into_the_model(saved_bank):
    model = build_model(small_cfg("MODEL.CLIP_GAP.AUG_WEIGHTS", saved_bank))
    bank = model.augmentation_bank
    assert torch.all(bank.offsets == 0.25)
    assert int(bank.optimized_iters) == 3
    with pytest.raises(AugmentationBankError, match=re.escape("missing.pth does not exist")):
        build_model(small_cfg("MODEL.CLIP_GAP.AUG_WEIGHTS", saved_bank + ".missing.pth"))


# ---------------------------------------------------------------- 6. engine

ENGINE_OPTS = [
    *FAST_OPTS, "MODEL.DEVICE", "cpu",
    "MODEL.CLIP_GAP.TARGET_PROMPTS", str(TARGETS),
    "MODEL.CLIP_GAP.OPT_IMS_PER_BATCH", "1", "MODEL.CLIP_GAP.OPT_CROPS_PER_IMAGE", "2",
    "MODEL.CLIP_GAP.OPT_LOG_PERIOD", "1",
]


def test_optimize_augmentations_writes_the_bank_and_curve(synthetic_weather, tmp_path):
    cfg = load_config(GAP_CONFIG, [*ENGINE_OPTS, "OUTPUT_DIR", str(tmp_path)])
    model = build_model(cfg)
    model.train()
    losses = optimize_augmentations(cfg, model, iters=3)
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    bank = model.augmentation_bank
    assert int(bank.optimized_iters) == 3
    assert os.path.getsize(tmp_path / "augmentation_loss.png") > 0
    saved = torch.load(tmp_path / BANK_FILE, weights_only=True)
    assert torch.equal(saved["offsets"], bank.offsets)
    assert saved["optimized_iters"] == 3
    assert saved["target_prompts"] == TARGETS and saved["clip_name"] == "domaingen-tiny-RN"


def test_trainer_optimizes_once_and_resume_restores_the_bank(synthetic_weather, tmp_path,
                                                              monkeypatch):
    calls = []
    original = engine_augmentation.optimize_augmentations

    def counting(cfg, model, iters=None):
        calls.append(iters)
        return original(cfg, model, iters)

    monkeypatch.setattr(engine_augmentation, "optimize_augmentations", counting)
    cfg = load_config(GAP_CONFIG, [*ENGINE_OPTS, "MODEL.CLIP_GAP.OPT_ITERS", "2",
                                   "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "()",
                                   "SOLVER.WARMUP_ITERS", "1", "DATASETS.TEST", "()",
                                   "SEED", "0", "OUTPUT_DIR", str(tmp_path)])
    first = Trainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    assert calls == [None]
    bank = first.model.augmentation_bank
    assert int(bank.optimized_iters) == 2
    assert torch.count_nonzero(bank.offsets) > 0
    saved = torch.load(tmp_path / BANK_FILE, weights_only=True)
    assert torch.equal(saved["offsets"], bank.offsets)  # detector training leaves the bank alone
    assert os.path.isfile(tmp_path / "model_final.pth")

    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.MAX_ITER = 3
    resumed = Trainer(cfg)
    assert int(resumed.model.augmentation_bank.optimized_iters) == 0
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    resumed.train()
    assert calls == [None]  # not optimised again
    assert int(resumed.model.augmentation_bank.optimized_iters) == 2
    assert torch.equal(resumed.model.augmentation_bank.offsets, bank.offsets)


# --------------------------------------------------------------- 7. tools/optimize_augmentations.py

TOOL = os.path.join(REPO, "tools", "optimize_augmentations.py")


def run_tool(config, *opts):
    cmd = [sys.executable, TOOL, "--config-file", config, *opts]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_tool_writes_the_bank(synthetic_weather, tmp_path):
    proc = run_tool(GAP_CONFIG, "MODEL.CLIP_GAP.OPT_ITERS", "2", "DATALOADER.NUM_WORKERS", "0",
                    "MODEL.CLIP_GAP.OPT_CROPS_PER_IMAGE", "1", "MODEL.DEVICE", "cpu",
                    "OUTPUT_DIR", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(tmp_path / BANK_FILE, weights_only=True)
    assert saved["optimized_iters"] == 2 and len(saved["target_prompts"]) == 15
    assert os.path.isfile(tmp_path / "augmentation_loss.png")


@pytest.mark.slow
def test_tool_refuses_other_detectors(tmp_path):
    proc = run_tool(QUICK_CONFIG, "DATALOADER.NUM_WORKERS", "0", "MODEL.DEVICE", "cpu",
                    "OUTPUT_DIR", str(tmp_path))
    assert proc.returncode != 0
    assert "the optimization step needs ClipGapRCNN" in proc.stderr
    assert "MODEL.META_ARCHITECTURE is ClipRCNN" in proc.stderr
    assert not os.path.exists(tmp_path / BANK_FILE)
