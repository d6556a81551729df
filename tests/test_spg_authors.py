"""SPG as its authors ran it: initialisation, the clipping gate, their test-batch prompt sharing,
their released stage I labels, and the pipeline's --authors / --domain-prompts."""
import math
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.modeling import build_model

from domaingen.engine import Trainer, load_config
from domaingen.methods.spg import (
    DomainPromptError,
    PromptDiscriminator,
    PromptGenerator,
    clip_gradients_per_parameter,
    save_domain_prompt,
)
from domaingen.methods.spg import pipeline as spg_pipeline

REPO = os.path.join(os.path.dirname(__file__), "..")
QUICK = os.path.join(REPO, "configs", "quick", "synthetic_domains_spg.yaml")
PACS_SOURCES = {"art_painting": "a", "cartoon": "c", "photo": "p"}  # sketch held out


# ------------------------------------------------------------------------------ networks

def test_linear_weights_are_he_uniform_and_biases_keep_pytorchs_default():
    """He uniform (fan in, gain sqrt(2)): U(-sqrt(6/fan_in), sqrt(6/fan_in)), variance 2/fan_in.
    PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in)."""
    torch.manual_seed(0)
    nets = [PromptGenerator(512, n_ctx=4, width=512), PromptDiscriminator(4 * 512, 512)]
    for linear in [m for net in nets for m in net.modules() if isinstance(m, torch.nn.Linear)]:
        fan_in = linear.in_features
        w, b = linear.weight.detach(), linear.bias.detach()
        assert w.abs().max() <= math.sqrt(6 / fan_in)
        assert w.var().item() == pytest.approx(2 / fan_in, rel=0.05)  # default init: 1/(3 fan_in)
        assert b.abs().max() <= 1 / math.sqrt(fan_in) and not torch.all(b == 0)
        if b.numel() >= 512:
            assert b.var().item() == pytest.approx(1 / (3 * fan_in), rel=0.25)


def test_a_gradient_within_its_limit_is_left_alone():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.full((4,), 1e-9)  # norm 2e-9 < 5e-8: clip_grad_norm_ would scale it by ~0.05
    clip_gradients_per_parameter([("p", p)], {"p": 5e-8})
    assert torch.equal(p.grad, torch.full((4,), 1e-9))
    p.grad = torch.ones(4)  # norm 2 > 0.5: scaled by 0.5 / (2 + 1e-6), clip_grad_norm_'s factor
    clip_gradients_per_parameter([("p", p)], {"p": 0.5})
    assert p.grad.norm().item() == pytest.approx(0.5 * 2 / (2 + 1e-6), rel=1e-6)


# ------------------------------------------------------------------------------ inference

@pytest.fixture
def labels(tmp_path):
    paths = []
    for i, domain in enumerate(("photo", "cartoon", "painting", "neon")):
        paths.append(str(tmp_path / f"{domain}.pt"))
        ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(i)) * 0.1
        save_domain_prompt(paths[-1], ctx, domain, ["circle", "ring", "square", "star", "triangle"],
                           "domaingen-tiny-ViT")
    return paths


def test_shared_first_prompt_gives_every_image_the_first_images_prompt(synthetic_domains, labels,
                                                                        tmp_path):
    opts = ["MODEL.SPG.DOMAIN_PROMPTS", repr(labels), "OUTPUT_DIR", str(tmp_path)]
    cfg = load_config(QUICK, opts + ["MODEL.SPG.SHARE_FIRST_PROMPT", "True"])
    shared = build_model(cfg).eval()
    own = build_model(load_config(QUICK, opts)).eval()
    own.load_state_dict(shared.state_dict(), strict=False)  # the frozen CLIP is not saved
    batch = list(Trainer.build_test_loader(cfg, "synthetic_domains_sketch_test"))[0][:3]
    with torch.no_grad():
        logits = torch.stack([o["logits"] for o in shared(batch)])
        features = shared.image_features(batch)
        ctx = shared.generator(shared.eval_noise(batch), features)
        text = shared.text_encoder(token_embeddings=shared.prompts.assemble(ctx[0]), truncate=False,
                                   eot_positions=shared.prompts.eot_positions)
        expected = shared.logit_scale * features @ F.normalize(text, dim=-1).t()
        assert torch.allclose(logits, expected, atol=1e-4)
        per_image = torch.stack([o["logits"] for o in own(batch)])
        assert torch.allclose(logits[0], per_image[0], atol=1e-5)
        assert not torch.allclose(logits[1:], per_image[1:], atol=1e-3)
        # At the authors' test batch of 1 the quirk changes nothing.
        assert torch.allclose(shared(batch[1:2])[0]["logits"], per_image[1], atol=1e-5)


# ------------------------------------------------------------------------------ their labels

def write_authors_label(path, ctx):
    """As their stage I saves it: a [n_ctx, width] slice of the assembled fp16 prompts."""
    prompts = torch.zeros(7, 20, ctx.shape[1], dtype=torch.float16)
    prompts[0, 1:1 + ctx.shape[0]] = ctx.half()
    torch.save(prompts[0][1:1 + ctx.shape[0], :], path)


@pytest.fixture
def authors_dir(tmp_path):
    folder = tmp_path / "prompt_labels" / "PACS" / "ViT-B16" / "seed_1"
    folder.mkdir(parents=True)
    for i, letter in enumerate(PACS_SOURCES.values()):
        ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(i)) * 0.05
        write_authors_label(folder / f"PACS_CoOp_{letter}.pt", ctx)
    return folder


def pacs_spg(folder, *opts):
    return load_config(QUICK, ["DATASETS.DG_BENCHMARK", "pacs", "DATASETS.DG_DOMAIN", "sketch",
                               "MODEL.SPG.AUTHORS_DOMAIN_PROMPTS", str(folder), *opts])


def test_the_authors_labels_become_the_source_domains_labels(authors_dir):
    model = build_model(pacs_spg(authors_dir))
    assert model.domain_names == sorted(PACS_SOURCES)
    for i, (domain, letter) in enumerate(sorted(PACS_SOURCES.items())):
        saved = torch.load(authors_dir / f"PACS_CoOp_{letter}.pt", weights_only=True)
        assert saved.dtype == torch.float16 and saved.shape == (4, 64)
        assert model.domain_prompts[i].dtype == torch.float32
        assert torch.equal(model.domain_prompts[i], saved.float())
    batch = [{"domain": "photo"}, {"domain": "art_painting"}]
    assert torch.equal(model.domain_prompt_labels(batch), model.domain_prompts[[2, 0]])


def test_the_authors_labels_that_do_not_fit_are_named(authors_dir, tmp_path):
    photo = authors_dir / "PACS_CoOp_p.pt"
    write_authors_label(photo, torch.zeros(4, 512))  # ViT-B/16's width, not the tiny CLIP's 64
    with pytest.raises(DomainPromptError, match=r"PACS_CoOp_p.pt: context of shape \(4, 512\), "
                       r"but MODEL.CLIP.NAME='domaingen-tiny-ViT' has text width 64"):
        build_model(pacs_spg(authors_dir))
    write_authors_label(photo, torch.zeros(16, 64))
    with pytest.raises(DomainPromptError, match="16 context vectors, but MODEL.PROMPT.N_CTX is 4"):
        build_model(pacs_spg(authors_dir))
    torch.save(torch.zeros(4, 64, dtype=torch.int64), photo)
    with pytest.raises(DomainPromptError, match="dtype torch.int64, expected a floating point"):
        build_model(pacs_spg(authors_dir))
    torch.save({"ctx": torch.zeros(4, 64)}, photo)
    with pytest.raises(DomainPromptError, match="holds a dict, not the authors' bare context"):
        build_model(pacs_spg(authors_dir))
    photo.unlink()
    with pytest.raises(DomainPromptError, match=r"training domain 'photo': .*PACS_CoOp_p.pt does "
                                                r"not exist"):
        build_model(pacs_spg(authors_dir))
    with pytest.raises(DomainPromptError, match="is not a folder"):
        build_model(pacs_spg(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="not both"):
        build_model(pacs_spg(authors_dir, "MODEL.SPG.DOMAIN_PROMPTS", "['x.pt']"))
    with pytest.raises(DomainPromptError, match="not for 'synthetic_domains'"):
        build_model(load_config(QUICK, ["MODEL.SPG.AUTHORS_DOMAIN_PROMPTS", str(authors_dir)]))


def test_pipeline_domain_prompts_skip_stage_one(authors_dir, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(spg_pipeline, "stage1", lambda *a: pytest.fail("stage I ran"))
    monkeypatch.setattr(spg_pipeline, "stage2",
                        lambda config, *a: calls.append((config, *a)) or {"test": 90.0})
    text = spg_pipeline.main(["--dataset", "pacs", "--target", "sketch", "--authors",
                              "--domain-prompts", str(authors_dir), "--output-dir", str(tmp_path)])
    (config, dataset, domain, protocol, label_opts, out_dir, opts), = calls
    assert config.endswith(os.path.join("pacs", "spg_ViT-B-16.yaml"))
    assert list(opts) == ["REPRODUCE_AUTHORS", "True"]
    assert (dataset, domain, protocol) == ("pacs", "sketch", "multi_source")
    assert label_opts == ["MODEL.SPG.AUTHORS_DOMAIN_PROMPTS", str(authors_dir)]
    assert out_dir == os.path.join(str(tmp_path), "sketch", "stage2_authors_labels")
    assert "| sketch   |   90.0 |" in text
