"""Classification cases: CoOp, CoCoOp, SPG and AD-CLIP training steps and inference, and the
per-image prompt text encoding alone, at 7 (PACS), 65 (Office-Home) and 345 (DomainNet) classes;
CoOp's and AD-CLIP's training loops on images read from disk (``training_loop``).

``[ours]`` cases run domaingen's text path (each image's prompt prefix encoded once for all
classes, up to the end-of-text token); ``[authors]`` cases the authors' path: 77-token prompts,
one image at a time for CoCoOp and AD-CLIP (``authors_paths.per_image_text``), SPG's test batch
of one image. Ratios compare seconds per image.
Class names: PACS's 7 and Office-Home's 65 real ones; for 345, single-token words spread over
CLIP's vocabulary, so prompts are as long as PACS's and the per-class cost compares (DomainNet's
names are read from its files). They live in metadata-only datasets ``benchmark_classes_<K>``:
no image is read.
"""
import contextlib
import itertools

import torch
from detectron2.data import MetadataCatalog
from detectron2.utils.events import EventStorage

from domaingen.clip import get_tokenizer
from domaingen.data.datasets.classification import PACS_CLASSES
from domaingen.engine import Trainer
from domaingen.methods.spg.run_step import SPGTrainer

from . import training_loop
from .authors_paths import per_image_text

OFFICE_HOME_CLASSES = (
    "Alarm_Clock Backpack Batteries Bed Bike Bottle Bucket Calculator Calendar Candles Chair "
    "Clipboards Computer Couch Curtains Desk_Lamp Drill Eraser Exit_Sign Fan File_Cabinet "
    "Flipflops Flowers Folder Fork Glasses Hammer Helmet Kettle Keyboard Knives Lamp_Shade Laptop "
    "Marker Monitor Mop Mouse Mug Notebook Oven Pan Paper_Clip Pen Pencil Postit_Notes Printer "
    "Push_Pin Radio Refrigerator Ruler Scissors Screwdriver Shelf Sink Sneakers Soda Speaker "
    "Spoon TV Table Telephone ToothBrush Toys Trash_Can Webcam").split()


def single_token_words(n: int) -> list:
    """``n`` alphabetic words of at least five letters that CLIP's BPE keeps as one token."""
    tokenizer = get_tokenizer("ViT-B-16")  # every CLIP model shares this vocabulary
    words = [w[:-4] for w in sorted(tokenizer.encoder)
             if w.endswith("</w>") and w[:-4].isalpha() and len(w) >= 9]
    words = [w for w in words[::len(words) // (2 * n)] if len(tokenizer.encode(w)) == 1]
    return words[:: len(words) // n][:n]


CLASS_NAMES = {7: list(PACS_CLASSES), 65: OFFICE_HOME_CLASSES}
# --model key -> MODEL.CLIP.NAME; configs: tiny quick twins, else the benchmark configs
MODELS = {"tiny": "domaingen-tiny-ViT", "ViT-B-16": "ViT-B-16", "RN50": "RN50"}
CONFIGS = {
    "coop": ("quick/synthetic_domains_coop.yaml", "classification/pacs/coop_ViT-B-16.yaml"),
    "cocoop": ("quick/synthetic_domains_cocoop.yaml", "classification/pacs/cocoop_ViT-B-16.yaml"),
    "spg": ("quick/synthetic_domains_spg.yaml", "classification/pacs/spg_ViT-B-16.yaml"),
    "adclip": ("quick/synthetic_domains_adclip.yaml",
               "classification/office_home/adclip_ViT-B-16_art_to_clipart.yaml"),
}


def classifier(ctx, method: str, classes: int):
    """(model, cfg) of ``method`` at ``classes`` classes with random CLIP weights, train mode."""
    name = f"benchmark_classes_{classes}"
    if classes not in CLASS_NAMES:
        CLASS_NAMES[classes] = single_token_words(classes)
    MetadataCatalog.get(name).set(thing_classes=CLASS_NAMES[classes])
    config = CONFIGS[method][0 if ctx.model_key == "tiny" else 1]
    return ctx.model(config, ["MODEL.CLIP.NAME", MODELS[ctx.model_key],
                              "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TRAIN_UNLABELED", "()"])


def batch_size(ctx, default_cpu: int, default_cuda: int = 32) -> int:
    return ctx.args.batch or (default_cuda if ctx.device == "cuda" else default_cpu)


def random_images(n: int, classes: int, seed: int, device) -> list:
    """Mapper-like dicts: random uint8 224 px images, labels, a domain and a file name."""
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8)
             .to(device), "label": i % classes, "domain": "photo", "file_name": f"{seed}_{i}.jpg"}
            for i in range(n)]


def _amp(ctx, cfg) -> bool:
    return ctx.device == "cuda" and cfg.SOLVER.AMP.ENABLED


def _text_path(model, authors: bool):
    """Set ``model`` to our text path or the authors'; the context the step runs in."""
    model.truncate_text = not authors
    return per_image_text(model) if authors else contextlib.nullcontext()


def train_step_case(method: str, classes: int, authors: bool):
    """One optimizer step of a prompt learner (AD-CLIP: on B source + B target images)."""
    def setup(ctx):
        model, cfg = classifier(ctx, method, classes)
        b = batch_size(ctx, 4 if ctx.model_key != "tiny" or method == "adclip" else 16, 16
                       if method == "adclip" else 32)
        data = random_images(b, classes, 0, ctx.device)
        if method == "adclip":
            data = {"source": data, "target": random_images(b, classes, 1, ctx.device)}
        optimizer = Trainer.build_optimizer(cfg, model)
        amp = _amp(ctx, cfg)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)

        def step():
            with _text_path(model, authors), torch.autocast("cuda", enabled=amp):
                loss = sum(model(data).values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        n = 2 * b if method == "adclip" else b
        label = f"{b}+{b}" if method == "adclip" else str(b)
        return step, f"{label} images, {classes} classes{', AMP' if amp else ''}", n

    return setup


def spg_train_step_case(ctx):
    """One D step and one G step of SPG (no text encoding: the GAN works on prompts)."""
    model, cfg = classifier(ctx, "spg", 7)
    ctx_shape = (cfg.MODEL.PROMPT.N_CTX, model.text_encoder.width)
    model.domain_names = ["photo"]
    model.domain_prompts = torch.randn(1, *ctx_shape, device=ctx.device) * 0.02
    b = batch_size(ctx, 8)
    real = random_images(b, 7, 0, ctx.device)
    fake = random_images(b, 7, 1, ctx.device)
    run = SPGTrainer.from_config(cfg, model, itertools.repeat(real), itertools.repeat(fake))
    storage = EventStorage(0)

    def step():
        with storage:
            run.run_step()
            storage.step()

    return step, f"{b}+{b} images", 2 * b


def inference_case(method: str, classes: int, authors: bool):
    def setup(ctx):
        model, _ = classifier(ctx, method, classes)
        if method == "spg":
            model.generator.eval()
        b = batch_size(ctx, 2 if classes > 65 and ctx.model_key != "tiny" else 8, 32)
        if authors and method == "spg":
            b = 1  # their test loader's batch size
        images = random_images(b, classes, 2, ctx.device)

        def step():
            model.eval()
            if method == "coop":  # theirs encodes the fixed class prompts every batch
                model.cache_text = not authors
            with _text_path(model, authors), torch.no_grad():
                model(images)
            model.train()

        return step, f"{b} images, {classes} classes", b

    return setup


def text_encoding_case(classes: int, authors: bool):
    """The text encoder alone on per-image prompts (B images x K classes), as CoCoOp and SPG
    inference run it."""
    def setup(ctx):
        model, _ = classifier(ctx, "cocoop", classes)
        b = batch_size(ctx, 2 if classes > 65 and ctx.model_key != "tiny" else 8, 32)
        ctx_vectors = torch.randn(b, *model.prompts.ctx.shape, device=ctx.device) * 0.02

        def step():
            with _text_path(model, authors), torch.no_grad():
                model.encode_context(model.prompts, ctx_vectors)

        return step, f"{b} images x {classes} classes = {b * classes} prompts", b

    return setup


KINDS = {  # case kind -> setup(classes, authors)
    "text_encoding": text_encoding_case,
    **{f"{m}_train_step": (lambda m: lambda k, t: train_step_case(m, k, t))(m)
       for m in ("coop", "cocoop", "adclip")},
    **{f"{m}_inference": (lambda m: lambda k, t: inference_case(m, k, t))(m)
       for m in ("coop", "cocoop", "spg", "adclip")},
}


def _cases():
    """Every kind at every class count, our case next to the authors' path (so they share one
    built model), and the ratios between them."""
    cases = [("spg_train_step", spg_train_step_case)] + training_loop.cases(["coop", "adclip"],
                                                                             MODELS)
    ratios = []
    for kind, make in KINDS.items():
        for k in (7, 65, 345):
            for twin in ("ours", "authors"):
                cases.append((f"{kind}[{k},{twin}]", make(k, twin == "authors")))
            ratios.append((f"{kind} at {k} classes: authors' path / ours", f"{kind}[{k},authors]",
                           f"{kind}[{k},ours]", 1.0))
    # Seconds per image, per class: <= 1 means the cost grows at most linearly in classes.
    ratios.append(("text_encoding per image and class, 345 vs 7 classes (<= 1: at most linear)",
                   "text_encoding[345,ours]", "text_encoding[7,ours]", 7 / 345))
    return cases, ratios


CASES, RATIOS = _cases()
