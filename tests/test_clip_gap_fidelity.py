"""CLIP the Gap as its authors ran it: prompt order, crop resize, the optimization step's quirks,
their schedule, empty test images and their AP arithmetic (references written from their
formulas, not their code)."""
import copy
import os
import runpy

import cv2
import numpy as np
import pytest
import torch
from clip_gap_helpers import TRAIN_SET, gap_cfg, small_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler

from domaingen.engine import ConfigError, Trainer
from domaingen.engine.trainer import detection_test_dicts
from domaingen.evaluation.voc_ap import average_precision
from domaingen.methods.clip_gap import augmentation_step
from domaingen.methods.clip_gap.crops import resize_crops

# The authors' prompt file (prunedprompts2.txt), line by line.
AUTHORS_PROMPT_FILE = """an image taken on a snow night
an image taken on a fog night
an image taken on a cloudy night
an image taken on a rain night
an image taken on a stormy night
an image taken on a snow day
an image taken on a fog day
an image taken on a cloudy day
an image taken on a rain day
an image taken on a stormy day
an image taken on a snow evening
an image taken on a fog evening
an image taken on a cloudy evening
an image taken on a rain evening
an image taken on a stormy evening""".splitlines()


def test_bank_entries_follow_the_authors_prompt_file():
    assert list(gap_cfg().MODEL.CLIP_GAP.TARGET_PROMPTS) == AUTHORS_PROMPT_FILE


def bilinear_reference(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of one HxWxC image, written from the definition: output pixel i samples
    the input at (i + 0.5) * scale - 0.5, clamped at the borders; rounded to uint8."""
    h, w = image.shape[:2]

    def taps(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, fy = taps(h, size)
    x0, x1, fx = taps(w, size)
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.round(out).astype(np.uint8)


def test_crops_are_resized_bilinear_as_the_authors_torchvision_call():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    out = resize_crops(crops, 24, "bilinear")
    assert out.shape == (2, 3, 24, 24) and out.dtype == torch.uint8
    for k in range(2):
        expected = bilinear_reference(crops[k], 24).transpose(2, 0, 1)
        # float32 interpolation vs float64 reference: at most one grey level at .5 ties
        assert np.abs(out[k].numpy().astype(int) - expected).max() <= 1
        assert (out[k].numpy() == expected).mean() > 0.99
    cubic = resize_crops(crops, 24, "cubic")
    assert np.array_equal(cubic[0].numpy(),
                          cv2.resize(crops[0], (24, 24),
                                     interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1))
    assert not torch.equal(cubic, out)
    with pytest.raises(ValueError, match="OPT_CROP_INTERPOLATION"):
        resize_crops(crops, 24, "area")


# ------------------------------------------------------------- the optimization step's quirks


def crops_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (2, 3, 224, 224), generator=g, dtype=torch.uint8)


def test_loss_over_m_plus_1_scales_the_loss_and_the_gradient(model):
    model.train()
    crops = crops_batch()
    m = len(model.augmentation_bank)
    grads = {}
    for authors in (False, True):
        twin = copy.deepcopy(model)
        bank = twin.augmentation_bank
        optimizer = torch.optim.SGD([bank.offsets], lr=1.0)  # update = -gradient
        loss = augmentation_step(twin, crops, optimizer, loss_over_m_plus_1=authors)
        grads[authors] = (loss, -bank.offsets.detach().clone())
    assert grads[True][0] == pytest.approx(grads[False][0] * m / (m + 1), rel=1e-6)
    scale = float(grads[False][1].abs().max())
    torch.testing.assert_close(grads[True][1], grads[False][1] * m / (m + 1), rtol=1e-5,
                               atol=1e-5 * scale)


def layer4_bn_stats(model):
    return torch.cat([b.running_mean for b in model.roi_heads.res5.modules()
                      if isinstance(b, torch.nn.BatchNorm2d)])


@torch.no_grad()
def reference_bn_stats(model, crops, clean_per_prompt):
    """Layer4's running means after the passes of one optimization iteration, run in the order
    of the authors' loop (clean, augmented for each prompt) or of ours (clean once)."""
    twin = copy.deepcopy(model)
    features = twin.backbone(twin.normalize(crops.float()))["res4"]
    twin.roi_heads.res5(features)
    for j, offset in enumerate(twin.augmentation_bank.offsets):
        if clean_per_prompt and j > 0:
            twin.roi_heads.res5(features)
        twin.roi_heads.res5(features + offset)
    return layer4_bn_stats(twin)


def test_clean_pass_per_prompt_gives_the_authors_train_mode_bn_statistics():
    torch.manual_seed(0)
    model = build_model(small_cfg("MODEL.CLIP.FROZEN_BN", "False"))
    model.train()
    with torch.no_grad():
        model.augmentation_bank.offsets.normal_()
    crops = crops_batch(1)
    stats = {}
    for authors in (False, True):
        twin = copy.deepcopy(model)
        optimizer = torch.optim.SGD([twin.augmentation_bank.offsets], lr=0.0)
        augmentation_step(twin, crops, optimizer, clean_pass_per_prompt=authors)
        stats[authors] = layer4_bn_stats(twin)
        torch.testing.assert_close(stats[authors], reference_bn_stats(model, crops, authors))
    assert not torch.allclose(stats[False], stats[True])


def test_the_injected_mean_reaches_the_roi_head_under_train_mode_bn_when_it_differs_per_image():
    """Train-mode BatchNorm subtracts the batch mean per channel: a channel offset shared by every
    image of the batch vanishes, one that differs per image does not."""
    torch.manual_seed(0)
    model = build_model(small_cfg("MODEL.CLIP.FROZEN_BN", "False"))
    model.train()
    with torch.no_grad():
        features = torch.randn(4, 128, 14, 14)
        offsets = torch.randn(2, 128, 1, 1)
        clean = model.roi_heads.embed(features)[0]
        same = model.roi_heads.embed(features + offsets[0])[0]
        per_image = model.roi_heads.embed(features + offsets[torch.tensor([0, 1, 0, 1])])[0]
    relative = lambda a: float((a - clean).norm() / clean.norm())  # noqa: E731
    assert relative(same) < 1e-5
    assert relative(per_image) > 1e-2


def test_authors_schedule_starts_the_detector_after_the_optimization_iterations(synthetic_weather,
                                                                               tmp_path):
    cfg = gap_cfg("MODEL.CLIP_GAP.OPT_ITERS", "3", "MODEL.CLIP_GAP.OPT_ITERS_IN_SCHEDULE", "True",
                  "SOLVER.MAX_ITER", "10", "SOLVER.STEPS", "(5,)", "SOLVER.WARMUP_ITERS", "4",
                  "OUTPUT_DIR", str(tmp_path))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    assert trainer.start_iter == 3
    reference = build_lr_scheduler(cfg, torch.optim.SGD([torch.zeros(1, requires_grad=True)],
                                                        lr=cfg.SOLVER.BASE_LR))
    for _ in range(3):
        reference.optimizer.step()
        reference.step()
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(reference.get_last_lr()[0])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(reference.get_last_lr()[0])
    sampler = trainer._samplers[0]
    assert sampler.start == 3 * cfg.SOLVER.IMS_PER_BATCH
    with pytest.raises(ValueError, match="leaves no detector iteration"):
        Trainer(gap_cfg("MODEL.CLIP_GAP.OPT_ITERS", "10", "MODEL.CLIP_GAP.OPT_ITERS_IN_SCHEDULE",
                        "True", "SOLVER.MAX_ITER", "10", "OUTPUT_DIR", str(tmp_path))
                ).resume_or_load(resume=False)


def test_one_parameter_group_with_weight_decay_on_batchnorm(synthetic_weather):
    cfg = gap_cfg("MODEL.CLIP.FROZEN_BN", "False")
    model = build_model(cfg)
    optimizer = Trainer.build_optimizer(cfg, model)
    decays = {g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {1e-4}
    bn_weight = model.backbone.res4[0].bn1.weight
    assert any(p is bn_weight for g in optimizer.param_groups for p in g["params"])


# ------------------------------------------------------------- evaluation protocol


@pytest.fixture
def set_with_an_empty_image(synthetic_weather):
    name = "test_fidelity_with_empty"
    dicts = [dict(d) for d in DatasetCatalog.get(TRAIN_SET)[:3]]
    dicts[1]["annotations"] = []
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(thing_classes=MetadataCatalog.get(TRAIN_SET).thing_classes)
    yield name, dicts
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_empty_test_images_are_dropped_for_the_listed_sets(set_with_an_empty_image):
    name, dicts = set_with_an_empty_image
    kept = detection_test_dicts(gap_cfg("DATASETS.DROP_EMPTY_TEST_IMAGES", f"('{name}',)"), name)
    assert [d["image_id"] for d in kept] == [dicts[0]["image_id"], dicts[2]["image_id"]]
    assert len(detection_test_dicts(gap_cfg(), name)) == 3
    loader = Trainer.build_test_loader(
        gap_cfg("DATASETS.DROP_EMPTY_TEST_IMAGES", f"('{name}',)"), name)
    assert len(loader.dataset) == 2
    with pytest.raises(ConfigError, match="DROP_EMPTY_TEST_IMAGES names datasets that are not "
                                          "registered: .'no_such_set'."):
        gap_cfg("DATASETS.DROP_EMPTY_TEST_IMAGES", "('no_such_set',)")


def test_dataset_stats_counts_the_images_the_protocol_keeps(set_with_an_empty_image, capsys):
    name, _ = set_with_an_empty_image
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "dataset_stats.py")
    runpy.run_path(tool, run_name="dataset_stats")["main"]([name])
    assert f"{name}: 3 images, 2 with objects, 1 without; objects: bus " in capsys.readouterr().out


def test_an_empty_image_with_a_false_positive_costs_ap_only_when_kept():
    # Image "a" holds one car, found with score 0.5; empty image "b" gets a car at 0.9.
    ground_truth = {"a": (np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([False]))}
    found = ("a", 0.5, [0.0, 0.0, 10.0, 10.0])
    spurious = ("b", 0.9, [0.0, 0.0, 10.0, 10.0])
    # Kept: the first detection is false (precision 0), the second reaches recall 1 at 1/2.
    assert average_precision([found, spurious], ground_truth) == pytest.approx(0.5)
    assert average_precision([found], ground_truth) == pytest.approx(1.0)


def test_devkit_arithmetic_counts_pixels_inclusively_and_needs_iou_above_the_threshold():
    ground_truth = {"a": (np.array([[0.0, 0.0, 9.0, 9.0]]), np.array([False]))}
    # Continuous: 9 x 4.4 = 39.6 of the 81 ground-truth area, IoU 0.489: no match. Devkit: the
    # boxes span 10 x 10 and 10 x 5.4 pixels, IoU 54 / 100 = 0.54: a match.
    short = ("a", 0.9, [0.0, 0.0, 9.0, 4.4])
    assert average_precision([short], ground_truth) == 0.0
    assert average_precision([short], ground_truth, voc_devkit=True) == pytest.approx(1.0)
    # IoU exactly 0.5 matches in continuous arithmetic (9 x 4.5 of 81), not in the devkit's
    # (10 x 5 of 100 pixels: it needs IoU > 0.5).
    assert average_precision([("a", 0.9, [0.0, 0.0, 9.0, 4.5])], ground_truth) == pytest.approx(1.0)
    assert average_precision([("a", 0.9, [0.0, 0.0, 9.0, 4.0])], ground_truth,
                             voc_devkit=True) == 0.0
