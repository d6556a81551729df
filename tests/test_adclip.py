"""AD-CLIP: multi-scale statistics, projectors, prompts, losses, paired loader, a short run."""
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from domaingen.clip import get_tokenizer
from domaingen.engine import Trainer, load_config
from domaingen.methods.adclip import (
    MultiScaleStatistics,
    batch_normalized_entropy,
    build_paired_train_loader,
    mean_entropy,
    text_distribution_kl,
)

QUICK = os.path.join(os.path.dirname(__file__), "..", "configs", "quick",
                     "synthetic_domains_adclip.yaml")
CLASSES = ["dog", "elephant", "guitar"]
for _name, _classes in (("test_adclip_src", CLASSES), ("test_adclip_tgt", CLASSES),
                        ("test_adclip_other", ["dog", "horse", "guitar"]),
                        ("test_adclip_empty", CLASSES)):
    MetadataCatalog.get(_name).set(thing_classes=_classes, evaluator_type="classification")
if "test_adclip_empty" not in DatasetCatalog.list():
    DatasetCatalog.register("test_adclip_src", lambda: [{"file_name": "x.jpg", "label": 0}])
    DatasetCatalog.register("test_adclip_empty", lambda: [])


def build(clip_name="domaingen-tiny-ViT", *opts):
    cfg = load_config(QUICK, ["MODEL.CLIP.NAME", clip_name,
                              "DATASETS.TRAIN", "('test_adclip_src',)",
                              "DATASETS.TEST", "()", "MODEL.DEVICE", "cpu", *opts])
    return build_model(cfg)


def batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8),
             "label": i % len(CLASSES)} for i in range(n)]


def paired(n=2):
    return {"source": batch(n, seed=0), "target": [{**x, "label": -1} for x in batch(n, seed=1)]}


@pytest.mark.parametrize("clip_name,dims", [("domaingen-tiny-ViT", [64, 64]),
                                            ("domaingen-tiny-RN", [32, 64, 128, 256])])
@torch.no_grad()
def test_projector_shapes_per_backbone(clip_name, dims):
    model = build(clip_name).eval()
    learner = model.prompt_learner
    assert model.multi_scale.dims == dims
    assert [lin.in_features for lin in learner.content.layers] == dims
    assert [seq[0].in_features for seq in learner.style.layers] == dims
    images = model.normalize(torch.stack([x["image"] for x in batch(3)]))
    _, mus, sigmas = model.multi_scale(images)
    assert [m.shape for m in mus] == [(3, c) for c in dims] == [s.shape for s in sigmas]
    domain, image_tokens = learner.domain_and_image_tokens(mus, sigmas)
    n_layers, width = len(dims), 64
    assert domain.shape == (3, n_layers, width) and image_tokens.shape == (3, 4, width)
    assert learner.style_mapping(mus, sigmas).shape == (3, n_layers, width)
    assert torch.equal(image_tokens[:, 0], image_tokens[:, 3])  # the authors' repeated token
    assert (learner.prompts(domain, domain, image_tokens).shape[:3]
            == (3, 3, 1 + 2 * n_layers + 4 + 3))  # + name . [EOS]
    own = build(clip_name, "MODEL.ADCLIP.SHARED_IMAGE_MIXER", "False").prompt_learner.content(mus)
    assert own.shape == (3, 4, width) and not torch.allclose(own[:, 0], own[:, 3])


@pytest.mark.parametrize("clip_name", ["domaingen-tiny-ViT", "domaingen-tiny-RN"])
@torch.no_grad()
def test_layer_statistics_match_a_direct_computation(clip_name):
    visual = build(clip_name).visual
    images = torch.randn(2, 3, 224, 224)
    embedding, mus, sigmas = MultiScaleStatistics(visual)(images)
    if clip_name.endswith("ViT"):
        x, outputs = visual._embeds(images), []
        for block in visual.transformer.resblocks:
            x = block(x)
            outputs.append(x)
    else:
        x, outputs = visual.stem(images), []
        for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = stage(x)
            outputs.append(x.flatten(2).transpose(1, 2))
    eps = 2.3e-8 if clip_name.endswith("ViT") else 1e-8  # the authors' per-family epsilon
    for out, mu, sigma in zip(outputs, mus, sigmas, strict=True):
        assert torch.allclose(mu, out.mean(dim=1), atol=1e-5)
        expected = torch.sqrt(out.var(dim=1, unbiased=False) + eps / out.shape[1])
        assert torch.allclose(sigma, expected, atol=1e-5)
    assert torch.allclose(embedding, visual(images), atol=1e-5)
    assert all(len(layer._forward_hooks) == 0 for layer in MultiScaleStatistics(visual).layers)


@torch.no_grad()
def test_prompt_assembly_order_and_length():
    model = build()
    learner, width = model.prompt_learner, 64
    source = torch.full((2, 2, width), 1.0)
    target = torch.full((2, 2, width), 2.0)
    image = torch.arange(2.0)[:, None, None].expand(2, 4, width) + 3.0
    tokens = learner.prompts(source, target, image)  # [B, K, T, W]
    ids = get_tokenizer("domaingen-tiny-ViT")([f"{c}." for c in CLASSES])
    fixed = model.text_encoder.token_embedding(ids)
    for k, name in enumerate(CLASSES):
        n_name = len(get_tokenizer("domaingen-tiny-ViT").encode(name))
        eot = 1 + 2 + 2 + 4 + n_name + 1  # SOS, 2 source, 2 target, 4 image, name, "."
        assert learner.tokens.eot_positions[k] == eot
        for b in range(2):
            assert torch.equal(tokens[b, k, 0], fixed[k, 0])  # [SOS]
            assert torch.all(tokens[b, k, 1:3] == 1.0) and torch.all(tokens[b, k, 3:5] == 2.0)
            assert torch.all(tokens[b, k, 5:9] == 3.0 + b)
            assert torch.allclose(tokens[b, k, 9:eot + 1], fixed[k, 1:n_name + 3])  # name . EOS


def test_entropies_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # p = (.5, .5), (.75, .25)
    h = (math.log(2) - (0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / 2
    assert mean_entropy(logits).item() == pytest.approx(h, abs=1e-6)
    n0, n1 = math.sqrt(0.5 ** 2 + 0.75 ** 2), math.sqrt(0.5 ** 2 + 0.25 ** 2)
    q = [[0.5 / n0, 0.5 / n1], [0.75 / n0, 0.25 / n1]]  # L2-normalised over the batch
    expected = -sum(v * math.log(v + 1e-8) for row in q for v in row) / 2
    assert batch_normalized_entropy(logits).item() == pytest.approx(expected, abs=1e-6)


def test_text_kl_by_hand():
    source = torch.tensor([[[0.0], [1.0]], [[2.0], [0.0]]])  # [B=2, K=2, D=1]
    target = torch.tensor([[[1.0], [1.0]], [[0.0], [math.log(3.0)]]])
    expected = 0.0
    for s, t in zip(source.squeeze(-1).tolist(), target.squeeze(-1).tolist()):
        ps = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
        pt = [math.exp(v) / sum(math.exp(u) for u in t) for v in t]
        expected += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    assert text_distribution_kl(source, target).item() == pytest.approx(expected / 2, abs=1e-6)


def test_training_losses_are_the_weighted_parts():
    weights = ["MODEL.ADCLIP.CE_WEIGHT", "2.0", "MODEL.ADCLIP.STYLE_MAPPING_WEIGHT", "0.5",
               "MODEL.ADCLIP.ENTROPY_WEIGHT", "0.25", "MODEL.ADCLIP.KL_WEIGHT", "3.0"]
    model = build("domaingen-tiny-ViT", *weights).train()
    data = paired()
    losses = model(data)
    with torch.no_grad():
        feats, mus, sigmas = model._encode_images(data["source"] + data["target"])
        domain, image = model.prompt_learner.domain_and_image_tokens(mus, sigmas)
        pairs = (domain[:2].repeat(2, 1, 1), domain[2:].repeat(2, 1, 1))
        text = model.encode_context(model.prompt_learner.tokens,
                                    model.prompt_learner.context(*pairs, image))
        logits = model.logit_scale * torch.einsum("bd,bkd->bk", feats, text)
        mapped = model.prompt_learner.style_mapping([m[:2] for m in mus], [s[:2] for s in sigmas])
        expected = {
            "loss_ce": 2.0 * F.cross_entropy(logits[:2], torch.tensor([0, 1])),
            "loss_style_mapping": 0.5 * ((mapped - domain[:2]) ** 2).mean(),
            "loss_entropy": 0.25 * mean_entropy(logits[2:]),
            "loss_kl": 3.0 * text_distribution_kl(text[:2], text[2:]),
        }
    assert sorted(losses) == sorted(expected)
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), name


def test_gradients_reach_only_the_prompt_learner():
    model = build().train()
    sum(model(paired()).values()).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("prompt_learner.") for n in trainable)
    # The shared mixer's bias shifts every element of the image tokens by one amount, which the
    # text encoder's LayerNorms cancel: its gradient is zero up to rounding (as in the authors'
    # model). Every other parameter is used.
    shift = "prompt_learner.content.mixer.bias"
    assert model.get_parameter(shift).grad.abs().max() < 1e-4
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in trainable - {shift})
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)
    assert set(model.state_dict()) == trainable  # frozen CLIP and fixed tokens are not saved


@torch.no_grad()
def test_eval_uses_one_image_in_both_domain_slots_and_truncation_is_exact():
    model = build().eval()
    images = batch(3)
    logits = torch.stack([o["logits"] for o in model(images)])
    feats, mus, sigmas = model._encode_images(images)
    domain, image = model.prompt_learner.domain_and_image_tokens(mus, sigmas)
    prompts = model.prompt_learner.prompts(domain, domain, image)
    eot = model.prompt_learner.tokens.eot_positions
    truncated = model.encode_tokens(prompts, eot)
    model.truncate_text = False
    naive = model.encode_tokens(prompts, eot)
    assert torch.allclose(truncated, naive, atol=1e-5)
    expected = model.logit_scale * torch.einsum("bd,bkd->bk", feats, naive)
    assert torch.allclose(logits, expected, atol=1e-4)
    naive_model = build("domaingen-tiny-ViT", "MODEL.ADCLIP.TRUNCATE_TEXT", "False").eval()
    naive_model.prompt_learner.load_state_dict(model.prompt_learner.state_dict())
    naive_logits = torch.stack([o["logits"] for o in naive_model(images)])
    assert torch.allclose(naive_logits, logits, atol=1e-4)


def test_mismatched_class_lists_are_an_error():
    cfg = load_config(QUICK, ["DATASETS.TRAIN", "('test_adclip_src',)",
                              "DATASETS.TRAIN_UNLABELED", "('test_adclip_other',)"])
    with pytest.raises(ValueError, match=r"TRAIN_UNLABELED dataset 'test_adclip_other'.*"
                                         r"'test_adclip_src'.*only in 'test_adclip_other': "
                                         r"\['horse'\]"):
        build_paired_train_loader(cfg)


def test_empty_target_set_is_an_error():
    cfg = load_config(QUICK, ["DATASETS.TRAIN", "('test_adclip_src',)",
                              "DATASETS.TRAIN_UNLABELED", "('test_adclip_empty',)"])
    with pytest.raises(ValueError,
                       match="TRAIN_UNLABELED dataset 'test_adclip_empty' has no images"):
        build_paired_train_loader(cfg)


def test_paired_loader_yields_labelled_source_and_unlabelled_target(synthetic_domains):
    cfg = load_config(QUICK, ["SOLVER.IMS_PER_BATCH", "4"])
    steps = iter(build_paired_train_loader(cfg))
    seen = [next(steps) for _ in range(12)]  # 12 x 4 > 30 source images: restarts
    assert all(len(s["source"]) == 4 == len(s["target"]) for s in seen)
    assert {x["domain"] for s in seen for x in s["source"]} == {"photo"}
    assert {x["domain"] for s in seen for x in s["target"]} == {"sketch"}
    assert {x["label"] for s in seen for x in s["target"]} == {-1}
    assert len({x["file_name"] for s in seen for x in s["source"]}) == 30


def test_short_adaptation_run_logs_all_four_losses(synthetic_domains, tmp_path):
    cfg = load_config(QUICK, ["SOLVER.MAX_ITER", "3", "OUTPUT_DIR", str(tmp_path),
                              "MODEL.DEVICE", "cpu"])
    assert cfg.SOLVER.AMP.ENABLED is False  # AMP is CUDA-only
    trainer = Trainer(cfg)
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.resume_or_load(resume=False)
    trainer.train()
    names = ("loss_ce", "loss_style_mapping", "loss_entropy", "loss_kl")
    metrics = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    logged = next(m for m in metrics if "total_loss" in m)
    assert all(math.isfinite(logged[n]) for n in names)
    history = trainer.storage.history
    assert all(len(history(n).values()) == 3 for n in names)
    assert history("total_loss").latest() == pytest.approx(sum(history(n).latest() for n in names))
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)["model"]
    assert set(saved) == set(before) and any(not torch.equal(saved[k], before[k]) for k in saved)
    top1 = metrics[-1]["synthetic_domains_sketch_test/accuracy/top1"]  # target-domain evaluation
    assert 0.0 <= top1 <= 100.0


@pytest.mark.slow
def test_short_adaptation_run_on_standin_clip_learns_the_source(synthetic_domains, standin_clip,
                                                                tmp_path):
    """Photo -> painting on the contrastive stand-in CLIP (the conftest's 300-step RN): 40 steps
    lower the source CE (measured 3.57 -> 1.38, mean of the first and last 5 steps) and lift the
    source's validation top-1 (30 -> 50 %; photo -> sketch and -> cartoon: 30 -> 50 and 30 -> 40).
    The target's top-1 is not asserted: on this short stand-in it did not rise (painting
    23 -> 20 %, sketch 60 -> 27, cartoon 40 -> 30, on 30 test images); whether adaptation helps
    is the evidence study's question (docs/miniature_world.md)."""
    target, source_val = "synthetic_domains_painting_test", "synthetic_domains_photo_val"
    cfg = load_config(QUICK, [
        "MODEL.CLIP.NAME", "domaingen-semantic-RN", "MODEL.CLIP.WEIGHTS", standin_clip,
        "INPUT.CLS_SIZE", "128", "DATASETS.TRAIN_UNLABELED", f"('{target}',)",
        "DATASETS.TEST", f"('{target}', '{source_val}')", "SOLVER.CHECKPOINT_PERIOD", "1000",
        "OUTPUT_DIR", str(tmp_path)])
    trainer = Trainer(cfg)  # the projectors' init draws from the per-test seed (conftest)

    def source_top1():
        return Trainer.test(cfg, trainer.model)[source_val]["accuracy"]["top1"]

    before = source_top1()
    trainer.resume_or_load(resume=False)
    trainer.train()
    after = source_top1()
    print(f"top-1 source val: {before} -> {after}")
    losses = [v for v, _ in trainer.storage.history("loss_ce").values()]
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5])
    assert after >= before + 10


def _ddp_worker(out_dir):
    from detectron2.utils import comm

    cfg = load_config(QUICK, ["SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4",
                              "OUTPUT_DIR", out_dir])
    first = next(iter(Trainer.build_train_loader(cfg)))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    state = trainer.model.module.state_dict()
    torch.save({"state": state, "source": [x["file_name"] for x in first["source"]],
                "target": [x["file_name"] for x in first["target"]]},
               os.path.join(out_dir, f"rank{comm.get_rank()}.pt"))


@pytest.mark.distributed
def test_two_process_adaptation_shards_batches_and_syncs(synthetic_domains, tmp_path,
                                                         launch_on_cpu):
    launch_on_cpu(_ddp_worker, (str(tmp_path),))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert len(ranks[0]["source"]) == 2 == len(ranks[0]["target"])  # 4 over 2 ranks
    assert not set(ranks[0]["source"]) & set(ranks[1]["source"])
    assert not set(ranks[0]["target"]) & set(ranks[1]["target"])
    assert all(torch.equal(v, ranks[1]["state"][k]) for k, v in ranks[0]["state"].items())
