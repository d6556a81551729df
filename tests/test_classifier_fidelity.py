"""The CLIP classifiers as the SPG authors ran them: fp16 CLIP towers, Dassl's epoch-wise
learning-rate schedule, and the reproduction configs that set every switch to their side."""
import glob
import math
import os

import pytest
import torch
from detectron2.data import MetadataCatalog, get_detection_dataset_dicts
from detectron2.modeling import build_model

from domaingen.clip import build_clip_model
from domaingen.engine import Trainer, load_config, method_of
from domaingen.engine.schedules import build_lr_scheduler, epoch_lr_factor
from domaingen.methods.spg import save_domain_prompt

REPO = os.path.join(os.path.dirname(__file__), "..")
QUICK = os.path.join(REPO, "configs", "quick")
CLASSES = ["dog", "elephant", "guitar", "house"]
DATASET = "test_fidelity_fake_train"
MetadataCatalog.get(DATASET).set(thing_classes=CLASSES, evaluator_type="classification")


def build(arch, precision, clip="domaingen-tiny-ViT", *opts):
    cfg = load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"), [
        "MODEL.META_ARCHITECTURE", arch, "MODEL.CLIP.NAME", clip, "DATASETS.DG_BENCHMARK", "",
        "DATASETS.TRAIN", f"('{DATASET}',)", "DATASETS.TEST", "()", "MODEL.DEVICE", "cpu",
        "MODEL.CLIP.PRECISION", precision, *opts])
    torch.manual_seed(0)  # the same prompt learner on both sides
    return build_model(cfg).eval()


def images(n=4):
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8),
             "label": i % len(CLASSES), "file_name": f"{i}.jpg"} for i in range(n)]


# ------------------------------------------------------------------------------ precision

def tower_dtypes(model):
    """dtype -> number of parameters of the frozen towers, for Linear/Conv and LayerNorm."""
    linear, norm = set(), set()
    for m in list(model.visual.modules()) + list(model.text_encoder.modules()):
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            linear.add(m.weight.dtype)
        elif isinstance(m, torch.nn.LayerNorm):
            norm.add(m.weight.dtype)
    return linear, norm


# Measured on random tiny CLIPs (logit scale 14.3): fp16 moves the logits by 1-3e-3 (relative
# L2) and by at most 5e-3; the bounds leave a margin of about 3.
@pytest.mark.parametrize("clip", ["domaingen-tiny-ViT", "domaingen-tiny-RN"])
@pytest.mark.parametrize("arch", ["ZeroShotCLIPClassifier", "CoOpClassifier", "CoCoOpClassifier"])
def test_fp16_towers_are_half_and_their_logits_close_to_fp32(arch, clip):
    full, half = build(arch, "fp32", clip), build(arch, "fp16", clip)
    assert tower_dtypes(full) == ({torch.float32}, {torch.float32})
    assert tower_dtypes(half) == ({torch.float16}, {torch.float32})  # OpenAI's fp32 LayerNorms
    assert half.text_encoder.text_projection.dtype == torch.float16
    if arch != "ZeroShotCLIPClassifier":
        assert half.prompts.ctx.dtype == torch.float32  # what trains stays fp32
    with torch.no_grad():
        a = torch.stack([o["logits"] for o in full(images())])
        b = torch.stack([o["logits"] for o in half(images())])
    assert b.dtype == torch.float32
    assert (a - b).norm() / a.norm() < 1e-2 and (a - b).abs().max() < 0.02


def test_fp16_spg_casts_the_generated_prompt(tmp_path):
    label = str(tmp_path / "label.pt")  # the fake dataset's name is its domain
    save_domain_prompt(label, torch.zeros(4, 64), DATASET, CLASSES, "domaingen-tiny-ViT")
    opts = ["MODEL.SPG.DOMAIN_PROMPTS", repr([label])]
    full, half = (build("SPGClassifier", p, "domaingen-tiny-ViT", *opts) for p in ("fp32", "fp16"))
    half.load_state_dict(full.state_dict(), strict=False)  # the same generator
    seen = []
    half.text_encoder.transformer.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        a = torch.stack([o["logits"] for o in full(images())])
        b = torch.stack([o["logits"] for o in half(images())])
    assert seen and all(x.dtype == torch.float16 for x in seen)  # prompt tokens enter in fp16
    assert half.generator.net[0].weight.dtype == torch.float32
    assert (a - b).norm() / a.norm() < 1e-2


def test_a_weights_file_loads_into_fp16_towers(tmp_path):
    full = build_clip_model("domaingen-tiny-ViT", seed=3)
    path = str(tmp_path / "tiny.pt")
    torch.save(full.state_dict(), path)
    half = build_clip_model("domaingen-tiny-ViT", path, precision="fp16")
    for (name, a), b in zip(full.state_dict().items(), half.state_dict().values()):
        assert torch.equal(a.to(b.dtype), b), name
    assert half.visual.conv1.weight.dtype == torch.float16


def test_an_unknown_precision_names_the_key():
    with pytest.raises(ValueError, match="MODEL.CLIP.PRECISION must be one of"):
        build("ZeroShotCLIPClassifier", "fp8")


# ------------------------------------------------------------------------------ schedule

def test_epoch_schedule_values():
    """Dassl: linear warm-up (lr 1e-5 in epoch 0, then base * e / 4), or a constant 1e-5; then
    cos from the end of the warm-up over all the epochs (SPG stage II: 70, CoOp: 50)."""
    f = lambda e: epoch_lr_factor(e, 70, 4, "linear", 0.005)  # noqa: E731
    assert [f(e) for e in range(5)] == [0.005, 0.25, 0.5, 0.75, 1.0]
    assert f(5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 70)))
    assert f(69) == pytest.approx(0.5 * (1 + math.cos(math.pi * 65 / 70)))  # 0.0125, not 0
    g = lambda e: epoch_lr_factor(e, 50, 1, "constant", 0.005)  # noqa: E731
    assert (g(0), g(1)) == (0.005, 1.0)
    assert g(49) == pytest.approx(0.5 * (1 + math.cos(math.pi * 48 / 50)))


def test_the_epoch_scheduler_holds_the_lr_within_an_epoch():
    cfg = load_config(os.path.join(REPO, "configs", "classification", "Base-SPG.yaml"),
                      ["SOLVER.MAX_ITER", "210"])  # 70 epochs of 3 iterations
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    scheduler = build_lr_scheduler(cfg, optimizer)
    lrs = []
    for _ in range(18):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warmup = [1e-5, 5e-4, 1e-3, 1.5e-3, 2e-3]  # 1e-5, then 2e-3 * e / 4, then the cosine's start
    assert lrs[:15] == pytest.approx([lr for lr in warmup for _ in range(3)])
    assert lrs[15:] == pytest.approx([2e-3 * 0.5 * (1 + math.cos(math.pi / 70))] * 3)
    with pytest.raises(ValueError, match="set SOLVER.EPOCHS"):
        build_lr_scheduler(load_config(os.path.join(REPO, "configs", "classification",
                                                    "Base-SPG.yaml"), ["SOLVER.EPOCHS", "0"]),
                           optimizer)


def test_epochs_drop_the_last_partial_batch(synthetic_domains, tmp_path):
    """An epoch is floor(N / batch) iterations (Dassl's loader drops the last partial batch)."""
    coop = os.path.join(QUICK, "synthetic_domains_coop.yaml")
    size = len(get_detection_dataset_dicts(load_config(coop).DATASETS.TRAIN, filter_empty=False))
    batch = next(b for b in range(7, size) if size % b)
    cfg = load_config(coop, [
        "SOLVER.EPOCHS", "2", "SOLVER.WARMUP_EPOCHS", "1", "SOLVER.IMS_PER_BATCH", str(batch),
        "SOLVER.LR_SCHEDULER_NAME", "EpochWarmupCosineLR", "SOLVER.WARMUP_METHOD", "constant",
        "TEST.EVAL_PERIOD", "0", "SOLVER.CHECKPOINT_PERIOD", "1", "OUTPUT_DIR", str(tmp_path)])
    trainer = Trainer(cfg)
    assert trainer.max_iter == 2 * (size // batch) < 2 * math.ceil(size / batch)
    assert trainer.cfg.SOLVER.WARMUP_ITERS == size // batch


# ------------------------------------------------------------------------------ reproduction

SPG_METHODS = ("zsclip", "coop", "cocoop", "spg", "spg_stage1")


@pytest.mark.parametrize("method", SPG_METHODS)
def test_the_authors_mode_sets_every_switch_for_every_dataset(method):
    for path in glob.glob(os.path.join(REPO, "configs", "classification", "*",
                                       f"{method}_ViT-B-16.yaml")):
        cfg = load_config(path, ["REPRODUCE_AUTHORS", "True"])
        ours = load_config(path)
        switches = method_of(cfg).authors_switches
        assert switches, cfg.MODEL.META_ARCHITECTURE
        for key, value in switches.items():
            node, ours_node = cfg, ours
            for part in key.split("."):
                node, ours_node = getattr(node, part), getattr(ours_node, part)
            assert node == value, key
            assert ours_node != value, f"{key}: {path} is already on the authors' side"
