"""Tests for domaingen.clip's text side: the truncated text encoder and ``encode_prompts``.

Everything runs on the tiny ``domaingen-tiny-RN`` / ``domaingen-tiny-ViT`` configs, offline.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from domaingen.clip import ClipTextEncoder, build_clip_model, encode_prompts, get_tokenizer

RN = "domaingen-tiny-RN"
VIT = "domaingen-tiny-ViT"
MIXED_PROMPTS = [
    "a",
    "a photo of a car.",
    "a blurry low resolution photo of a person crossing the street at night in the rain.",
    "a bike on a road",
]


@pytest.fixture(scope="module")
def source_models():
    return {name: build_clip_model(name, seed=1) for name in (RN, VIT)}


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer(RN)


# ---------------------------------------------------------------------------------------------
# 4. truncated text encoder
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [RN, VIT])
def test_text_encoder_matches_encode_text(source_models, tokenizer, name):
    model = source_models[name]
    encoder = ClipTextEncoder(model)
    assert encoder.token_embedding is model.token_embedding  # shared, not copied
    assert encoder.width == 64
    ids = tokenizer(MIXED_PROMPTS)
    eot = ids.argmax(-1)
    assert len(set(eot.tolist())) == len(MIXED_PROMPTS)  # really mixed lengths
    assert int(eot.max()) + 1 < ids.shape[1]  # so the encoder really truncates
    with torch.no_grad():
        expected = model.encode_text(ids)
        from_ids = encoder(ids)
        from_embeddings = encoder(token_embeddings=model.token_embedding(ids), eot_positions=eot)
    assert from_ids.shape == expected.shape == (len(MIXED_PROMPTS), 64)
    assert (from_ids - expected).abs().max() <= 1e-5
    assert (from_embeddings - expected).abs().max() <= 1e-5
    # Each prompt is encoded independently of the batch's longest one.
    with torch.no_grad():
        single = encoder(ids[:1])
    assert (single - expected[:1]).abs().max() <= 1e-5
    # The naive reference path pads truncated embeddings back to 77 tokens: same features.
    short = model.token_embedding(ids)[:, : int(eot.max()) + 1]
    with torch.no_grad():
        naive = encoder(token_embeddings=short, eot_positions=eot, truncate=False)
    assert (naive - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("name", [RN, VIT])
def test_text_encoder_gradients_reach_learned_context(tokenizer, name):
    model = build_clip_model(name, seed=4)
    encoder = ClipTextEncoder(model)
    n_ctx = 4
    ids = tokenizer([" ".join(["X"] * n_ctx) + f" {c}." for c in ("car", "person", "bike")])
    eot = ids.argmax(-1)
    with torch.no_grad():
        base = model.token_embedding(ids)
    ctx = nn.Parameter(torch.randn(n_ctx, encoder.width) * 0.02)
    embeddings = torch.cat([base[:, :1], ctx.expand(len(ids), -1, -1), base[:, 1 + n_ctx:]], dim=1)
    embeddings.retain_grad()
    out = encoder(token_embeddings=embeddings, eot_positions=eot)
    out.pow(2).sum().backward()

    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    for row, end in enumerate(eot.tolist()):
        grad = embeddings.grad[row]
        assert (grad[: end + 1].abs().sum(-1) > 0).all()  # every token up to end-of-text
        assert (grad[end + 1:] == 0).all()  # nothing after it (causal + truncated)

    # Same features as open_clip on the equivalent full-length pass.
    with torch.no_grad():
        x = embeddings.detach() + model.positional_embedding
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask))
        full = x[torch.arange(len(ids)), eot] @ model.text_projection
    assert (out.detach() - full).abs().max() <= 1e-5


def test_text_encoder_argument_errors(source_models):
    encoder = ClipTextEncoder(source_models[RN])
    with pytest.raises(ValueError, match="token_ids or token_embeddings"):
        encoder()
    with pytest.raises(ValueError, match="eot_positions"):
        encoder(token_embeddings=torch.zeros(1, 5, 64))


# ---------------------------------------------------------------------------------------------
# 5. encode_prompts
# ---------------------------------------------------------------------------------------------

CLASSES = ["car", "person", "bike"]


@pytest.mark.parametrize("name", [RN, VIT])
def test_encode_prompts_single_template(source_models, tokenizer, name):
    model = source_models[name]
    out = encode_prompts(model, name, CLASSES, ["a photo of a {}."])
    assert out.shape == (len(CLASSES), 64)
    assert torch.allclose(out.norm(dim=-1), torch.ones(len(CLASSES)), atol=1e-6)
    with torch.no_grad():
        direct = F.normalize(model.encode_text(tokenizer([f"a photo of a {c}." for c in CLASSES])),
                             dim=-1)
    assert (out - direct).abs().max() <= 1e-5


@pytest.mark.parametrize("name", [RN, VIT])
def test_encode_prompts_template_ensemble(source_models, tokenizer, name):
    model = source_models[name]
    templates = ["a photo of a {}.", "a blurry photo of the {} on a road.", "{}"]
    out = encode_prompts(model, name, CLASSES, templates)
    assert out.shape == (len(CLASSES), 64)
    assert not out.requires_grad
    assert torch.allclose(out.norm(dim=-1), torch.ones(len(CLASSES)), atol=1e-6)
    with torch.no_grad():
        expected = []
        for c in CLASSES:
            feats = F.normalize(model.encode_text(tokenizer([t.format(c) for t in templates])),
                                dim=-1)
            expected.append(F.normalize(feats.mean(0), dim=-1))
        expected = torch.stack(expected)
        # The ensemble really differs from any single template.
        first_only = encode_prompts(model, name, CLASSES, templates[:1])
    assert (out - expected).abs().max() <= 1e-5
    assert (out - first_only).abs().max() > 1e-3


@pytest.mark.parametrize("templates", [["a photo of a car."], ["{} and {}"], [],
                                       ["a photo of a {}.", "no placeholder"]])
def test_encode_prompts_bad_templates(source_models, templates):
    with pytest.raises(ValueError, match="template"):
        encode_prompts(source_models[RN], RN, CLASSES, templates)
