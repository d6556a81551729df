"""CLIP the Gap: the augmentation bank, its loss and optimization step, injection, files, tools."""
import copy
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from clip_gap_helpers import (
    RES4_CHANNELS,
    SOURCE,
    TARGETS,
    TRAIN_SET,
    gap_cfg,
    small_bank,
    small_cfg,
)
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from helpers import QUICK_CONFIG

from domaingen.clip import encode_prompts
from domaingen.engine import Trainer, load_config
from domaingen.methods.clip_gap import (
    AugmentationBankError,
    SemanticAugmentationBank,
    augmentation_loss,
    augmentation_step,
    build_augmentation_bank,
    clip_embeddings,
    optimization_loss,
    text_shifted_targets,
)
from domaingen.methods.clip_gap.crops import RandomCropsMapper

# ---------------------------------------------------------------- 1. bank shapes and prompts


def test_default_config_has_the_authors_15_prompts_and_a_frozen_zero_bank():
    cfg = gap_cfg("MODEL.CLIP.FROZEN_BN", "True")
    expected = {f"an image taken on a {w} {t}" for w in ("snow", "fog", "cloudy", "rain", "stormy")
                for t in ("night", "day", "evening")}
    assert len(cfg.MODEL.CLIP_GAP.TARGET_PROMPTS) == 15
    assert set(cfg.MODEL.CLIP_GAP.TARGET_PROMPTS) == expected
    assert cfg.MODEL.CLIP_GAP.SOURCE_PROMPT == SOURCE
    model = build_model(cfg)
    bank = model.augmentation_bank
    assert bank.target_prompts == list(cfg.MODEL.CLIP_GAP.TARGET_PROMPTS)
    channels = model.backbone.output_shape()["res4"].channels
    side = cfg.MODEL.CLIP_GAP.OPT_INPUT_SIZE // 16
    assert bank.offsets.shape == (15, channels, side, side) == (15, RES4_CHANNELS, 14, 14)
    assert len(bank) == 15
    assert torch.count_nonzero(bank.offsets) == 0
    assert int(bank.optimized_iters) == 0
    assert bank.text_directions.shape == (15, 64)
    # The detector optimizer never sees the offsets.
    assert not bank.offsets.requires_grad
    optimizer = Trainer.build_optimizer(cfg, model)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert params and not any(p is bank.offsets for p in params)
    assert all(p.requires_grad for p in params)
    # ...but they and the iteration count are part of the checkpointed state.
    state = model.state_dict()
    assert "augmentation_bank.offsets" in state and "augmentation_bank.optimized_iters" in state


def test_text_directions_are_normalised_differences_of_normalised_text_embeddings(clip):
    bank = small_bank(clip)
    name = "domaingen-tiny-RN"
    source = F.normalize(encode_prompts(clip, name, [SOURCE], ["{}"]), dim=-1)
    targets = F.normalize(encode_prompts(clip, name, TARGETS, ["{}"]), dim=-1)
    expected = F.normalize(targets - source, dim=-1)
    assert bank.text_directions.shape == (3, 64)
    assert torch.allclose(bank.text_directions.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(bank.text_directions, expected, atol=1e-6)
    # One direction per prompt, in order: they are distinct.
    assert not torch.allclose(bank.text_directions[0], bank.text_directions[1], atol=1e-3)


@pytest.mark.parametrize("source, targets, message", [
    (SOURCE, [], "MODEL.CLIP_GAP.TARGET_PROMPTS is empty"),
    ("  ", TARGETS, "MODEL.CLIP_GAP.SOURCE_PROMPT is empty"),
    ("", TARGETS, "MODEL.CLIP_GAP.SOURCE_PROMPT is empty"),
    (SOURCE, [TARGETS[0], " "], "MODEL.CLIP_GAP.TARGET_PROMPTS has an empty prompt"),
    (SOURCE, [TARGETS[0], TARGETS[1], TARGETS[0] + " "],
     "MODEL.CLIP_GAP.TARGET_PROMPTS repeats ['an image taken on a snow night']"),
    (SOURCE, [TARGETS[0], SOURCE], f"the source prompt {SOURCE!r} is also a target prompt"),
])
def test_bad_prompts_are_rejected(clip, source, targets, message):
    cfg = small_cfg()
    cfg.MODEL.CLIP_GAP.SOURCE_PROMPT = source
    cfg.MODEL.CLIP_GAP.TARGET_PROMPTS = targets
    with pytest.raises(AugmentationBankError, match=re.escape(message)):
        build_augmentation_bank(cfg, clip, RES4_CHANNELS)
    with pytest.raises(AugmentationBankError, match=re.escape(message)):
        SemanticAugmentationBank(source, targets, torch.zeros(len(targets), 64), (4, 2, 2))


def test_direction_count_must_match_the_prompts():
    with pytest.raises(AugmentationBankError, match="2 text directions for 3 target prompts"):
        SemanticAugmentationBank(SOURCE, TARGETS, torch.zeros(2, 64), (4, 2, 2))


def test_opt_input_size_must_be_a_multiple_of_16_and_fit_the_roi_head(clip):
    with pytest.raises(ValueError, match=r"OPT_INPUT_SIZE=200 must be a multiple of 16"):
        small_bank(clip, "MODEL.CLIP_GAP.OPT_INPUT_SIZE", "200")
    # 256 is a multiple of 16 but the attention pool only takes 14x14 res4 maps (7x7 after
    # layer4): it is rejected at build time, not mid-run with a shape error.
    with pytest.raises(ValueError, match=r"OPT_INPUT_SIZE=256 must be 16 x "
                                         r"MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 224"):
        small_bank(clip, "MODEL.CLIP_GAP.OPT_INPUT_SIZE", "256")


# ---------------------------------------------------------------- 2. the loss by hand

R = 1 / math.sqrt(2)


def hand_inputs():
    # D = 2, N = 2 clean embeddings, M = 2 directions.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # Prompt 0 maps both crops to [0, 1]; prompt 1 leaves them unchanged.
    z_aug = torch.tensor([[[0.0, 1.0], [0.0, 1.0]],
                          [[1.0, 0.0], [0.0, 1.0]]])
    return z, d, z_aug


def test_text_shifted_targets_by_hand():
    z, d, _ = hand_inputs()
    # z* = normalise(z + d): j=0: [1,1]/sqrt2, [0,2]/2 = [0,1]; j=1: [2,0]/2 = [1,0], [1,1]/sqrt2.
    expected = torch.tensor([[[R, R], [0.0, 1.0]],
                             [[1.0, 0.0], [R, R]]])
    assert torch.allclose(text_shifted_targets(z, d), expected, atol=1e-6)


def test_augmentation_and_optimization_loss_by_hand():
    z, d, z_aug = hand_inputs()
    targets = text_shifted_targets(z, d)
    # j=0: cos([0,1], [R,R]) = R, cos([0,1], [0,1]) = 1  -> distance mean(1-R, 0) = (1-R)/2
    #      L1 = mean |[0,1]-[1,0]|, |[0,1]-[0,1]| = mean(1,1,0,0) = 0.5
    # j=1: cos([1,0], [1,0]) = 1, cos([0,1], [R,R]) = R  -> distance (1-R)/2; L1 = 0 (z_aug = z)
    dist = (1 - R) / 2
    per_prompt = augmentation_loss(z, z_aug, targets)
    assert per_prompt.shape == (2,)
    assert torch.allclose(per_prompt, torch.tensor([dist + 0.5, dist]), atol=1e-6)
    # l1_weight scales only the L1 term.
    assert torch.allclose(augmentation_loss(z, z_aug, targets, l1_weight=2.0),
                          torch.tensor([dist + 1.0, dist]), atol=1e-6)
    # A single prompt [N, D] gives a scalar.
    single = augmentation_loss(z, z_aug[0], targets[0])
    assert single.shape == () and single.item() == pytest.approx(dist + 0.5, abs=1e-6)
    # L_opt = mean over j: ((dist + 0.5) + dist) / 2 = dist + 0.25 ~= 0.39645
    assert optimization_loss(z, z_aug, d).item() == pytest.approx(dist + 0.25, abs=1e-6)
    assert optimization_loss(z, z_aug, d, l1_weight=0.0).item() == pytest.approx(dist, abs=1e-6)
    # Reaching the targets exactly with no change would need z_aug = z*: then only L1 remains,
    # mean |z* - z| over j, n, D. j=0: |[R,R]-[1,0]| + |[0,1]-[0,1]| = (1-R) + R = 1;
    # j=1: 0 + |[R,R]-[0,1]| = R + (1-R) = 1 -> each prompt L1 = 1/4.
    assert optimization_loss(z, targets, d).item() == pytest.approx(0.25, abs=1e-6)


# ---------------------------------------------------------------- 3. the optimization step


def synthetic_crops(n_images=2, crops_per_image=2):
    """Crops as the optimization step sees them, from synthetic training images."""
    np.random.seed(0)
    mapper = RandomCropsMapper(216, 160, 224, crops_per_image, "BGR")
    dicts = DatasetCatalog.get(TRAIN_SET)[:n_images]
    return torch.cat([mapper(d)["crops"] for d in dicts])


@torch.no_grad()
def l_opt(model, crops):
    """L_opt computed directly from the definition, for the bank's current offsets."""
    bank = model.augmentation_bank
    features = model.backbone(model.normalize(crops.float()))["res4"]
    z = clip_embeddings(model, features)
    z_aug = torch.stack([clip_embeddings(model, features + a) for a in bank.offsets])
    return optimization_loss(z, z_aug, bank.text_directions).item()


def test_step_trains_only_the_bank(synthetic_weather, model):
    model.train()
    crops = synthetic_crops()
    assert crops.shape == (4, 3, 224, 224) and crops.dtype == torch.uint8
    bank = model.augmentation_bank
    before = {k: v.clone() for k, v in model.state_dict().items()
              if not k.startswith("augmentation_bank.")}
    optimizer = torch.optim.Adam([bank.offsets], lr=0.01)
    expected = l_opt(model, crops)  # offsets are zero: z_bar = z, only the distance term
    loss = augmentation_step(model, crops, optimizer)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert int(bank.optimized_iters) == 1
    augmentation_step(model, crops, optimizer)
    assert int(bank.optimized_iters) == 2
    after = model.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed == []
    for name, p in model.named_parameters():
        assert p.grad is None, name
    assert not bank.offsets.requires_grad and bank.offsets.grad is None
    assert torch.count_nonzero(bank.offsets) > 0
    # With frozen BatchNorm the injected part, the per-channel spatial mean, gets the gradient:
    # Adam moves the offsets coherently over h, w, so the means are about as large as the
    # offsets (measured ~0.94x; with the authors' train-mode BatchNorm layer4's first BN removes
    # spatially constant offsets and the means stay near zero, ~0.04x).
    means = bank.channel_offsets(torch.arange(len(bank)))
    assert means.shape == (3, RES4_CHANNELS)
    for j in range(len(bank)):
        assert means[j].abs().mean() > 5e-3, j
        assert means[j].abs().mean() > 0.5 * bank.offsets[j].abs().mean(), j


def test_a_short_optimization_step_lowers_l_opt_on_synthetic_crops(synthetic_weather, model):
    model.train()
    crops = synthetic_crops()
    start = l_opt(model, crops)
    optimizer = torch.optim.Adam([model.augmentation_bank.offsets], lr=0.05)
    losses = [augmentation_step(model, crops, optimizer) for _ in range(4)]
    end = l_opt(model, crops)
    assert losses[0] == pytest.approx(start, rel=1e-4)
    assert end < 0.9 * start, (start, losses, end)
    assert int(model.augmentation_bank.optimized_iters) == 4


# ---------------------------------------------------------------- 4. injection


def set_offsets(model, seed=0, scale=1.0):
    bank = model.augmentation_bank
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bank.offsets.copy_(torch.randn(bank.offsets.shape, generator=g) * scale)
    return bank.offsets.mean(dim=(2, 3))


def test_augment_adds_one_entry_channel_mean_per_image(model):
    means = set_offsets(model)
    res4 = torch.randn(8, RES4_CHANNELS, 5, 7)
    torch.manual_seed(0)
    diff = model.augment(res4) - res4
    assert torch.allclose(diff, diff[:, :, :1, :1].expand_as(diff), atol=1e-5)  # constant in h, w
    chosen = []
    for i in range(8):
        matches = [j for j in range(len(means)) if torch.allclose(diff[i, :, 0, 0], means[j],
                                                                  atol=1e-5)]
        assert len(matches) == 1, i
        chosen.append(matches[0])
    assert len(set(chosen)) > 1  # entries are drawn per image, not per batch


def test_augment_logs_the_entry_and_the_offset_ratio(model):
    means = set_offsets(model)
    res4 = torch.randn(4, RES4_CHANNELS, 5, 7)
    torch.manual_seed(0)
    with EventStorage() as storage:
        model.augment(res4)
    torch.manual_seed(0)
    indices = torch.randint(len(means), (4,))
    expected = (means[indices].norm(dim=1) / res4.mean(dim=(2, 3)).norm(dim=1)).mean()
    assert storage.latest()["clip_gap/bank_index"][0] == float(indices[0])
    assert storage.latest()["clip_gap/offset_ratio"][0] == pytest.approx(float(expected), rel=1e-5)


def test_random_directions_keep_each_entry_norm_and_change_its_direction(model):
    means = set_offsets(model)
    bank = model.augmentation_bank
    bank.randomize_directions(seed=3)
    random = bank.channel_offsets(torch.arange(len(bank)))
    assert torch.allclose(random.norm(dim=1), means.norm(dim=1), rtol=1e-5)
    assert F.cosine_similarity(random, means, dim=1).abs().max() < 0.5
    assert torch.allclose(bank.offsets, random[:, :, None, None].expand_as(bank.offsets))
    again = copy.deepcopy(bank)
    set_offsets(model)
    bank.randomize_directions(seed=3)
    assert torch.equal(bank.offsets, again.offsets)  # seeded


def image_batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(n):
        h, w = 96, 128
        inst = Instances((h, w))
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 60.0, 70.0], [50.0, 20.0, 120.0, 90.0]]))
        inst.gt_classes = torch.tensor([2, 4])
        batch.append({"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8),
                      "height": h, "width": w, "instances": inst})
    return batch


def count_augment(monkeypatch, model):
    calls = []
    original = model.augment

    def counting(res4):
        calls.append(res4.shape[0])
        return original(res4)

    monkeypatch.setattr(model, "augment", counting)
    return calls


def test_inference_is_never_augmented_and_matches_clip_rcnn(monkeypatch, model):
    set_offsets(model, scale=5.0)
    model.aug_prob = 1.0
    calls = count_augment(monkeypatch, model)
    model.eval()
    batch = [{"image": d["image"], "height": d["height"], "width": d["width"]}
             for d in image_batch()]
    with torch.no_grad():
        out = model(batch)
    assert calls == []
    plain = build_model(load_config(QUICK_CONFIG, ["MODEL.DEVICE", "cpu",
                                                   "MODEL.CLIP.FROZEN_BN", "True"]))
    assert type(plain).__name__ == "ClipRCNN"
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("augmentation_bank.")}
    plain.load_state_dict(state, strict=True)
    plain.eval()
    with torch.no_grad():
        expected = plain(batch)
    for got, want in zip(out, expected):
        got, want = got["instances"], want["instances"]
        assert len(got) == len(want)
        assert torch.equal(got.pred_boxes.tensor, want.pred_boxes.tensor)
        assert torch.equal(got.scores, want.scores)
        assert torch.equal(got.pred_classes, want.pred_classes)
    # The counter does see training batches (so the check above is not vacuous).
    model.train()
    with EventStorage(0):
        model(image_batch())
    assert calls == [2]


def frequency(model, draws=400, seed=0):
    torch.manual_seed(seed)
    return sum(model.should_augment() for _ in range(draws)) / draws


def test_augmentation_probability(base_model):
    model = copy.copy(base_model)  # shallow: only attributes change
    assert model.aug_prob == 0.3 and model.aug_when_rand_above_prob is False
    assert abs(frequency(model) - 0.3) < 0.075
    model.aug_when_rand_above_prob = True  # authors: augment when rand > AUG_PROB
    assert abs(frequency(model) - 0.7) < 0.075
    for above in (False, True):
        model.aug_when_rand_above_prob = above
        model.aug_prob = 0.0
        assert frequency(model, 100) == (1.0 if above else 0.0)
        model.aug_prob = 1.0
        assert frequency(model, 100) == (0.0 if above else 1.0)


def test_config_switches_reach_the_model():
    model = build_model(small_cfg("MODEL.CLIP_GAP.AUG_PROB", "0.8",
                                  "MODEL.CLIP_GAP.AUG_WHEN_RAND_ABOVE_PROB", "True"))
    assert model.aug_prob == 0.8 and model.aug_when_rand_above_prob is True
    with pytest.raises(ValueError, match=r"AUG_PROB must be in \[0, 1\], got 1.5"):
        build_model(small_cfg("MODEL.CLIP_GAP.AUG_PROB", "1.5"))


def training_losses(model, batch, seed=0):
    torch.manual_seed(seed)
    with EventStorage(0):
        return {k: v.item() for k, v in model(batch).items()}


def test_injection_reaches_the_rpn_and_roi_heads(model):
    model.train()
    batch = image_batch()
    bank = model.augmentation_bank
    losses = {}
    for prob in (0.0, 1.0):
        model.aug_prob = prob
        with torch.no_grad():
            bank.offsets.zero_()
        losses[prob, "zero"] = training_losses(model, batch)
        set_offsets(model, scale=3.0)
        losses[prob, "set"] = training_losses(model, batch)
    # Not drawn: the offsets play no part.
    assert losses[0.0, "zero"] == losses[0.0, "set"]
    # Drawn, with the same random draws: non-zero offsets change both the RPN and the ROI head
    # losses (AUG_PROB 1 vs 0 also differ in the draws that follow, so compare like with like).
    # (The RPN's objectness is near 0 at initialisation, so its loss moves only slightly.)
    for key in ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"):
        assert losses[1.0, "set"][key] != losses[1.0, "zero"][key], key
