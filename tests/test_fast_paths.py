"""Every fast path against its naive twin (fp32, same outputs within 1e-5)."""
import copy
import os
import shutil

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from torch.utils.checkpoint import checkpoint

from domaingen.benchmark.authors_paths import (
    authors_clip_embeddings,
    domain_prompt_tokens,
    optimization_step_authors,
)
from domaingen.benchmark.detection import random_detection_batch
from domaingen.clip import (
    ClipTextEncoder,
    MeanTokenAttentionPool,
    build_clip_from_cfg,
    clip_attention_pool,
    encode_prompts,
    get_tokenizer,
)
from domaingen.clip import onednn as onednn_module
from domaingen.clip import text as text_module
from domaingen.engine import load_config
from domaingen.methods.clip_gap import augmentation_step
from domaingen.methods.clip_gap.offset_bank import domain_text_directions
from domaingen.modeling.roi_heads import detector_class_names

QUICK = os.path.join(os.path.dirname(__file__), "..", "configs", "quick")
GAP = os.path.join(QUICK, "diverse_weather_clip_gap.yaml")
TARGETS = "['night time', 'rainy day', 'foggy day']"


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    cfg = load_config(GAP, ["MODEL.CLIP.FROZEN_BN", "True", "MODEL.CLIP_GAP.TARGET_PROMPTS",
                            TARGETS, "MODEL.DEVICE", "cpu"])
    return build_model(cfg).train(), cfg


def test_optimization_step_equals_the_authors_path(detector):
    model, cfg = detector
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    clip_model = build_clip_from_cfg(cfg)
    bank = theirs.augmentation_bank
    tokens = domain_prompt_tokens(get_tokenizer(cfg.MODEL.CLIP.NAME), bank.source_prompt,
                                  bank.target_prompts)
    directions = domain_text_directions(clip_model, cfg.MODEL.CLIP.NAME, bank.source_prompt,
                                        bank.target_prompts)
    g = torch.Generator().manual_seed(0)
    start = torch.randn(bank.offsets.shape, generator=g) * 0.1
    crops = torch.randint(0, 256, (3, 3, 224, 224), generator=g, dtype=torch.uint8)
    losses = []
    for m in (ours, theirs):
        with torch.no_grad():
            m.augmentation_bank.offsets.copy_(start)
            m.augmentation_bank.text_directions.copy_(directions)
    opt_ours = torch.optim.SGD([ours.augmentation_bank.offsets], lr=1.0)
    losses.append(augmentation_step(ours, crops, opt_ours, 1.0, loss_over_m_plus_1=True))
    opt_theirs = torch.optim.SGD([bank.offsets], lr=1.0)
    losses.append(optimization_step_authors(theirs, clip_model, *tokens, crops, opt_theirs))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert (ours.augmentation_bank.offsets - start).abs().max() > 0
    assert torch.allclose(ours.augmentation_bank.offsets, bank.offsets, atol=1e-5, rtol=0)
    assert all(p.grad is None for p in theirs.parameters())  # no gradients left behind


def test_mean_token_attention_pool_equals_clips_pool(detector):
    model, _ = detector
    pool = model.roi_heads.attnpool
    assert isinstance(pool, MeanTokenAttentionPool)
    original = clip_attention_pool(pool)
    assert type(original) is not MeanTokenAttentionPool
    assert list(original.state_dict()) == list(pool.state_dict())
    g = torch.Generator().manual_seed(1)
    features = torch.randn(4, pool.k_proj.in_features, 7, 7, generator=g, requires_grad=True)
    grads = []
    for forward in (pool.forward, pool.forward_all_tokens):
        out = forward(features)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
        grads.append(torch.autograd.grad((out * weights).sum(), [features, pool.k_proj.weight]))
        grads[-1] = (out.detach(), *grads[-1])
    for a, b in zip(*grads):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()
    with torch.no_grad():
        torch.testing.assert_close(original(features), pool(features), rtol=0, atol=1e-5)
    features = torch.randn(2, model.backbone.output_shape()["res4"].channels, 14, 14, generator=g)
    assert torch.allclose(authors_clip_embeddings(model, features),
                          torch.nn.functional.normalize(pool(model.roi_heads.res5(features)),
                                                        dim=-1), atol=1e-5)


def test_detector_iteration_uses_cached_class_text(detector, monkeypatch):
    model, cfg = detector
    fresh = encode_prompts(build_clip_from_cfg(cfg), cfg.MODEL.CLIP.NAME,
                           detector_class_names(cfg), cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES)
    cached = model.roi_heads.box_predictor.text_embeddings
    assert torch.allclose(cached, fresh, atol=1e-5)
    calls = []
    forward = ClipTextEncoder.forward
    monkeypatch.setattr(ClipTextEncoder, "forward",
                        lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    batch = random_detection_batch(1, cfg.MODEL.ROI_HEADS.NUM_CLASSES, "cpu")
    with EventStorage(0):
        losses = model(batch)
    sum(losses.values()).backward()
    model.zero_grad(set_to_none=True)
    assert calls == []  # no text encoding inside a training iteration


@pytest.mark.parametrize("arch", ["CoOpClassifier", "CoCoOpClassifier"])
def test_truncated_text_path_equals_the_77_token_path(arch):
    cfg = load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"),
                      ["MODEL.META_ARCHITECTURE", arch])
    model = build_model(cfg).eval()
    features = torch.nn.functional.normalize(torch.randn(3, 64), dim=-1)
    with torch.no_grad():
        truncated = model.class_logits(features)
        model.truncate_text = False
        naive = model.class_logits(features)
    assert torch.allclose(truncated, naive, atol=1e-5 * model.logit_scale.item())


def test_speed_options_compile_in_place_and_keep_parameter_names():
    from domaingen.engine import Trainer

    opts = ["MODEL.META_ARCHITECTURE", "CoOpClassifier"]
    plain = Trainer.build_model(load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"),
                                            opts))
    fast = Trainer.build_model(load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"),
                                           opts + ["MODEL.CHANNELS_LAST", "True",
                                                   "MODEL.COMPILE", "True"]))
    assert fast.visual._compiled_call_impl is not None  # compiled in place...
    assert list(fast.state_dict()) == list(plain.state_dict())  # ...names unchanged
    assert fast.visual.conv1.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on CPU needs a C compiler")
def test_compiled_channels_last_image_tower_gives_the_eager_features():
    from domaingen.benchmark.classification import random_images
    from domaingen.engine import Trainer

    def build(fast: bool):
        torch.manual_seed(0)
        return Trainer.build_model(load_config(
            os.path.join(QUICK, "synthetic_domains_coop.yaml"),
            ["MODEL.CHANNELS_LAST", str(fast), "MODEL.COMPILE", str(fast)])).eval()

    images = random_images(4, 5, 0, "cpu")
    with torch.no_grad():
        eager = build(False).image_features(images)
        compiled = build(True).image_features(images)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)


def test_coop_eval_encodes_class_text_once_per_context(monkeypatch):
    model = build_model(load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"))).eval()
    features = torch.nn.functional.normalize(torch.randn(3, 64), dim=-1)
    calls = []
    encode = ClipTextEncoder.encode_shared_prefix
    monkeypatch.setattr(ClipTextEncoder, "encode_shared_prefix",
                        lambda self, *a, **k: calls.append(1) or encode(self, *a, **k))
    with torch.no_grad():
        first = model.class_logits(features)
        again = model.class_logits(features[:2])
        assert len(calls) == 1 and torch.allclose(first[:2], again, rtol=1e-6, atol=1e-7)
        # a new context (a step, a load)
        model.prompts.ctx.add_(torch.randn_like(model.prompts.ctx))
        moved = model.class_logits(features)
        assert len(calls) == 2 and not torch.allclose(moved, first)
        model.cache_text = False
        assert torch.allclose(model.class_logits(features), moved, atol=1e-6)


def test_text_checkpointing_gives_the_same_features_and_gradients_and_is_wired_to_the_config(
        monkeypatch):
    cfg = load_config(os.path.join(QUICK, "synthetic_domains_adclip.yaml"),
                      ["MODEL.CLIP.TEXT_CHECKPOINT", "True"])
    model = build_model(cfg)
    assert model.text_encoder.checkpoint
    clip = build_clip_from_cfg(cfg)
    plain, recomputed = ClipTextEncoder(clip), ClipTextEncoder(clip, checkpoint=True)
    plain.cpu_chunk = recomputed.cpu_chunk = 3  # several chunks for 7 prompts
    tokens = torch.randint(1, 400, (7, 9))
    tokens[:, 6] = tokens.max() + 1  # end of text at position 6
    recomputations = []
    monkeypatch.setattr(text_module, "checkpoint",
                        lambda *a, **k: recomputations.append(1) or checkpoint(*a, **k))
    results = []
    for encoder in (plain, recomputed):
        embeddings = encoder.token_embedding(tokens).detach().requires_grad_(True)
        features = encoder(token_embeddings=embeddings, eot_positions=tokens.argmax(-1))
        (features ** 2).sum().backward()
        results.append((features.detach(), embeddings.grad))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)
    assert results[0][1].abs().sum() > 0
    assert len(recomputations) == 3  # the checkpointed encoder only, once per chunk


@pytest.mark.parametrize("pack_tokens,onednn", [(224, False), (5, False), (224, True)])
def test_shared_prefix_path_equals_the_77_token_path_with_gradients(pack_tokens, onednn,
                                                                    monkeypatch):
    if onednn:  # every product of the packed path as a oneDNN 1x1 convolution
        monkeypatch.setattr(onednn_module, "MIN_MACS", 0)
    cfg = load_config(os.path.join(QUICK, "synthetic_domains_coop.yaml"),
                      ["MODEL.META_ARCHITECTURE", "CoCoOpClassifier"])
    model = build_model(cfg).eval()
    model.text_encoder.pack_tokens = pack_tokens  # 5: several packs, one class each
    prompts = model.prompts
    assert prompts.prefix_shared
    lengths = tuple((prompts.eot_positions - prompts.n_ctx).tolist())
    packs = text_module.packed_layout(lengths, 1 + prompts.n_ctx, pack_tokens)
    assert len(packs) == (1 if pack_tokens == 224 else len(lengths))
    ctx = (prompts.ctx + 0.1 * torch.randn(3, *prompts.ctx.shape)).requires_grad_(True)
    results = []
    for truncate in (True, False):
        model.truncate_text = truncate
        text = model.encode_context(prompts, ctx)  # [3, K, D]
        weights = torch.randn(text.shape, generator=torch.Generator().manual_seed(0))
        grad, = torch.autograd.grad((text * weights).sum(), ctx)
        results.append((text.detach(), grad))
    assert results[0][0].shape == (3, prompts.num_classes, results[0][0].shape[-1])
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-5)
    grads = results[0][1], results[1][1]
    assert (grads[0] - grads[1]).abs().max() <= 1e-4 * grads[1].abs().max()


def test_packed_layout_masks_other_classes_and_keeps_positions():
    (classes, tokens, positions, mask, ends), = text_module.packed_layout((2, 3), 2, 224)
    assert classes.tolist() == [0, 0, 1, 1, 1] and tokens.tolist() == [0, 1, 0, 1, 2]
    assert positions.tolist() == [2, 3, 2, 3, 4] and ends.tolist() == [3, 6]
    allowed = (mask == 0).int().tolist()
    assert allowed[1] == [1, 1, 0, 0, 0, 0, 0]  # prefix: causal, never a suffix token
    assert allowed[3] == [1, 1, 1, 1, 0, 0, 0]  # class 0's second token
    assert allowed[6] == [1, 1, 0, 0, 1, 1, 1]  # class 1's last token: prefix + its own


def test_shared_prefix_path_recomputes_per_pack_with_text_checkpoint(monkeypatch):
    cfg = load_config(os.path.join(QUICK, "synthetic_domains_adclip.yaml"),
                      ["MODEL.CLIP.TEXT_CHECKPOINT", "True"])
    model = build_model(cfg)
    recomputations = []
    monkeypatch.setattr(text_module, "checkpoint",
                        lambda *a, **k: recomputations.append(1) or checkpoint(*a, **k))
    tokens = model.prompt_learner.tokens
    ctx = torch.randn(2, tokens.n_ctx, model.text_encoder.width, requires_grad=True)
    model.text_encoder.pack_tokens = 1  # one pack per class
    text = model.encode_context(tokens, ctx)
    text.sum().backward()
    assert len(recomputations) == tokens.num_classes and ctx.grad.abs().sum() > 0


def test_onednn_linear_equals_f_linear_with_gradients(monkeypatch):
    monkeypatch.setattr(onednn_module, "MIN_MACS", 0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 16, generator=g, requires_grad=True)
    w = torch.randn(24, 16, generator=g, requires_grad=True)
    b = torch.randn(24, generator=g, requires_grad=True)
    results = []
    for fn in (onednn_module.linear, torch.nn.functional.linear):
        y = fn(x, w, b)
        results.append((y.detach(), *torch.autograd.grad((y ** 2).sum(), [x, w, b])))
    assert results[0][0].shape == (2, 9, 24)
    for a, c in zip(*results):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
