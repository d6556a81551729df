"""Tests for domaingen.clip: building, weight loading (every format), errors.

Everything runs on the tiny ``domaingen-tiny-RN`` / ``domaingen-tiny-ViT`` configs, offline.
"""
import os

import open_clip
import pytest
import torch
from torch import nn

from domaingen.clip import (
    ClipWeightsError,
    build_clip_from_cfg,
    build_clip_model,
    get_tokenizer,
    register_model_configs,
)
from domaingen.clip import models as clip_models
from domaingen.clip import weights as clip_weights

RN = "domaingen-tiny-RN"
VIT = "domaingen-tiny-ViT"
OPENAI_METADATA = {
    "input_resolution": torch.tensor(224),
    "context_length": torch.tensor(77),
    "vocab_size": torch.tensor(49408),
}


class _NotATensor:
    """Pickled by reference: loading it needs arbitrary unpickling."""

    def __init__(self):
        self.value = 3


# ---------------------------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source_models():
    """Source models built with seed 1; loads below use the default seed 0, so equality with the
    source proves the weights came from the file."""
    return {name: build_clip_model(name, seed=1) for name in (RN, VIT)}


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer(RN)


def _uses_quick_gelu(model: nn.Module) -> bool:
    return any(isinstance(m, open_clip.transformer.QuickGELU) for m in model.modules())


def _assert_state_dict_equal(model: nn.Module, expected: dict) -> None:
    actual = model.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype or not value.is_floating_point(), key
        assert torch.equal(actual[key], value.to(actual[key].dtype)), key


def _save_torchscript_archive(state_dict: dict, param_names: set, path) -> None:
    """An OpenAI-style TorchScript archive: the same tensors under the same dotted names
    (nested containers mirroring the key paths) plus the metadata buffers at the top level."""

    class Root(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Root()
    for key, value in state_dict.items():
        *parents, leaf = key.split(".")
        module = root
        for part in parents:
            if part not in module._modules:
                module.add_module(part, nn.Module())
            module = module._modules[part]
        if key in param_names:
            module.register_parameter(leaf, nn.Parameter(value.detach().clone(),
                                                         requires_grad=False))
        else:
            module.register_buffer(leaf, value.detach().clone())
    for key, value in OPENAI_METADATA.items():
        root.register_buffer(key, value.clone())
    torch.jit.save(torch.jit.script(root), str(path))


# ---------------------------------------------------------------------------------------------
# 1. random initialisation and config registration
# ---------------------------------------------------------------------------------------------

def test_tiny_configs_registered():
    register_model_configs()
    register_model_configs()  # idempotent
    models = open_clip.list_models()
    assert RN in models and VIT in models


@pytest.mark.parametrize("name", [RN, VIT])
def test_random_init_deterministic_per_seed(name):
    rng_before = torch.get_rng_state()
    a = build_clip_model(name, seed=0)
    b = build_clip_model(name, seed=0)
    c = build_clip_model(name, seed=5)
    # The seeded build does not disturb the global RNG.
    assert torch.equal(torch.get_rng_state(), rng_before)
    sd_a, sd_b, sd_c = a.state_dict(), b.state_dict(), c.state_dict()
    for key in sd_a:
        assert torch.equal(sd_a[key], sd_b[key]), key
    assert not torch.equal(sd_a["token_embedding.weight"], sd_c["token_embedding.weight"])
    assert not torch.equal(sd_a["text_projection"], sd_c["text_projection"])
    assert not a.training
    assert all(p.dtype == torch.float32 for p in a.parameters())
    # Random init with "auto" is not OpenAI's -> plain GELU; forcing gives QuickGELU.
    assert not _uses_quick_gelu(a)
    assert _uses_quick_gelu(build_clip_model(name, quick_gelu="true"))


def test_build_clip_from_cfg_uses_seed_and_name():
    from detectron2.config import get_cfg

    from domaingen.config import add_domaingen_config

    cfg = add_domaingen_config(get_cfg())
    cfg.MODEL.CLIP.NAME = RN
    cfg.MODEL.CLIP.INIT_SEED = 3
    model = build_clip_from_cfg(cfg)
    expected = build_clip_model(RN, seed=3).state_dict()
    _assert_state_dict_equal(model, expected)


def test_bad_quick_gelu_setting():
    with pytest.raises(ValueError, match="QUICK_GELU"):
        build_clip_model(RN, quick_gelu="maybe")


# ---------------------------------------------------------------------------------------------
# 2. weight loading from every supported format
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [RN, VIT])
@pytest.mark.parametrize("layout", ["plain", "wrapped", "module_prefix", "wrapped_module_prefix"])
def test_load_open_clip_state_dict(tmp_path, source_models, name, layout):
    sd = source_models[name].state_dict()
    saved = dict(sd)
    if "module_prefix" in layout:
        saved = {f"module.{k}": v for k, v in saved.items()}
    if "wrapped" in layout:
        saved = {"state_dict": saved}
    path = tmp_path / f"{layout}.pt"
    torch.save(saved, path)
    model = build_clip_model(name, str(path), cache_dir=str(tmp_path / "cache"))
    _assert_state_dict_equal(model, sd)
    assert not model.training
    # An open_clip-format file is not OpenAI's: "auto" keeps GELU.
    assert not _uses_quick_gelu(model)
    # Plain state dicts are read directly; nothing is cached.
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", [RN, VIT])
def test_load_openai_state_dict_selects_quick_gelu(tmp_path, source_models, name):
    sd = source_models[name].state_dict()
    saved = {k: (v.half() if v.is_floating_point() and k.startswith("transformer.") else v)
             for k, v in sd.items()}
    assert any(v.dtype == torch.float16 for v in saved.values())
    saved.update(OPENAI_METADATA)
    path = tmp_path / "openai.pt"
    torch.save(saved, path)

    model = build_clip_model(name, str(path), cache_dir=str(tmp_path / "cache"))
    expected = {k: v.float() if v.is_floating_point() else v
                for k, v in saved.items() if k not in OPENAI_METADATA}
    _assert_state_dict_equal(model, expected)  # metadata dropped, fp16 upcast to fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert _uses_quick_gelu(model)

    forced_off = build_clip_model(name, str(path), quick_gelu="false")
    assert not _uses_quick_gelu(forced_off)
    _assert_state_dict_equal(forced_off, expected)


def test_is_torchscript_archive(tmp_path, source_models):
    sd = source_models[RN].state_dict()
    archive = tmp_path / "RN-tiny.pt"
    _save_torchscript_archive(sd, {n for n, _ in source_models[RN].named_parameters()}, archive)
    plain = tmp_path / "plain.pt"
    torch.save(sd, plain)
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint\n")
    assert clip_weights.is_torchscript_archive(str(archive))
    assert not clip_weights.is_torchscript_archive(str(plain))
    assert not clip_weights.is_torchscript_archive(str(text))


@pytest.mark.parametrize("name", [RN, VIT])
def test_load_torchscript_archive_converts_once(tmp_path, source_models, monkeypatch, name):
    source = source_models[name]
    sd = source.state_dict()
    archive = tmp_path / "openai-archive.pt"
    _save_torchscript_archive(sd, {n for n, _ in source.named_parameters()}, archive)
    assert clip_weights.is_torchscript_archive(str(archive))
    cache_dir = tmp_path / "cache"

    model = build_clip_model(name, str(archive), cache_dir=str(cache_dir))
    _assert_state_dict_equal(model, sd)
    assert _uses_quick_gelu(model)  # a TorchScript archive is OpenAI's

    cached = sorted(p for p in os.listdir(cache_dir) if p.endswith(".state_dict.pt"))
    assert len(cached) == 1 and cached[0].startswith("openai-archive-")
    assert not [p for p in os.listdir(cache_dir) if p.endswith(".tmp")]
    cached_sd = torch.load(cache_dir / cached[0], map_location="cpu", weights_only=True)
    assert set(cached_sd) == set(sd) | set(OPENAI_METADATA)
    for key, value in sd.items():
        assert torch.equal(cached_sd[key], value), key

    def no_jit_load(*args, **kwargs):
        raise AssertionError("the TorchScript archive was read again instead of the cache")

    monkeypatch.setattr(torch.jit, "load", no_jit_load)
    again = build_clip_model(name, str(archive), cache_dir=str(cache_dir))
    _assert_state_dict_equal(again, sd)
    assert _uses_quick_gelu(again)
    assert sorted(p for p in os.listdir(cache_dir) if p.endswith(".state_dict.pt")) == cached


def test_unreadable_torchscript_archive(tmp_path, source_models, monkeypatch):
    archive = tmp_path / "archive.pt"
    _save_torchscript_archive(source_models[RN].state_dict(),
                              {n for n, _ in source_models[RN].named_parameters()}, archive)

    def broken_jit_load(*args, **kwargs):
        raise RuntimeError("corrupt archive")

    monkeypatch.setattr(torch.jit, "load", broken_jit_load)
    with pytest.raises(ClipWeightsError, match="TorchScript") as info:
        build_clip_model(RN, str(archive), cache_dir=str(tmp_path / "cache"))
    assert str(archive) in str(info.value)


@pytest.mark.parametrize("name", [RN, VIT])
def test_load_safetensors(tmp_path, source_models, name):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    sd = source_models[name].state_dict()
    path = tmp_path / "weights.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = build_clip_model(name, str(path))
    _assert_state_dict_equal(model, sd)
    assert not _uses_quick_gelu(model)


# ---------------------------------------------------------------------------------------------
# 3. errors
# ---------------------------------------------------------------------------------------------

def test_weights_from_other_architecture(tmp_path, source_models):
    path = tmp_path / "tiny-vit.pt"
    torch.save(source_models[VIT].state_dict(), path)
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model(RN, str(path))
    message = str(info.value)
    assert str(path) in message
    assert "does not match" in message and RN in message
    assert "missing keys" in message and "unexpected keys" in message


def test_weights_with_wrong_shapes(tmp_path, source_models):
    sd = dict(source_models[RN].state_dict())
    sd["text_projection"] = torch.zeros(64, 32)
    path = tmp_path / "shapes.pt"
    torch.save(sd, path)
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model(RN, str(path))
    message = str(info.value)
    assert str(path) in message and "does not match" in message
    assert "shape mismatches" in message and "text_projection" in message


@pytest.mark.parametrize("content", ["random", "truncated", "text", "empty"])
def test_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / f"{content}.pt"
    if content == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8,
                                       generator=torch.Generator().manual_seed(0)).numpy().tobytes())
    elif content == "truncated":
        full = tmp_path / "full.pt"
        torch.save({"weight": torch.randn(256, 64)}, full)
        data = full.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "text":
        path.write_text("this is a text file, not a checkpoint\n" * 20)
    else:
        path.write_bytes(b"")
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model(RN, str(path))
    message = str(info.value)
    assert str(path) in message
    assert "not a readable checkpoint" in message


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_never_escape_as_other_errors(tmp_path, seed):
    data = torch.randint(0, 256, (512,), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed)).numpy().tobytes()
    path = tmp_path / "garbage.bin"
    path.write_bytes(data)
    with pytest.raises(ClipWeightsError, match="not a readable checkpoint"):
        clip_weights.load_weights_file(str(path), str(tmp_path / "cache"))


def test_checkpoint_needing_arbitrary_unpickling(tmp_path, source_models):
    path = tmp_path / "pickled.pt"
    torch.save({"state_dict": source_models[RN].state_dict(), "extra": _NotATensor()}, path)
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model(RN, str(path))
    message = str(info.value)
    assert str(path) in message
    assert "weights_only" in message and "arbitrary unpickling" in message
    assert "_NotATensor" in message


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(ClipWeightsError, match="does not hold a state dict") as info:
        build_clip_model(RN, str(path))
    assert str(path) in str(info.value)


def test_missing_weights_file(tmp_path):
    path = tmp_path / "nowhere" / "RN101.pt"
    with pytest.raises(ClipWeightsError, match="does not exist") as info:
        build_clip_model(RN, str(path))
    assert str(path) in str(info.value)


def test_pretrained_tag_offline_fails_fast(monkeypatch):
    import huggingface_hub

    lookups = []

    def not_cached(repo_id, filename, *args, **kwargs):
        lookups.append((repo_id, filename))
        return None

    monkeypatch.setattr(clip_models, "_network_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", not_cached)

    def no_download(*args, **kwargs):
        raise AssertionError("must not try to download")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", no_download)
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model("RN50", "openai")
    message = str(info.value)
    cfg = open_clip.get_pretrained_cfg("RN50", "openai")
    assert cfg["url"] in message
    assert "MODEL.CLIP.WEIGHTS" in message and "network" in message
    assert lookups  # the huggingface cache was consulted first


def test_pretrained_tag_found_in_hf_cache(tmp_path, monkeypatch):
    """A tag whose file is already in the huggingface cache loads without any network."""
    import huggingface_hub

    weights = tmp_path / "open_clip_pytorch_model.bin"
    torch.save({"not": torch.zeros(1)}, weights)

    def cached(repo_id, filename, *args, **kwargs):
        return str(weights) if filename == "open_clip_pytorch_model.bin" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", cached)
    monkeypatch.setattr(clip_models, "_network_reachable", lambda *a, **k: False)
    # Building RN50 itself is too slow for a unit test; a stand-in model is enough here.
    monkeypatch.setattr(clip_models, "_create",
                        lambda name, quick_gelu, seed, precision: nn.Linear(1, 1))
    # The cached file is found and read; it then fails the architecture check (not the network).
    with pytest.raises(ClipWeightsError, match="does not match") as info:
        build_clip_model("RN50", "openai")
    assert str(weights) in str(info.value)


def test_unknown_pretrained_tag_lists_tags():
    with pytest.raises(ClipWeightsError) as info:
        build_clip_model("RN50", "no-such-tag")
    message = str(info.value)
    assert "no-such-tag" in message and "MODEL.CLIP.WEIGHTS" in message
    tags = open_clip.list_pretrained_tags_by_model("RN50")
    assert tags and all(tag in message for tag in tags)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="not an open_clip model"):
        build_clip_model("RN-does-not-exist")
