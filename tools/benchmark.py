#!/usr/bin/env python
"""Time domaingen's hot paths on random inputs (no dataset or weights needed).

    python tools/benchmark.py --suite detection                     # tiny and RN101, CPU
    python tools/benchmark.py --suite detection --model tiny --iters 2 --warmup 1
    python tools/benchmark.py --suite detection --device cuda --json bench.json
    python tools/benchmark.py --suite classification --model ViT-B-16 --device cuda

Suites are lists of named cases. ``detection``:

* ``optimization_step``: one ``augmentation_step`` of CLIP the Gap on random uint8 crops at
  224 px (authors: 4 images x 15 crops = 60; fewer by default for RN101 on CPU, see --crops).
* ``detector_train_iter[aug]`` / ``[no_aug]``: forward, backward and SGD step of ``ClipGapRCNN``
  at MODEL.CLIP_GAP.AUG_PROB 1.0 / 0.0 on random 600x1000 images with random GT boxes.

``classification`` (AD-CLIP, Office-Home size: the 65 Office-Home class names, random weights):

* ``adclip_train_step[truncated]`` / ``[naive]``: forward, backward and Adam step of
  ``ADCLIPClassifier`` on a paired batch of B source + B target random 224 px images (B = 16 for
  ViT-B-16, 4 for tiny; see --batch); the text encoder runs 2 x B x 65 prompts per step.
* ``adclip_inference[truncated]`` / ``[naive]``: evaluation forward on B images (B x 65 prompts);
  the table adds images per second.

``[naive]`` is the same computation with the 77-token text path (MODEL.ADCLIP.TRUNCATE_TEXT
False); the ratios are naive / truncated median times (the speed-up of truncation). The smoke
run ``--suite classification --model tiny --iters 1 --warmup 0`` takes seconds.

Detection models are built from the CLIP-Gap Diverse Weather configs (tiny: configs/quick/, with its small
RPN/ROI sampling; RN101: the authors' configs/diverse_weather/) with random CLIP weights and
frozen BatchNorm. Every case runs ``--warmup`` untimed iterations, then ``--iters`` timed ones;
the table reports the median, min and max seconds per iteration and iterations per second, then
the aug / no_aug ratio of median times (keep --warmup >= 1 for it: the first detector iteration
pays one-time costs). On 2 CPU cores an RN101 detector iteration takes about 2 minutes.
"""
import argparse
import json
import os
import random
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from domaingen.engine import Trainer, load_config
from domaingen.modeling.augmentation import augmentation_step
from domaingen.utils.files import atomic_write

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
# suite -> --model key -> (MODEL.CLIP.NAME, the config it is built from).
SUITE_MODELS = {
    "detection": {
        "tiny": ("domaingen-tiny-RN",
                 os.path.join(CONFIGS, "quick", "diverse_weather_clip_gap.yaml")),
        "RN101": ("RN101", os.path.join(CONFIGS, "diverse_weather", "clip_gap_RN101.yaml")),
    },
    "classification": {
        "tiny": ("domaingen-tiny-ViT", os.path.join(CONFIGS, "quick", "synthetic_domains_adclip.yaml")),
        "ViT-B-16": ("ViT-B-16", os.path.join(
            CONFIGS, "classification", "office_home", "adclip_ViT-B-16_art_to_clipart.yaml")),
    },
}
DEFAULT_MODELS = {"detection": "tiny,RN101", "classification": "tiny,ViT-B-16"}
OFFICE_HOME_CLASSES = (
    "Alarm_Clock Backpack Batteries Bed Bike Bottle Bucket Calculator Calendar Candles Chair "
    "Clipboards Computer Couch Curtains Desk_Lamp Drill Eraser Exit_Sign Fan File_Cabinet "
    "Flipflops Flowers Folder Fork Glasses Hammer Helmet Kettle Keyboard Knives Lamp_Shade Laptop "
    "Marker Monitor Mop Mouse Mug Notebook Oven Pan Paper_Clip Pen Pencil Postit_Notes Printer "
    "Push_Pin Radio Refrigerator Ruler Scissors Screwdriver Shelf Sink Sneakers Soda Speaker "
    "Spoon TV Table Telephone ToothBrush Toys Trash_Can Webcam").split()
BENCH_CLASSES_DATASET = "benchmark_office_home_classes"  # metadata only: no images are read
SEED = 0
CROP_SIZE = 224
IMAGE_HW = (600, 1000)
BOXES_PER_IMAGE = 4


class Context:
    """What cases share for one model: the parsed arguments, the config and the built model."""

    def __init__(self, args, model_key: str):
        self.args = args
        self.model_key = model_key
        clip_name, config_file = SUITE_MODELS[args.suite][model_key]
        opts = ["MODEL.CLIP.NAME", clip_name, "MODEL.CLIP.WEIGHTS", "",
                "MODEL.CLIP.FROZEN_BN", "True", "MODEL.DEVICE", args.device, "OUTPUT_DIR", ""]
        if args.suite == "classification":
            MetadataCatalog.get(BENCH_CLASSES_DATASET).set(thing_classes=list(OFFICE_HOME_CLASSES))
            opts += ["DATASETS.TRAIN", f"('{BENCH_CLASSES_DATASET}',)"]
        self.cfg = load_config(config_file, opts)
        self._model = None

    @property
    def model(self):
        """The model of this config, built on first use (seeded) and in train mode."""
        if self._model is None:
            self._model = Trainer.build_model(self.cfg)
            self._model.train()
        return self._model

    def sync(self) -> None:
        if self.args.device == "cuda":
            torch.cuda.synchronize()


# A case's setup returns (one iteration to time, a description of its batch), optionally with
# the number of images an iteration processes (then images per second are reported).
Setup = Callable[[Context], Tuple]


@dataclass
class Case:
    name: str
    setup: Setup


def default_crops(args, model_key: str) -> int:
    if args.crops:
        return args.crops
    return 8 if args.device == "cpu" and model_key == "RN101" else 60


def optimization_step_case(ctx: Context):
    model, c = ctx.model, ctx.cfg.MODEL.CLIP_GAP
    n = default_crops(ctx.args, ctx.model_key)
    crops = torch.randint(0, 256, (n, 3, CROP_SIZE, CROP_SIZE), dtype=torch.uint8)
    optimizer = torch.optim.Adam([model.augmentation_bank.offsets], lr=c.OPT_LR, weight_decay=0.0)

    def step():
        augmentation_step(model, crops, optimizer, c.OPT_L1_WEIGHT)

    return step, f"{n} crops x {len(model.augmentation_bank)} prompts"


def random_detection_batch(batch_size: int, num_classes: int) -> List[dict]:
    """Dataset-mapper-like dicts: a random 0-255 float image [3, H, W] and a few random boxes."""
    height, width = IMAGE_HW
    batch = []
    for _ in range(batch_size):
        xy = torch.rand(BOXES_PER_IMAGE, 2) * torch.tensor([width * 0.7, height * 0.7])
        wh = 32 + torch.rand(BOXES_PER_IMAGE, 2) * torch.tensor([width * 0.3, height * 0.3])
        instances = Instances(IMAGE_HW)
        instances.gt_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        instances.gt_classes = torch.randint(0, num_classes, (BOXES_PER_IMAGE,))
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8).float()
        batch.append({"image": image, "height": height, "width": width, "instances": instances})
    return batch


def detector_train_iter_case(aug_prob: float) -> Setup:
    def setup(ctx: Context):
        model = ctx.model
        batch_size = ctx.args.batch or (4 if ctx.args.device == "cuda" else 2)
        batch = random_detection_batch(batch_size, ctx.cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        optimizer = Trainer.build_optimizer(ctx.cfg, model)
        storage = EventStorage(0)

        def step():
            model.aug_prob, model.aug_when_rand_above_prob = aug_prob, False
            with storage:
                losses = model(batch)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                storage.step()

        return step, f"{batch_size} images {IMAGE_HW[0]}x{IMAGE_HW[1]}"

    return setup


def random_classification_batch(batch_size: int, num_classes: int, seed: int) -> List[dict]:
    """Mapper-like dicts: a random uint8 224 px image and a label."""
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8),
             "label": i % num_classes} for i in range(batch_size)]


def adclip_batch_size(ctx: Context) -> int:
    return ctx.args.batch or (16 if ctx.model_key == "ViT-B-16" else 4)


def adclip_train_step_case(truncate: bool) -> Setup:
    def setup(ctx: Context):
        model, b = ctx.model, adclip_batch_size(ctx)
        k = len(model.class_names)
        model.truncate_text = truncate
        data = {"source": random_classification_batch(b, k, seed=0),
                "target": random_classification_batch(b, k, seed=1)}
        optimizer = Trainer.build_optimizer(ctx.cfg, model)
        amp = ctx.args.device == "cuda" and ctx.cfg.SOLVER.AMP.ENABLED
        scaler = torch.amp.GradScaler("cuda", enabled=amp)

        def step():
            with torch.autocast("cuda", enabled=amp):
                loss = sum(model(data).values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        return step, f"{b}+{b} images, {k} classes{', AMP' if amp else ''}", 2 * b

    return setup


def adclip_inference_case(truncate: bool) -> Setup:
    def setup(ctx: Context):
        model, b = ctx.model, adclip_batch_size(ctx)
        model.truncate_text = truncate
        images = random_classification_batch(b, len(model.class_names), seed=2)
        amp = ctx.args.device == "cuda" and ctx.cfg.SOLVER.AMP.ENABLED

        def step():
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", enabled=amp):
                model(images)
            model.train()

        return step, f"{b} images, {len(model.class_names)} classes{', AMP' if amp else ''}", b

    return setup


SUITES: Dict[str, List[Case]] = {
    "detection": [
        Case("optimization_step", optimization_step_case),
        Case("detector_train_iter[aug]", detector_train_iter_case(1.0)),
        Case("detector_train_iter[no_aug]", detector_train_iter_case(0.0)),
    ],
    "classification": [
        Case("adclip_train_step[truncated]", adclip_train_step_case(True)),
        Case("adclip_train_step[naive]", adclip_train_step_case(False)),
        Case("adclip_inference[truncated]", adclip_inference_case(True)),
        Case("adclip_inference[naive]", adclip_inference_case(False)),
    ],
}
# Ratios reported after a suite: (label, numerator case, denominator case), by median time.
RATIOS: Dict[str, List[Tuple[str, str, str]]] = {
    "detection": [("detector_train_iter aug / no_aug",
                   "detector_train_iter[aug]", "detector_train_iter[no_aug]")],
    "classification": [
        ("adclip_train_step naive / truncated",
         "adclip_train_step[naive]", "adclip_train_step[truncated]"),
        ("adclip_inference naive / truncated",
         "adclip_inference[naive]", "adclip_inference[truncated]"),
    ],
}


def seed_all(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def time_case(ctx: Context, case: Case) -> dict:
    """Warm up, then time ``--iters`` iterations of one case."""
    seed_all()
    step, batch, *images = case.setup(ctx)
    for _ in range(ctx.args.warmup):
        step()
    ctx.sync()
    times = []
    for _ in range(ctx.args.iters):
        start = time.perf_counter()
        step()
        ctx.sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result = {"model": ctx.model_key, "case": case.name, "batch": batch, "iters": len(times),
              "warmup": ctx.args.warmup, "median_s": median, "min_s": min(times),
              "max_s": max(times), "iters_per_s": 1.0 / median, "times_s": times}
    if images:
        result["images_per_s"] = images[0] / median
    return result


def ratios(suite: str, results: List[dict]) -> List[dict]:
    by_key = {(r["model"], r["case"]): r for r in results}
    out = []
    for model in dict.fromkeys(r["model"] for r in results):
        for label, num, den in RATIOS.get(suite, []):
            if (model, num) in by_key and (model, den) in by_key:
                value = by_key[(model, num)]["median_s"] / by_key[(model, den)]["median_s"]
                out.append({"model": model, "ratio": label, "value": value})
    return out


def markdown(results: List[dict], ratio_rows: List[dict]) -> str:
    lines = ["| model | case | batch | iters | median s/it | min s/it | max s/it | it/s | img/s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        per_image = f"{r['images_per_s']:.2f}" if "images_per_s" in r else ""
        lines.append(f"| {r['model']} | {r['case']} | {r['batch']} | {r['iters']} | "
                     f"{r['median_s']:.4f} | {r['min_s']:.4f} | {r['max_s']:.4f} | "
                     f"{r['iters_per_s']:.3f} | {per_image} |")
    if ratio_rows:
        lines += ["", "| model | ratio (median time) | value |", "|---|---|---:|"]
        lines += [f"| {r['model']} | {r['ratio']} | {r['value']:.3f} |" for r in ratio_rows]
    return "\n".join(lines)


def parse_models(values, suite: str = "detection") -> List[str]:
    models = SUITE_MODELS[suite]
    keys = [k.strip() for v in (values or [DEFAULT_MODELS[suite]]) for k in v.split(",")
            if k.strip()]
    unknown = [k for k in keys if k not in models]
    if unknown:
        raise SystemExit(f"unknown --model {unknown} for --suite {suite}: choose from "
                         f"{sorted(models)}")
    return list(dict.fromkeys(keys))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="detection")
    parser.add_argument("--model", action="append", metavar="tiny|RN101|ViT-B-16",
                        help="repeatable or comma separated (default: tiny,RN101 for "
                             "detection, tiny,ViT-B-16 for classification)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--crops", type=int, default=0,
                        help="crops per optimization step (default: 60; 8 for RN101 on CPU)")
    parser.add_argument("--batch", type=int, default=0,
                        help="images per detector iteration (default: 2 on CPU, 4 on cuda); "
                             "AD-CLIP: images per side (default: 16 for ViT-B-16, 4 for tiny)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.crops < 0 or args.batch < 0:
        parser.error("--iters must be >= 1; --warmup, --crops and --batch >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    args.model = parse_models(args.model, args.suite)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    # Library notices repeated on every iteration; they say nothing about speed.
    for message in ("torch.meshgrid", "Converting a tensor with requires_grad"):
        warnings.filterwarnings("ignore", message=message)
    print(f"suite {args.suite} on {args.device} ({torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}); {args.warmup} warm-up + {args.iters} timed iterations")
    results = []
    for key in args.model:
        seed_all()
        ctx = Context(args, key)
        if args.suite == "detection":
            print(f"[{key}] optimization_step uses {default_crops(args, key)} crops of "
                  f"{CROP_SIZE} px")
        for case in SUITES[args.suite]:
            result = time_case(ctx, case)
            results.append(result)
            print(f"[{key}] {case.name}: median {result['median_s']:.4f} s/it "
                  f"({result['batch']})", flush=True)
        del ctx
    ratio_rows = ratios(args.suite, results)
    print("\n" + markdown(results, ratio_rows))
    report = {"suite": args.suite, "device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "iters": args.iters, "warmup": args.warmup,
              "results": results, "ratios": ratio_rows}
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=2).encode()))
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
