"""SPG: the prompt GAN's parts, its run step, resume, bad input, inference and the pipeline."""
import os
import re

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
    lsgan_loss,
    save_domain_prompt,
)
from domaingen.methods.spg.pipeline import PipelineInputsError
from domaingen.methods.spg.pipeline import main as spg_pipeline

REPO = os.path.join(os.path.dirname(__file__), "..")
QUICK = os.path.join(REPO, "configs", "quick", "synthetic_domains_spg.yaml")
SOURCES = ("photo", "cartoon", "painting", "neon")  # sketch is held out
CLASSES = ["circle", "ring", "square", "star", "triangle"]


@pytest.fixture
def labels(tmp_path):
    """Stage I labels of the tiny ViT (4 x 64 contexts) for the three source domains."""
    paths = []
    for i, domain in enumerate(SOURCES):
        paths.append(str(tmp_path / f"{domain}.pt"))
        ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(i)) * 0.1
        save_domain_prompt(paths[-1], ctx, domain, CLASSES, "domaingen-tiny-ViT")
    return paths


def spg_cfg(labels, out_dir, *opts):
    return load_config(QUICK, ["MODEL.SPG.DOMAIN_PROMPTS", repr(labels), "OUTPUT_DIR", str(out_dir),
                               *opts])


# ------------------------------------------------------------------------------ networks

@pytest.mark.parametrize("feat_dim", [1024, 512], ids=["RN50", "ViT-B-16"])
def test_network_shapes_and_parameter_counts(feat_dim):
    g = PromptGenerator(feat_dim, n_ctx=4, width=512)
    d = PromptDiscriminator(4 * 512, feat_dim)
    z, f = torch.randn(3, 100), F.normalize(torch.randn(3, feat_dim), dim=-1)
    prompts = g(z, f)
    assert prompts.shape == (3, 4, 512) and prompts.abs().max() <= 1.0  # tanh
    assert d(prompts, f).shape == (3,)
    linear = lambda i, o: i * o + o  # noqa: E731
    bn = lambda n: 2 * n  # noqa: E731
    expected_g = (linear(feat_dim + 100, 128) + linear(128, 256) + bn(256) + linear(256, 512)
                  + bn(512) + linear(512, 1024) + bn(1024) + linear(1024, 2048))
    expected_d = linear(2048 + feat_dim, 512) + 2 * linear(512, 512) + linear(512, 1)
    assert sum(p.numel() for p in g.parameters()) == expected_g
    assert sum(p.numel() for p in d.parameters()) == expected_d
    bns = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 3 and all(m.eps == 0.8 for m in bns)
    assert [m.p for m in d.modules() if isinstance(m, torch.nn.Dropout)] == [0.4, 0.4]


def test_lsgan_loss_on_hand_set_scores():
    scores = torch.tensor([0.5, 2.0])
    assert lsgan_loss(scores, 1.0).item() == pytest.approx((0.5 ** 2 + 1.0 ** 2) / 2)
    assert lsgan_loss(scores, 0.0).item() == pytest.approx((0.25 + 4.0) / 2)


def test_clip_limits_follow_the_authors_name_rule():
    """Their rule, applied by hand to their layer indices. G: 0 Linear, 2 Linear, 3 BN, 5 Linear,
    6 BN, 8 Linear, 9 BN, 11 Linear: a name holding "weight" -> weight limit; else "9.bias" or
    "11.bias" -> last-bias limit; else bias limit. D: 0, 2, 5, 8 Linear: "0.weight", "0.bias",
    "8.weight", "8.bias" -> first/last limit; else "weight" -> weight; else bias."""
    W, B, LAST = 0.5, 1e-3, 2.0
    g = PromptGenerator(8, n_ctx=2, width=4, latent_dim=3)
    assert g.gradient_limits(weight=W, bias=B, last_bias=LAST) == {
        "net.0.weight": W, "net.0.bias": B, "net.2.weight": W, "net.2.bias": B,
        "net.3.weight": W, "net.3.bias": B, "net.5.weight": W, "net.5.bias": B,
        "net.6.weight": W, "net.6.bias": B, "net.8.weight": W, "net.8.bias": B,
        "net.9.weight": W, "net.9.bias": LAST, "net.11.weight": W, "net.11.bias": LAST}
    assert isinstance(g.net[9], torch.nn.BatchNorm1d) and isinstance(g.net[11], torch.nn.Linear)
    d = PromptDiscriminator(8, 8)
    assert d.gradient_limits(weight=0.05, bias=0.5, first_last=5.0) == {
        "net.0.weight": 5.0, "net.0.bias": 5.0, "net.2.weight": 0.05, "net.2.bias": 0.5,
        "net.5.weight": 0.05, "net.5.bias": 0.5, "net.8.weight": 5.0, "net.8.bias": 5.0}


def test_clipping_applies_each_parameters_own_limit():
    g = PromptGenerator(8, n_ctx=2, width=4, latent_dim=3)
    limits = g.gradient_limits(weight=0.5, bias=1e-3, last_bias=2.0)
    for p in g.parameters():
        p.grad = torch.full_like(p, 1.0)  # norm sqrt(numel) >= 1
    before = {n: p.grad.norm().item() for n, p in g.named_parameters()}
    clip_gradients_per_parameter(g.named_parameters(), limits)
    for name, p in g.named_parameters():
        assert p.grad.norm().item() == pytest.approx(min(before[name], limits[name]), rel=1e-4)


# ------------------------------------------------------------------------------ run step

@pytest.mark.filterwarnings(r"ignore:Seems like `optimizer.step\(\)` has been overridden")
def test_one_step_updates_each_network_only_in_its_phase(synthetic_domains, labels, tmp_path):
    trainer = Trainer(spg_cfg(labels, tmp_path))
    run = trainer._trainer
    model = trainer.model
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    g0, d0 = snap(model.generator), snap(model.discriminator)
    seen = {}
    step_d, step_g = run.optimizer_d.step, run.optimizer.step

    def d_step(*a, **k):
        seen["g_at_d_step"] = snap(model.generator)
        seen["d_grads"] = [p.grad.clone() for p in model.discriminator.parameters()]
        return step_d(*a, **k)

    def g_step(*a, **k):
        seen["d_at_g_step"] = snap(model.discriminator)
        return step_g(*a, **k)

    run.optimizer_d.step, run.optimizer.step = d_step, g_step
    run.iter = 0
    with torch.enable_grad():
        from detectron2.utils.events import EventStorage
        with EventStorage(0):
            run.run_step()
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b))  # noqa: E731
    assert same(seen["g_at_d_step"], g0)  # the D phase leaves G alone
    assert not same(seen["d_at_g_step"], d0)  # D stepped
    assert same(snap(model.discriminator), seen["d_at_g_step"])  # the G phase leaves D alone
    assert not same(snap(model.generator), g0)  # G stepped
    # D's gradients are the D phase's: the G phase computed none for D.
    assert all(torch.equal(p.grad, g) for p, g in zip(model.discriminator.parameters(),
                                                       seen["d_grads"]))


def test_fake_batch_comes_from_an_independent_stream(synthetic_domains, labels, tmp_path):
    trainer = Trainer(spg_cfg(labels, tmp_path))
    model, batches = trainer.model, []
    features = model.image_features
    model.image_features = lambda batch: (batches.append([x["file_name"] for x in batch]),
                                          features(batch))[1]
    from detectron2.utils.events import EventStorage
    with EventStorage(0):
        for it in range(2):
            trainer._trainer.iter = it
            trainer._trainer.run_step()
    real, fake = batches[0::2], batches[1::2]
    assert len(real[0]) == len(fake[0]) == 16
    assert real[0] != fake[0] and real[1] != fake[1]
    assert set(real[0]) != set(fake[0])


def test_resume_gives_the_weights_of_an_uninterrupted_run(synthetic_domains, labels, tmp_path):
    opts = ["SOLVER.MAX_ITER", "6", "SOLVER.CHECKPOINT_PERIOD", "3", "TEST.EVAL_PERIOD", "0",
            "TEST.SELECTION_METRIC", ""]
    full = Trainer(spg_cfg(labels, tmp_path / "full", *opts))
    full.resume_or_load(resume=False)
    full.train()
    # A run stopped after its iteration-3 checkpoint: only that checkpoint is on disk.
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "model_0000002.pth").write_bytes(
        (tmp_path / "full" / "model_0000002.pth").read_bytes())
    (stopped / "last_checkpoint").write_text("model_0000002.pth")
    resumed = Trainer(spg_cfg(labels, stopped, *opts))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 3
    resumed.train()
    a = torch.load(tmp_path / "full" / "model_final.pth", weights_only=True)
    b = torch.load(stopped / "model_final.pth", weights_only=True)
    assert (list(a["model"]) == list(b["model"])
            and any(k.startswith("generator.") for k in a["model"]))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in ("optimizer", "optimizer_d"):
        sa, sb = a["trainer"]["_trainer"][key]["state"], b["trainer"]["_trainer"][key]["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_mixed_precision_step_runs_and_updates_both_networks(synthetic_domains, labels, tmp_path):
    trainer = Trainer(spg_cfg(labels, tmp_path))
    run = trainer._trainer
    run.amp_dtype = torch.bfloat16  # CPU autocast; on CUDA SOLVER.AMP.ENABLED sets it
    g0 = [p.detach().clone() for p in trainer.model.generator.parameters()]
    d0 = [p.detach().clone() for p in trainer.model.discriminator.parameters()]
    from detectron2.utils.events import EventStorage
    rates = [o.param_groups[0]["lr"] for o in (run.optimizer, run.optimizer_d)]  # this step's
    with EventStorage(0) as storage:
        run.iter = 0
        run.run_step()
        losses = storage.latest()
    assert all(torch.isfinite(torch.tensor(losses[k][0])) for k in ("loss_d", "loss_g"))
    # AdamW's first step moves each element by lr * g / (|g| + eps) (at most lr) after the
    # decay p * (1 - lr * wd): both networks took exactly one step of their own optimizer.
    for before, net, optimizer, lr in ((g0, trainer.model.generator, run.optimizer, rates[0]),
                                       (d0, trainer.model.discriminator, run.optimizer_d,
                                        rates[1])):
        decay = optimizer.param_groups[0]["weight_decay"]
        steps = [(b * (1 - lr * decay) - p.detach()).abs().max()
                 for b, p in zip(before, net.parameters())]
        assert max(steps) <= lr * 1.01  # up to float rounding of p
        assert max(steps) >= 0.5 * lr


# ------------------------------------------------------------------------------ bad input

def test_stage_two_without_labels_is_refused(synthetic_domains):
    with pytest.raises(ValueError, match="needs the stage I domain prompt labels"):
        Trainer(load_config(QUICK))


def test_labels_that_do_not_fit_name_the_file(synthetic_domains, labels, tmp_path):
    other_model = str(tmp_path / "rn.pt")
    save_domain_prompt(other_model, torch.zeros(4, 64), "photo", CLASSES, "domaingen-tiny-RN")
    with pytest.raises(DomainPromptError,
                       match=f"{other_model} was learned with CLIP 'domaingen-tiny-RN'"):
        build_model(spg_cfg([other_model] + labels[1:], tmp_path))
    other_classes = str(tmp_path / "classes.pt")
    save_domain_prompt(other_classes, torch.zeros(4, 64), "photo", ["dog", "cat"],
                       "domaingen-tiny-ViT")
    with pytest.raises(DomainPromptError, match=f"{other_classes} was learned for classes"):
        build_model(spg_cfg([other_classes] + labels[1:], tmp_path))
    with pytest.raises(DomainPromptError, match=r"no domain prompt label for training "
                                                r"domain\(s\) \['painting', 'neon'\]"):
        build_model(spg_cfg(labels[:2], tmp_path))
    missing = str(tmp_path / "nope.pt")
    with pytest.raises(DomainPromptError, match=f"{missing} does not exist: run SPG stage I"):
        build_model(spg_cfg([missing] + labels[1:], tmp_path))


# ------------------------------------------------------------------------------ inference

def test_inference_matches_a_per_image_full_length_computation(synthetic_domains, labels, tmp_path):
    cfg = spg_cfg(labels, tmp_path)
    model = build_model(cfg).eval()
    batch = list(Trainer.build_test_loader(cfg, "synthetic_domains_sketch_test"))[0][:4]
    with torch.no_grad():
        logits = torch.stack([o["logits"] for o in model(batch)])
        split = [o["logits"] for o in model(batch[:1]) + model(batch[1:])]
        assert torch.allclose(logits, torch.stack(split), atol=1e-5)  # per-image noise
        features = model.image_features(batch)
        ctx = model.generator(model.eval_noise(batch), features)
        for i in range(len(batch)):
            tokens = model.prompts.assemble(ctx[i])  # [K, L, W]
            text = model.text_encoder(token_embeddings=tokens, truncate=False,
                                      eot_positions=model.prompts.eot_positions)
            expected = model.logit_scale * features[i] @ F.normalize(text, dim=-1).t()
            assert torch.allclose(logits[i], expected, atol=1e-4)


# ------------------------------------------------------------------------------ pipeline

def test_pipeline_end_to_end_and_rerun_skips(synthetic_domains, tmp_path):
    args = ["--dataset", "synthetic_domains", "--target", "sketch", "--output-dir", str(tmp_path),
            "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "2"]
    text = spg_pipeline(args)
    for domain in SOURCES:
        label = torch.load(tmp_path / "sketch" / "stage1" / domain / "domain_prompt.pt",
                           weights_only=True)
        assert label["domain"] == domain and label["ctx"].shape == (4, 64)
    assert (tmp_path / "sketch" / "stage2" / "model_best.pth").is_file()
    assert "| sketch " in text and "| average " in text
    assert (tmp_path / "top1_per_target.png").stat().st_size > 0
    stamp = (tmp_path / "sketch" / "stage2" / "results.json").stat().st_mtime_ns
    assert spg_pipeline(args) == text
    assert (tmp_path / "sketch" / "stage2" / "results.json").stat().st_mtime_ns == stamp


def test_a_rerun_with_other_inputs_is_refused_not_answered_from_the_old_run(synthetic_domains,
                                                                            tmp_path):
    args = ["--dataset", "synthetic_domains", "--target", "sketch", "--output-dir", str(tmp_path),
            "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "2"]
    spg_pipeline(args)
    with pytest.raises(PipelineInputsError, match=re.escape(
            f"{tmp_path / 'sketch' / 'stage1' / 'photo'} holds a run computed from other "
            f"inputs (the config changed since)")):
        spg_pipeline([*args, "SOLVER.BASE_LR", "0.5"])
    label = tmp_path / "sketch" / "stage1" / "photo" / "domain_prompt.pt"
    data = torch.load(label, weights_only=True)
    torch.save({**data, "ctx": data["ctx"] + 1}, label)  # another stage I label
    with pytest.raises(PipelineInputsError, match=re.escape(f"({label} changed since)")):
        spg_pipeline(args)
