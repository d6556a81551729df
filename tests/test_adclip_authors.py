"""AD-CLIP as the authors' code runs it: per-family feature statistics, projector widths, their
untrained RN50 first layers, their per-iteration LR schedule, and the reproduction configs."""
import functools
import io
import math
import os

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from domaingen.engine import Trainer, load_config
from domaingen.methods.adclip import (
    ADCLIPMethod,
    ContentProjector,
    FixedLinear,
    StyleMappingProjector,
    StyleProjector,
    token_statistics,
)

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
QUICK = os.path.join(CONFIGS, "quick", "synthetic_domains_adclip.yaml")
CLASSES = ["dog", "elephant", "guitar"]
MetadataCatalog.get("test_adclip_authors_src").set(thing_classes=CLASSES,
                                                   evaluator_type="classification")
if "test_adclip_authors_src" not in DatasetCatalog.list():
    DatasetCatalog.register("test_adclip_authors_src", lambda: [{"file_name": "x.jpg", "label": 0}])
WIDTH = 64  # text width of both tiny CLIPs
TINY_DIMS = {"domaingen-tiny-ViT": [64, 64], "domaingen-tiny-RN": [32, 64, 128, 256]}
UNTRAINED = ("MODEL.ADCLIP.AUTHORS_UNTRAINED_FIRST_LAYERS", "True")


def build(clip_name, *opts):
    cfg = load_config(QUICK, ["MODEL.CLIP.NAME", clip_name, "DATASETS.TRAIN",
                              "('test_adclip_authors_src',)", "DATASETS.TEST", "()",
                              "MODEL.DEVICE", "cpu", *opts])
    return build_model(cfg)


def images(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8),
             "label": i % len(CLASSES)} for i in range(n)]


def first_layer_names(n_layers):
    """The first Linear of every per-layer projector (the ones the authors' RN50 trainer keeps
    in Python lists)."""
    return [name for i in range(n_layers) for name in
            (f"style.layers.{i}.0", f"content.layers.{i}", f"style_mapping.layers.{i}.0")]


# ------------------------------------------------------------------ standard deviation


@pytest.mark.parametrize("eps", [1e-8, 2.3e-8])
def test_std_epsilon_is_added_to_the_sum_of_squares_before_dividing_by_the_tokens(eps):
    x = torch.tensor([[[3.0, 0.0], [3.0, 1.0], [3.0, 2.0], [3.0, 3.0]]])  # [B=1, T=4, C=2]
    mu, sigma = token_statistics(x, eps)
    assert mu.tolist() == [[3.0, 1.5]]
    # Channel 0 is constant: sqrt((0 + eps) / 4), not sqrt(0 + eps).
    assert sigma[0, 0].item() == pytest.approx(math.sqrt(eps / 4), rel=1e-6)
    # Channel 1: squares 2.25 + 0.25 + 0.25 + 2.25 = 5 (population variance).
    assert sigma[0, 1].item() == pytest.approx(math.sqrt((5.0 + eps) / 4), rel=1e-6)


@pytest.mark.parametrize("clip_name,eps,tokens", [("domaingen-tiny-ViT", 2.3e-8, 7 * 7 + 1),
                                                  ("domaingen-tiny-RN", 1e-8, 7 * 7)])
@torch.no_grad()
def test_each_tower_family_uses_its_authors_epsilon(clip_name, eps, tokens):
    """The last layer's channel 0 is made constant by a hook that runs before the statistics'
    hook: its sigma is then sqrt(eps / T) with the epsilon of the authors' trainer for the
    family (ViT 2.3e-8, RN50 1e-8) and T tokens (ViT: 7 x 7 patches + class token; ResNet: the
    7 x 7 map of stage 4)."""
    model = build(clip_name).eval()

    def constant_channel(module, args, out):
        out = out.clone()
        if out.dim() == 4:  # ResNet stage [B, C, H, W]
            out[:, 0] = 0.5
        else:  # transformer block, channels last
            out[..., 0] = 0.5
        return out

    handle = model.multi_scale.layers[-1].register_forward_hook(constant_channel)
    try:
        batch = model.normalize(torch.stack([x["image"] for x in images()]))
        _, _, sigmas = model.multi_scale(batch)
    finally:
        handle.remove()
    assert sigmas[-1][:, 0].tolist() == pytest.approx([math.sqrt(eps / tokens)] * 2, rel=1e-5)


# ------------------------------------------------------------------ projector widths


@pytest.mark.parametrize("clip_name", sorted(TINY_DIMS))
def test_projector_layer_shapes_are_the_authors(clip_name):
    dims = TINY_DIMS[clip_name]
    learner = build(clip_name).prompt_learner

    def shapes(module):
        return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, torch.nn.Linear)]

    # Style mapping: Linear(C_l, 384) -> ReLU -> Linear(384, W) at every layer (the authors'
    # RN50 and ViT-B/16 trainers), not C_l / 2.
    assert [shapes(s) for s in learner.style_mapping.layers] == [[(384, c), (WIDTH, 384)]
                                                                 for c in dims]
    assert [shapes(s) for s in learner.style.layers] == [[(256, c), (WIDTH, 256)] for c in dims]
    assert [shapes(s) for s in learner.content.layers] == [[(WIDTH, c)] for c in dims]
    assert tuple(learner.content.mixer.weight.shape) == (1, len(dims))
    other = build(clip_name, "MODEL.ADCLIP.STYLE_MAPPING_HIDDEN_DIM", "128").prompt_learner
    assert shapes(other.style_mapping.layers[0]) == [(128, dims[0]), (WIDTH, 128)]


# ------------------------------------------------------------------ untrained first layers


def test_rn50_first_layers_the_authors_never_train_hold_4_4_million_values():
    dims, width = [256, 512, 1024, 2048], 512
    fixed = functools.partial(FixedLinear, generator=torch.Generator().manual_seed(0))
    projectors = [StyleProjector(dims, width, 256, fixed),
                  ContentProjector(dims, width, 4, True, fixed),
                  StyleMappingProjector(dims, width, 384, fixed)]
    # sum(C) = 3840: (3840 + 4) x 256 + (3840 + 4) x 512 + (3840 + 4) x 384 weights and biases
    fixed_values = sum(b.numel() for p in projectors for b in p.buffers())
    assert fixed_values == 3844 * (256 + 512 + 384) == 4_428_288
    assert all(len(list(p.state_dict())) == len(list(p.parameters())) for p in projectors)


def test_authors_untrained_first_layers_stay_fixed_unsaved_and_rebuild_from_the_seed():
    dims = TINY_DIMS["domaingen-tiny-RN"]
    ours = build("domaingen-tiny-RN")
    theirs = build("domaingen-tiny-RN", *UNTRAINED)
    names = first_layer_names(len(dims))
    # Ours: ordinary trainable layers, in the checkpoint and the optimizer.
    assert all(isinstance(ours.prompt_learner.get_submodule(n), torch.nn.Linear) for n in names)
    saved = {f"prompt_learner.{n}.{w}" for n in names for w in ("weight", "bias")}
    assert saved <= set(ours.state_dict())
    # Theirs: fixed layers, neither parameters nor saved, so not in the optimizer.
    assert all(isinstance(theirs.prompt_learner.get_submodule(n), FixedLinear) for n in names)
    prefixes = tuple(f"prompt_learner.{n}." for n in names)
    assert not any(k.startswith(prefixes) for k in theirs.state_dict())
    assert set(theirs.state_dict()) == {n for n, p in theirs.named_parameters() if p.requires_grad}
    counts = []
    for model in (ours, theirs):
        cfg = load_config(QUICK, ["MODEL.CLIP.NAME", "domaingen-tiny-RN"])
        optimizer = Trainer.build_optimizer(cfg, model)
        counts.append(sum(p.numel() for g in optimizer.param_groups for p in g["params"]))
    # sum(C) = 480 (tiny RN): (480 + 4) x (256 + 64 + 384) first-layer weights and biases
    assert counts[0] - counts[1] == 484 * (256 + 64 + 384)

    # A training step moves the trained layers and leaves the fixed ones as they were.
    theirs.train()
    fixed_before = {k: v.clone() for k, v in theirs.prompt_learner.named_buffers()
                    if k.startswith(tuple(names))}
    trained_before = {k: v.clone() for k, v in theirs.prompt_learner.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], lr=0.1)
    data = {"source": images(2, 0), "target": [{**x, "label": -1} for x in images(2, 1)]}
    sum(theirs(data).values()).backward()
    optimizer.step()
    assert len(fixed_before) == 2 * len(names)
    assert all(torch.equal(v, theirs.prompt_learner.get_buffer(k)) for k, v in fixed_before.items())
    assert any(not torch.equal(v, theirs.prompt_learner.state_dict()[k])
               for k, v in trained_before.items())

    # Evaluation: a model rebuilt from the same config (whatever the global RNG) draws the same
    # fixed layers, and with the checkpoint it gives the same logits.
    torch.manual_seed(12345)
    rebuilt = build("domaingen-tiny-RN", *UNTRAINED)
    rebuilt.prompt_learner.load_state_dict(theirs.prompt_learner.state_dict())
    theirs.eval(), rebuilt.eval()
    with torch.no_grad():
        a = torch.stack([o["logits"] for o in theirs(images(3, 2))])
        b = torch.stack([o["logits"] for o in rebuilt(images(3, 2))])
    assert torch.equal(a, b)
    reseeded = build("domaingen-tiny-RN", *UNTRAINED, "MODEL.ADCLIP.UNTRAINED_LAYERS_SEED", "1")
    assert not torch.equal(reseeded.prompt_learner.get_buffer(f"{names[0]}.weight"),
                           rebuilt.prompt_learner.get_buffer(f"{names[0]}.weight"))


def test_untrained_first_layers_switch_leaves_vit_towers_alone():
    """The authors' ViT trainers register every projector layer: the switch changes nothing."""
    ours, theirs = build("domaingen-tiny-ViT"), build("domaingen-tiny-ViT", *UNTRAINED)
    shapes = {n: p.shape for n, p in ours.named_parameters() if p.requires_grad}
    assert {n: p.shape for n, p in theirs.named_parameters() if p.requires_grad} == shapes
    assert not any(isinstance(m, FixedLinear) for m in theirs.modules())


# ------------------------------------------------------------------ learning-rate schedule


def lr_sequence(cfg, steps):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=cfg.SOLVER.BASE_LR)
    scheduler = Trainer.build_lr_scheduler(cfg, optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs, optimizer, scheduler


def test_authors_lr_schedule_steps_the_epoch_schedule_every_iteration():
    cfg = load_config(QUICK, ["MODEL.ADCLIP.AUTHORS_LR_SCHEDULE", "True"])
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.MODEL.ADCLIP.AUTHORS_LR_EPOCHS == 50
    lrs, optimizer, scheduler = lr_sequence(cfg, 202)
    # One "warm-up epoch" = iteration 0 at 1e-5; then 0.01 (1 + cos(pi (it - 1) / 50)) / 2.
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[1] == pytest.approx(0.01)
    assert lrs[2] == pytest.approx(0.005 * (1 + math.cos(math.pi / 50)))
    assert lrs[26] == pytest.approx(0.005)
    assert lrs[51] == pytest.approx(0.0, abs=1e-15)
    assert lrs[101] == pytest.approx(0.01) and lrs[201] == pytest.approx(0.01)  # restarts
    # Checkpoint round trip (weights_only, as the checkpointer loads it): the same next steps.
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    _, resumed_optimizer, resumed = lr_sequence(cfg, 0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    scheduler.step(), resumed.step()
    assert resumed.get_last_lr() == pytest.approx(scheduler.get_last_lr())
    # Ours: Detectron2's warm-up (4 iterations in the quick config), then one decreasing cosine.
    ours, _, _ = lr_sequence(load_config(QUICK), 40)
    assert all(a >= b for a, b in zip(ours[4:], ours[5:]))
    assert ours[4] == pytest.approx(0.01, rel=0.1)


def test_authors_lr_schedule_drives_a_training_run(synthetic_domains, tmp_path):
    cfg = load_config(QUICK, ["MODEL.ADCLIP.AUTHORS_LR_SCHEDULE", "True", "SOLVER.MAX_ITER", "3",
                              "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu",
                              "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"])
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    logged = [v for v, _ in trainer.storage.history("lr").values()]
    assert logged == pytest.approx([1e-5, 0.01, 0.005 * (1 + math.cos(math.pi / 50))])


# ------------------------------------------------------------------ reproduction configs


def flat(node, prefix=""):
    out = {}
    for key, value in node.items():
        if hasattr(value, "items"):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


AUTHORS_PAIRS = ["classification/office_home/adclip_ViT-B-16_art_to_clipart.yaml",
                 "classification/office_home/adclip_RN50_art_to_clipart.yaml",
                 "classification/visda17/adclip_ViT-B-16_synthetic_to_real.yaml"]


@pytest.mark.parametrize("name", AUTHORS_PAIRS)
def test_the_authors_mode_differs_from_ours_exactly_by_the_authors_switches(name):
    path = os.path.join(CONFIGS, name)
    theirs = flat(load_config(path, ["REPRODUCE_AUTHORS", "True"]))
    ours = flat(load_config(path))
    switches = ADCLIPMethod.authors_switches
    assert switches and all(theirs[k] == v != ours[k] for k, v in switches.items())
    assert {k for k in theirs if theirs[k] != ours[k]} == set(switches) | {"REPRODUCE_AUTHORS"}
