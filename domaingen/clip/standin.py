"""A stand-in for pretrained CLIP weights where none can be downloaded.

A randomly initialised CLIP ties no text to any image, so prompt learning on it cannot beat
chance by much. ``train_standin_clip`` gives a tiny CLIP a few hundred steps of CLIP's own
contrastive objective on a freshly generated synthetic-domains pool (its own seed, so disjoint
from the images the methods train and test on) with captions ``"a <domain> of a <class>."``, and
saves the result in open_clip's state-dict format: ``MODEL.CLIP.WEIGHTS`` loads it like any
other local weights file. Tests and the classification quickstart use it.

Command line: ``python -m domaingen.clip.standin --output weights/standin-tiny-ViT.pt``.
"""
import argparse
import logging
import os
import tempfile
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from domaingen.utils.files import atomic_write

from .models import CLIP_MEAN, CLIP_STD, build_clip_model
from .text import get_tokenizer

logger = logging.getLogger(__name__)

POOL_SEED = 1000  # the evaluation data uses seeds < 1000


def _load_pool(num_per_class: int, size: int):
    """Images [N, 3, size, size] (float, CLIP-normalised RGB) and their captions."""
    from domaingen.data.synthetic.domains import FOLDER, generate_domains

    with tempfile.TemporaryDirectory() as root:
        summary = generate_domains(root, seed=POOL_SEED, num_per_class=num_per_class)
        images, captions = [], []
        base = os.path.join(root, FOLDER)
        for domain in summary["domains"]:
            for cls in summary["classes"]:
                folder = os.path.join(base, domain, cls)
                for name in sorted(os.listdir(folder)):
                    bgr = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
                    rgb = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)[..., ::-1]
                    images.append(torch.from_numpy(np.ascontiguousarray(rgb)))
                    captions.append(f"a {domain} of a {cls}.")
    pixels = torch.stack(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std, captions


def train_standin_clip(model_name: str, output: str, *, steps: int = 200, batch_size: int = 64,
                       lr: float = 2e-3, num_per_class: int = 24, seed: int = 0) -> dict:
    """Contrastively train a random-init ``model_name`` on the synthetic pool; save to ``output``.

    Returns a summary: final loss, the pool's image-to-caption top-1 accuracy, seconds.
    """
    start = time.perf_counter()
    model = build_clip_model(model_name, seed=seed).train()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images, captions = _load_pool(num_per_class, size)
    tokens = get_tokenizer(model_name)(captions)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps,
                                                   pct_start=0.1)
    for _ in range(steps):
        idx = torch.randperm(len(images), generator=generator)[:batch_size]
        batch = images[idx]
        flip = torch.rand(len(idx), generator=generator) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        image_features, text_features, scale = model(batch, tokens[idx])
        logits = scale * image_features @ text_features.t()
        # Several images share a caption: every matching caption is a positive.
        same = (tokens[idx][:, None] == tokens[idx][None]).all(-1).float()
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        unique = sorted(set(captions))
        text = model.encode_text(get_tokenizer(model_name)(unique), normalize=True)
        image = model.encode_image(images, normalize=True)
        predicted = (image @ text.t()).argmax(1)
        truth = torch.tensor([unique.index(c) for c in captions])
        accuracy = 100.0 * (predicted == truth).float().mean().item()
    atomic_write(output, lambda f: torch.save(model.state_dict(), f))
    summary = {"loss": loss.item(), "pool_top1": accuracy, "seconds": time.perf_counter() - start,
               "output": output}
    logger.info(f"Stand-in CLIP {model_name}: {summary}")
    return summary


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m domaingen.clip.standin", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="domaingen-tiny-ViT")
    p.add_argument("--output", required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if OUTPUT exists")
    args = p.parse_args(argv)
    if os.path.exists(args.output) and not args.force:
        print(f"stand-in CLIP: {args.output} exists (--force retrains)")
        return
    s = train_standin_clip(args.model, args.output, steps=args.steps, seed=args.seed)
    print(f"stand-in CLIP {args.model}: {args.steps} steps in {s['seconds']:.0f}s, loss "
          f"{s['loss']:.3f}, caption top-1 on its pool {s['pool_top1']:.1f}% -> {args.output}")


if __name__ == "__main__":
    main()
