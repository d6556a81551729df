"""CLIP classifiers: zero-shot, CoOp, CoCoOp logits against direct open_clip computations."""
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model

from domaingen.clip import build_clip_model, get_tokenizer
from domaingen.engine import load_config

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs", "quick")
CLASSES = ["dog", "elephant", "guitar", "house"]
DATASET = "test_classifiers_fake_train"
MetadataCatalog.get(DATASET).set(thing_classes=CLASSES, evaluator_type="classification")


def build(arch, *opts):
    cfg = load_config(os.path.join(CONFIGS, "synthetic_domains_coop.yaml"), [
        "MODEL.META_ARCHITECTURE", arch, "DATASETS.DG_BENCHMARK", "",
        "DATASETS.TRAIN", f"('{DATASET}',)", "DATASETS.TEST", "()", "MODEL.DEVICE", "cpu", *opts])
    return build_model(cfg).eval()


def images(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8),
             "label": i % len(CLASSES)} for i in range(n)]


def reference_text_features(clip, token_ids, ctx=None, ctx_slice=slice(1, 5)):
    """open_clip's full 77-token text path, optionally with context embeddings spliced in."""
    x = clip.token_embedding(token_ids)
    if ctx is not None:
        x = x.clone()
        x[:, ctx_slice] = ctx
    x = x + clip.positional_embedding
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)[torch.arange(x.shape[0]), token_ids.argmax(-1)]
    return F.normalize(x @ clip.text_projection, dim=-1)


def reference_image_features(clip, batch):
    x = torch.stack([b["image"] for b in batch]).float().flip(1)  # BGR -> RGB
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1) * 255
    return F.normalize(clip.visual((x - mean) / std), dim=-1)


@pytest.fixture(scope="module")
def clip():
    return build_clip_model("domaingen-tiny-ViT")


@torch.no_grad()
def test_zero_shot_logits(clip):
    model = build("ZeroShotCLIPClassifier")
    batch = images()
    ids = get_tokenizer("domaingen-tiny-ViT")([f"a photo of a {c}." for c in CLASSES])
    expected = clip.logit_scale.exp() * reference_image_features(clip, batch) @ \
        reference_text_features(clip, ids).t()
    logits = torch.stack([o["logits"] for o in model(batch)])
    assert torch.allclose(logits, expected, atol=1e-4)


@torch.no_grad()
def test_coop_logits_with_learned_context(clip):
    model = build("CoOpClassifier")
    model.prompts.ctx.add_(0.05 * torch.randn_like(model.prompts.ctx))
    batch = images()
    ids = get_tokenizer("domaingen-tiny-ViT")([f"X X X X {c}." for c in CLASSES])
    text = reference_text_features(clip, ids, ctx=model.prompts.ctx)
    expected = clip.logit_scale.exp() * reference_image_features(clip, batch) @ text.t()
    assert torch.allclose(torch.stack([o["logits"] for o in model(batch)]), expected, atol=1e-4)


@torch.no_grad()
def test_cocoop_logits_per_image_context(clip):
    model = build("CoCoOpClassifier")
    for p in model.meta_net.parameters():
        p.add_(0.1 * torch.randn_like(p))
    batch = images()
    feats = reference_image_features(clip, batch)
    ids = get_tokenizer("domaingen-tiny-ViT")([f"X X X X {c}." for c in CLASSES])
    rows = []
    for f in feats:
        ctx = model.prompts.ctx + model.meta_net(f[None])[0]
        rows.append(clip.logit_scale.exp() * f @ reference_text_features(clip, ids, ctx=ctx).t())
    assert torch.allclose(torch.stack([o["logits"] for o in model(batch)]), torch.stack(rows),
                          atol=1e-4)


@torch.no_grad()
def test_class_token_in_front(clip):
    model = build("CoOpClassifier", "MODEL.PROMPT.CLASS_TOKEN_POSITION", "front")
    tokens = model.prompts.assemble(model.prompts.ctx)
    ids = get_tokenizer("domaingen-tiny-ViT")([f"{c} a photo of a." for c in CLASSES])
    expected = clip.token_embedding(ids)[:, :tokens.shape[1]]
    assert torch.allclose(tokens, expected, atol=1e-6)


def test_ctx_init_must_match_n_ctx():
    with pytest.raises(ValueError, match="has 4 tokens but MODEL.PROMPT.N_CTX is 3"):
        build("CoOpClassifier", "MODEL.PROMPT.N_CTX", "3")


def test_only_the_prompt_learner_trains_and_is_saved():
    model = build("CoCoOpClassifier")
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["meta_net.0.bias", "meta_net.0.weight", "meta_net.2.bias",
                         "meta_net.2.weight", "prompts.ctx"]
    assert sorted(model.state_dict()) == trainable
    model.train()
    assert not model.visual.training and not model.text_encoder.training
    loss = model(images())["loss_cls"]
    loss.backward()
    assert model.prompts.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)
