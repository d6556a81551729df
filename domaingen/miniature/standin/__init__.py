"""Semantic stand-ins for pretrained CLIP weights, where none can be downloaded.

A randomly initialised CLIP ties no text to any image. A stand-in is a small CLIP trained with
CLIP's contrastive loss on the pretraining world (``domaingen.miniature.synthetic.world``):
captioned images of every object class in every domain, disjoint from the evaluation sets. It then
has CLIP's key property in miniature: class names point at the images of their class, and the text
direction between two domains ("... during the day" -> "... at night") points where the images
move between them. The weights are an ordinary open_clip state dict: ``MODEL.CLIP.WEIGHTS``
loads the file, or ``standin`` builds it on first use and caches it in ``$DOMAINGEN_CACHE``
(deterministic from the seed), next to a JSON report of its zero-shot accuracy and alignment.

Command line: ``python -m domaingen.miniature.standin --model domaingen-semantic-RN``.
"""
import fcntl
import hashlib
import io
import json
import logging
import os
import time
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from domaingen.clip.models import CLIP_MEAN, CLIP_STD, _create, register_named_weights
from domaingen.clip.text import get_tokenizer
from domaingen.clip.weights import default_cache_dir
from domaingen.utils.errors import InputError
from domaingen.utils.files import atomic_write

logger = logging.getLogger(__name__)


class StandinCacheError(InputError, OSError):
    """The stand-in cache folder cannot be written."""


# The MODEL.CLIP.WEIGHTS value that selects the cached semantic stand-in.
STANDIN = "standin"

VERSION = 3  # bump when the world or the recipe changes: the cache file name carries it
# Training recipe: steps, batch, learning rate, world size (street scenes, shapes); RECIPES holds
# the models that ``standin`` builds and what they change (any other model trains on the default).
DEFAULT_RECIPE = dict(steps=400, batch_size=128, lr=2e-3, num_street=6000, num_shapes=3000)
# One stand-in serves the detectors (street scenes) and the classifiers (shapes, whose class only
# their outline tells: they need the longer schedule). A ViT of this size did not learn the
# outlines in 1200 steps (docs/miniature_world.md, the stand-ins).
RECIPES = {"domaingen-semantic-RN": dict(steps=1400, lr=3e-3, num_street=6000, num_shapes=8000)}
# Threads of a stand-in's training, whatever the machine has: the same thread count makes the
# same float reductions, so a stand-in built by `make quickstart` or by the evidence run, on 2 or
# 16 cores, has the same bytes (on CPUs of the same instruction set).
STANDIN_THREADS = 1
RENDER_SIZE = 128


def standin_path(model_name: str, cache_dir: str = "", seed: int = 0) -> str:
    """Where the stand-in of ``model_name`` is cached."""
    return os.path.join(cache_dir or default_cache_dir(),
                        f"standin-{model_name}-v{VERSION}-seed{seed}.pt")


def _to_input(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 BGR [N, H, W, 3] -> CLIP-normalised RGB float [N, 3, size, size]."""
    x = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _image_size(model) -> int:
    size = model.visual.image_size
    return size[0] if isinstance(size, (tuple, list)) else size


def train_standin_clip(model_name: str, output: str, *, seed: int = 0, steps: int = None,
                       batch_size: int = None, lr: float = None, num_street: int = None,
                       num_shapes: int = None) -> dict:
    """Train ``model_name`` from a seeded random init on the pretraining world; write the report
    (``evaluate_standin``, with the weights' sha256) to ``output``.json, then the state dict to
    ``output``, each atomically: a complete entry has both, matching (:func:`cached_entry`).
    Unset arguments come from the model's recipe; it trains with ``STANDIN_THREADS`` threads."""
    recipe = {**DEFAULT_RECIPE, **RECIPES.get(model_name, {}),
              **{k: v for k, v in dict(steps=steps, batch_size=batch_size, lr=lr,
                                       num_street=num_street, num_shapes=num_shapes).items()
                 if v is not None}}
    threads = torch.get_num_threads()
    torch.set_num_threads(STANDIN_THREADS)
    try:
        return _train(model_name, output, seed, recipe)
    finally:
        torch.set_num_threads(threads)


def _train(model_name: str, output: str, seed: int, recipe: dict) -> dict:
    from domaingen.miniature.synthetic.world import render_world

    start = time.perf_counter()
    torch.manual_seed(seed)
    model = _create(model_name, False, seed).train()
    size = _image_size(model)
    images, captions, labels = render_world(recipe["num_street"], recipe["num_shapes"],
                                            RENDER_SIZE, seed=1000 + 10 * seed)
    tokens = get_tokenizer(model_name)(captions)
    # Captions of one (part, class, domain) are positives of each other, whatever the wording.
    groups = torch.from_numpy(labels[:, 0] * 10_000 + labels[:, 1] * 100 + labels[:, 2])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe["lr"],
                                                   total_steps=recipe["steps"], pct_start=0.1)
    report_every = max(recipe["steps"] // 10, 1)
    for step in range(recipe["steps"]):
        idx = torch.randperm(len(images), generator=generator)[:recipe["batch_size"]]
        batch = _to_input(images[idx.numpy()], size)
        flip = torch.rand(len(idx), generator=generator) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        image_features, text_features, scale = model(batch, tokens[idx])
        logits = scale * image_features @ text_features.t()
        same = (groups[idx][:, None] == groups[idx][None]).float()
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        done = step + 1
        if done % report_every == 0 or done == recipe["steps"]:
            eta = (time.perf_counter() - start) / done * (recipe["steps"] - done)
            logger.info(f"stand-in {model_name}: step {done}/{recipe['steps']}  loss "
                        f"{loss.item():.3f}  eta {eta:.0f}s")
    model.eval()
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    report = {"model": model_name, "seed": seed, "version": VERSION, "recipe": recipe,
              "final_loss": loss.item(), "train_seconds": time.perf_counter() - start,
              "sha256": hashlib.sha256(weights.getvalue()).hexdigest(),
              **evaluate_standin(model, model_name, seed=seed)}
    data = json.dumps(report, indent=2).encode() + b"\n"
    atomic_write(output + ".json", lambda f: f.write(data))
    atomic_write(output, lambda f: f.write(weights.getvalue()))
    logger.info(f"Stand-in CLIP {model_name} -> {output}: {report['train_seconds']:.0f}s")
    return report


# Text of each domain for the alignment report, as the methods' prompts word it.
DOMAIN_TEXT = {
    0: {"daytime_clear": "an image taken during the day", "night_sunny": "an image taken at night",
        "dusk_rainy": "an image taken on a rainy evening",
        "night_rainy": "an image taken on a rainy night",
        "daytime_foggy": "an image taken on a foggy day"},
    1: {"photo": "a photo of a {}", "sketch": "a sketch of a {}", "cartoon": "a cartoon of a {}",
        "painting": "a painting of a {}", "neon": "a neon sign of a {}"},
}


@torch.no_grad()
def _encode_text(model, model_name: str, texts: List[str]) -> torch.Tensor:
    return F.normalize(model.encode_text(get_tokenizer(model_name)(texts)), dim=-1)


@torch.no_grad()
def evaluate_standin(model, model_name: str, seed: int = 0, num_street: int = 1500,
                     num_shapes: int = 1200) -> Dict[str, dict]:
    """On a fresh draw of the world: zero-shot top-1 per domain ("a photo of a {class}"), and for
    every source -> target domain pair the cosine between the text direction
    norm(T(target) - T(source)) and the mean shift of normalised image embeddings."""
    from domaingen.data.datasets import DIVERSE_WEATHER_CLASSES
    from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS_CLASSES
    from domaingen.miniature.synthetic.world import render_world

    images, _, labels = render_world(num_street, num_shapes, RENDER_SIZE, seed=5000 + seed)
    size = _image_size(model)
    embeddings = torch.cat([F.normalize(model.encode_image(_to_input(images[i:i + 256], size)),
                                        dim=-1)
                            for i in range(0, len(images), 256)])
    report = {"zero_shot_top1": {}, "alignment": {}}
    for part, classes in ((0, DIVERSE_WEATHER_CLASSES), (1, SYNTHETIC_DOMAINS_CLASSES)):
        in_part = labels[:, 0] == part
        text = _encode_text(model, model_name, [f"a photo of a {c}" for c in classes])
        domains = list(DOMAIN_TEXT[part])
        for d, domain in enumerate(domains):
            sel = torch.from_numpy(in_part & (labels[:, 2] == d))
            predicted = (embeddings[sel] @ text.t()).argmax(1)
            truth = torch.from_numpy(labels[sel.numpy(), 1])
            report["zero_shot_top1"][domain] = round(
                100.0 * float((predicted == truth).float().mean()), 1)
        means = {d: embeddings[torch.from_numpy(in_part & (labels[:, 2] == i))].mean(0)
                 for i, d in enumerate(domains)}
        for src in domains:
            for tgt in domains:
                if src == tgt:
                    continue
                if part == 0:
                    pair = _encode_text(model, model_name,
                                        [DOMAIN_TEXT[0][src], DOMAIN_TEXT[0][tgt]])
                else:  # averaged over the class names
                    pair = torch.stack([_encode_text(model, model_name, [DOMAIN_TEXT[1][x].format(c)
                                                                         for c in classes]).mean(0)
                                        for x in (src, tgt)])
                text_dir = F.normalize(pair[1] - pair[0], dim=0)
                shift = F.normalize(means[tgt] - means[src], dim=0)
                report["alignment"][f"{src}->{tgt}"] = round(float(text_dir @ shift), 3)
    return report


def ensure_standin(model_name: str, cache_dir: str = "", seed: int = 0) -> str:
    """The cached stand-in of ``model_name``, trained first if it is not there yet (under a
    lock file, so that concurrent processes train it once)."""
    if model_name not in RECIPES:
        raise ValueError(f"MODEL.CLIP.WEIGHTS={STANDIN!r}: there is a stand-in for "
                         f"{sorted(RECIPES)}, not for MODEL.CLIP.NAME={model_name!r}")
    path = standin_path(model_name, cache_dir, seed)
    if cached_entry(path):
        return path
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lock = open(path + ".lock", "w")
    except OSError as e:
        raise StandinCacheError(
            f"The stand-in cache {os.path.dirname(path)} is not writable ({e.strerror}): set "
            f"DOMAINGEN_CACHE (or MODEL.CLIP.CACHE_DIR) to a folder this user can write") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached_entry(path):
            if os.path.exists(path) or os.path.exists(path + ".json"):
                logger.info(f"The cached stand-in {path} is incomplete or does not match its "
                            f"report (an interrupted build): building it again")
            logger.info(f"Training the stand-in CLIP {model_name} (seed {seed}) into {path}; "
                        f"this happens once")
            train_standin_clip(model_name, path, seed=seed)
    return path


def cached_entry(path: str) -> bool:
    """Whether the stand-in at ``path`` is complete: its report and weights both there, the
    weights' sha256 the one the report recorded."""
    try:
        with open(path + ".json", encoding="utf-8") as f:
            expected = json.load(f).get("sha256")
        with open(path, "rb") as f:
            return expected == hashlib.sha256(f.read()).hexdigest()
    except (OSError, ValueError):
        return False


register_named_weights(STANDIN, ensure_standin)
