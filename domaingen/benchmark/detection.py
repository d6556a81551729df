"""Detection cases: CLIP the Gap's optimization step, the detector's iterations, and its
training loop on images read from disk (``training_loop``)."""
from typing import List

import torch
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from domaingen.clip import build_clip_from_cfg, encode_prompts, get_tokenizer
from domaingen.modeling.roi_heads import detector_class_names
from domaingen.engine import Trainer
from domaingen.modeling.augmentation import augmentation_step
from domaingen.modeling.augmentation.bank import domain_text_directions

from . import training_loop
from .naive import domain_prompt_tokens, optimization_step_authors

CROP_SIZE = 224
IMAGE_HW = (600, 1000)
BOXES_PER_IMAGE = 4
# --model key -> (MODEL.CLIP.NAME, config file below configs/)
MODELS = {
    "tiny": ("domaingen-tiny-RN", "quick/diverse_weather_clip_gap.yaml"),
    "RN101": ("RN101", "diverse_weather/clip_gap_RN101.yaml"),
    "RN50": ("RN50", "diverse_weather/clip_gap_RN101.yaml"),
}


def detector(ctx):
    """The ClipGapRCNN of the model key (random CLIP, frozen BatchNorm), in train mode."""
    name, config = MODELS[ctx.model_key]
    return ctx.model(config, ["MODEL.CLIP.NAME", name, "MODEL.CLIP.FROZEN_BN", "True"])


def crops_per_step(ctx) -> int:
    """One image's 15 random crops (the authors' mapper) on the CPU, 60 (4 images) on CUDA."""
    if ctx.args.crops:
        return ctx.args.crops
    return 15 if ctx.args.device == "cpu" else 60


def optimization_step_case(authors: bool):
    """Our ``augmentation_step`` or the authors' path (``optimization_step_authors``: text
    encoded per prompt by a CLIP model built beside the detector, whose text directions the
    bank then holds, so both paths optimise the same objective)."""
    def setup(ctx):
        model, cfg = detector(ctx)
        c = cfg.MODEL.CLIP_GAP
        n = crops_per_step(ctx)
        crops = torch.randint(0, 256, (n, 3, CROP_SIZE, CROP_SIZE), dtype=torch.uint8,
                              device=ctx.device)
        bank = model.augmentation_bank
        optimizer = torch.optim.Adam([bank.offsets], lr=c.OPT_LR)
        if authors:
            clip_model = build_clip_from_cfg(cfg).to(ctx.device)
            tokens = [t.to(ctx.device) for t in domain_prompt_tokens(
                get_tokenizer(cfg.MODEL.CLIP.NAME), bank.source_prompt, bank.target_prompts)]
            bank.text_directions.copy_(domain_text_directions(
                clip_model, cfg.MODEL.CLIP.NAME, bank.source_prompt, bank.target_prompts))

            def step():
                optimization_step_authors(model, clip_model, *tokens, crops, optimizer)
        else:
            def step():
                augmentation_step(model, crops, optimizer, c.OPT_L1_WEIGHT)

        return step, f"{n} crops x {len(bank)} prompts", n

    return setup


def random_detection_batch(batch_size: int, num_classes: int, device) -> List[dict]:
    """Dataset-mapper-like dicts: a random 0-255 image [3, H, W] and a few random boxes."""
    height, width = IMAGE_HW
    batch = []
    for _ in range(batch_size):
        xy = torch.rand(BOXES_PER_IMAGE, 2) * torch.tensor([width * 0.7, height * 0.7])
        wh = 32 + torch.rand(BOXES_PER_IMAGE, 2) * torch.tensor([width * 0.3, height * 0.3])
        instances = Instances(IMAGE_HW)
        instances.gt_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        instances.gt_classes = torch.randint(0, num_classes, (BOXES_PER_IMAGE,))
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8).float()
        batch.append({"image": image.to(device), "height": height, "width": width,
                      "instances": instances.to(device)})
    return batch


def train_iter_case(aug_prob: float, encode_text_each_iter: bool = False):
    """Forward, backward and SGD step; ``encode_text_each_iter`` is the naive twin that encodes
    the class prompts again every iteration instead of keeping their embeddings."""
    def setup(ctx):
        model, cfg = detector(ctx)
        batch_size = ctx.args.batch or (4 if ctx.device == "cuda" else 2)
        batch = random_detection_batch(batch_size, cfg.MODEL.ROI_HEADS.NUM_CLASSES, ctx.device)
        optimizer = Trainer.build_optimizer(cfg, model)
        storage = EventStorage(0)
        predictor = model.roi_heads.box_predictor
        if encode_text_each_iter:
            clip_model = build_clip_from_cfg(cfg).to(ctx.device)
            classes = detector_class_names(cfg)

        def step():
            model.aug_prob, model.aug_when_rand_above_prob = aug_prob, False
            if encode_text_each_iter:
                predictor.text_embeddings.copy_(encode_prompts(
                    clip_model, cfg.MODEL.CLIP.NAME, classes, cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES))
            with storage:
                loss = sum(model(batch).values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                storage.step()

        return step, f"{batch_size} images {IMAGE_HW[0]}x{IMAGE_HW[1]}", batch_size

    return setup


def inference_case(ctx):
    model, _ = detector(ctx)
    batch = [{k: v for k, v in x.items() if k != "instances"}
             for x in random_detection_batch(1, 1, ctx.device)]

    def step():
        model.eval()
        with torch.no_grad():
            model(batch)
        model.train()

    return step, f"1 image {IMAGE_HW[0]}x{IMAGE_HW[1]}", 1


CASES = [
    ("optimization_step[ours]", optimization_step_case(authors=False)),
    ("optimization_step[authors]", optimization_step_case(authors=True)),
    ("detector_train_iter[aug]", train_iter_case(1.0)),
    ("detector_train_iter[no_aug]", train_iter_case(0.0)),
    ("detector_train_iter[text_per_iter]", train_iter_case(0.0, encode_text_each_iter=True)),
    ("detector_inference", inference_case),
] + training_loop.cases(["detector"], {k: name for k, (name, _) in MODELS.items()})
# (label, numerator case, denominator case, scale): scale x ratio of median seconds per image
RATIOS = [
    ("optimization step: authors' path / ours", "optimization_step[authors]",
     "optimization_step[ours]", 1.0),
    ("detector iteration: aug / no_aug", "detector_train_iter[aug]", "detector_train_iter[no_aug]",
     1.0),
    ("detector iteration: text encoded per iteration / cached", "detector_train_iter[text_per_iter]",
     "detector_train_iter[no_aug]", 1.0),
]
