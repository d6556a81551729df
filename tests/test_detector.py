"""The CLIP C4 detector: backbone, ROI head, text classifier, meta-architecture."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_model
from helpers import QUICK_CONFIG
from torch import nn

import domaingen.clip.models as clip_models
from domaingen.clip import build_clip_model, encode_prompts, get_tokenizer
from domaingen.data.datasets import DIVERSE_WEATHER_CLASSES
from domaingen.engine import load_config
from domaingen.methods.clip_gap import ClipGapRCNN
from domaingen.modeling.backbone import ClipResNetBackbone
from domaingen.modeling.meta_arch import ClipRCNN
from domaingen.modeling.roi_heads import ClipRes5ROIHeads, TextEmbeddingClassifier


def quick_cfg(*opts):
    return load_config(QUICK_CONFIG, ["MODEL.DEVICE", "cpu", *opts])


@pytest.mark.parametrize("arch", [ClipRCNN, ClipGapRCNN], ids=lambda a: a.__name__)
def test_one_clip_is_built_and_cut_into_backbone_and_roi_head(arch, monkeypatch):
    calls = []
    build = clip_models.build_clip_model
    monkeypatch.setattr(clip_models, "build_clip_model",
                        lambda *args: calls.append(args) or build(*args))
    model = build_model(quick_cfg("MODEL.META_ARCHITECTURE", arch.__name__))
    assert (type(model), type(model.backbone), type(model.roi_heads)) == \
        (arch, ClipResNetBackbone, ClipRes5ROIHeads)
    assert len(calls) == 1  # backbone, ROI head (and CLIP the Gap's bank) share one build
    visual = build(*calls[0]).visual  # random init from the config's seed: the same weights
    assert torch.equal(model.backbone.res4[0].conv1.weight, visual.layer3[0].conv1.weight)
    assert torch.equal(model.roi_heads.res5[0].conv1.weight, visual.layer4[0].conv1.weight)


@pytest.fixture(scope="module")
def model():
    return build_model(quick_cfg("MODEL.BACKBONE.FREEZE_AT", "3", "MODEL.CLIP.FROZEN_BN", "True"))


def test_backbone_outputs_res4_and_freezes_stages(model):
    backbone = model.backbone
    out = backbone(torch.zeros(1, 3, 64, 96))
    assert list(out) == ["res4"]
    assert out["res4"].shape == (1, backbone.output_shape()["res4"].channels, 4, 6)
    trainable = {name: any(p.requires_grad for p in getattr(backbone, name).parameters())
                 for name in backbone.stage_names}
    assert trainable == {"stem": False, "res2": False, "res3": False, "res4": True}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.roi_heads.res5.modules())


def test_authors_train_mode_batchnorm_switch():
    model = build_model(quick_cfg("MODEL.CLIP.FROZEN_BN", "False"))
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())


def test_backbone_and_roi_head_come_from_the_same_clip(model):
    clip = build_clip_model("domaingen-tiny-RN")
    assert torch.equal(model.backbone.res4[0].conv1.weight, clip.visual.layer3[0].conv1.weight)
    assert torch.equal(model.roi_heads.attnpool.q_proj.weight, clip.visual.attnpool.q_proj.weight)


def test_text_embeddings_are_the_class_prompts(model):
    """The authors' class prompt has no period: "a photo of a car", not "a photo of a car."."""
    clip = build_clip_model("domaingen-tiny-RN")
    texts = [f"a photo of a {c}" for c in DIVERSE_WEATHER_CLASSES]
    expected = torch.nn.functional.normalize(
        clip.encode_text(get_tokenizer("domaingen-tiny-RN")(texts)), dim=-1)
    assert torch.allclose(model.roi_heads.box_predictor.text_embeddings, expected, atol=1e-6)
    with_period = encode_prompts(clip, "domaingen-tiny-RN", DIVERSE_WEATHER_CLASSES,
                                 ["a photo of a {}."])
    assert not torch.allclose(model.roi_heads.box_predictor.text_embeddings, with_period, atol=1e-3)
    assert "roi_heads.box_predictor.text_embeddings" in model.state_dict()


def test_clip_rcnn_flips_bgr_and_normalises_with_clip_statistics(model):
    image = torch.empty(3, 32, 32)
    image[0], image[1], image[2] = 10.0, 20.0, 30.0  # B, G, R
    batch = model.preprocess_image([{"image": image}])
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]) * 255
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]) * 255
    expected = (torch.tensor([30.0, 20.0, 10.0]) - mean) / std
    assert torch.allclose(batch.tensor[0, :, 0, 0], expected, atol=1e-5)


def make_classifier(background="zero", projection=False, scale=100.0):
    cfg = quick_cfg("MODEL.ROI_HEADS.NUM_CLASSES", "2", "MODEL.TEXT_CLASSIFIER.BACKGROUND",
                    background, "MODEL.TEXT_CLASSIFIER.PROJECTION", str(projection),
                    "MODEL.TEXT_CLASSIFIER.LOGIT_SCALE", str(scale))
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised to the unit axes
    return TextEmbeddingClassifier(cfg, ShapeSpec(channels=4, height=1, width=1),
                                   text_embeddings=text)


def test_classifier_logits_temperature_and_zero_background():
    clf = make_classifier(scale=10.0)
    scores, deltas = clf(torch.tensor([[3.0, 4.0]]), torch.ones(1, 4, 7, 7))
    # normalise([3, 4]) = [0.6, 0.8]; logits = 10 * [0.6, 0.8]; background column fixed at 0.
    assert torch.allclose(scores, torch.tensor([[6.0, 8.0, 0.0]]))
    assert deltas.shape == (1, 2 * 4)
    assert not any("background" in n for n, _ in clf.named_parameters())


def test_classifier_learned_background_gets_gradient():
    clf = make_classifier(background="learned", scale=100.0)
    with torch.no_grad():
        clf.background_logit.fill_(1.5)
    scores, _ = clf(torch.tensor([[0.0, -5.0]]), torch.ones(1, 4, 7, 7))
    assert torch.allclose(scores, torch.tensor([[0.0, -100.0, 1.5]]))
    F.cross_entropy(scores, torch.tensor([2])).backward()
    assert clf.background_logit.grad is not None and clf.background_logit.grad.abs() > 0


def test_projection_starts_as_identity():
    plain, projected = make_classifier(), make_classifier(projection=True)
    x = torch.randn(5, 2)
    assert torch.allclose(plain.class_logits(x), projected.class_logits(x), atol=1e-5)


def test_class_count_must_match_dataset_metadata():
    with pytest.raises(ValueError, match="NUM_CLASSES=3 but dataset "
                                         "'synthetic_dw_daytime_clear_train' has 7"):
        build_model(quick_cfg("MODEL.ROI_HEADS.NUM_CLASSES", "3"))


def test_pooler_resolution_must_fit_the_attention_pool():
    with pytest.raises(ValueError, match="POOLER_RESOLUTION must be 14"):
        build_model(quick_cfg("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7"))


def test_inference_returns_instances(model):
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8),
                      "height": 128, "width": 192}])
    instances = out[0]["instances"]
    assert instances.image_size == (128, 192)
    assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
