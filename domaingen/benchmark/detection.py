"""Detection cases: CLIP the Gap's optimization step, the detector's iterations, and its
training loop on images read from disk (``training_loop``)."""
import io
import statistics
import time
from typing import List

import torch
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from domaingen.clip import build_clip_from_cfg, encode_prompts, get_tokenizer
from domaingen.engine import Trainer
from domaingen.methods.clip_gap.offset_bank import domain_text_directions
from domaingen.methods.clip_gap.step import augmentation_step
from domaingen.modeling.roi_heads import detector_class_names

from . import training_loop
from .authors_paths import authors_detector, domain_prompt_tokens, optimization_step_authors

CROP_SIZE = 224
IMAGE_HW = (600, 1000)
BOXES_PER_IMAGE = 4
# --model key -> (MODEL.CLIP.NAME, config file below configs/)
MODELS = {
    "tiny": ("domaingen-tiny-RN", "quick/diverse_weather_clip_gap.yaml"),
    "RN101": ("RN101", "diverse_weather/clip_gap_RN101.yaml"),
    "RN50": ("RN50", "diverse_weather/clip_gap_RN101.yaml"),
}


def detector(ctx, authors: bool = False):
    """The ClipGapRCNN of the model key (random CLIP), in train mode: ours with frozen
    BatchNorm, or as the authors run it (train-mode BatchNorm, weights in the default layout)."""
    name, config = MODELS[ctx.model_key]
    opts = ["MODEL.CLIP.NAME", name, "MODEL.CLIP.FROZEN_BN", str(not authors)]
    return ctx.model(config, opts + (["MODEL.CHANNELS_LAST", "False"] if authors else []))


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
        model, cfg = detector(ctx, authors)
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


def checkpoint_megabytes(model, optimizer) -> float:
    """Size of what Detectron2's checkpointer writes for ``model`` and ``optimizer``."""
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    return buffer.getbuffer().nbytes / 2 ** 20


def train_iter_case(aug_prob: float, encode_text_each_iter: bool = False, authors: bool = False):
    """Forward, backward and SGD step. ``encode_text_each_iter``: the naive twin that encodes
    the class prompts again every iteration instead of keeping their embeddings; ``authors``:
    the authors' detector (``authors_detector``). Reports the checkpoint's size."""
    def setup(ctx):
        model, cfg = detector(ctx, authors)
        if authors and not hasattr(model, "authors_unused"):
            authors_detector(model, cfg)
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

        step.report = lambda times: {"checkpoint_mb": checkpoint_megabytes(model, optimizer)}
        return step, f"{batch_size} images {IMAGE_HW[0]}x{IMAGE_HW[1]}", batch_size

    return setup


PARTS = ("trunk", "rpn", "roi_layer4", "roi_attention_pool", "roi_pooler_predictor_loss")


def _timed(times: dict, part: str, fn):
    """``fn()``, its seconds added to this iteration's entry of ``part``."""
    start = time.perf_counter()
    out = fn()
    times[part][-1] += time.perf_counter() - start
    return out


def iteration_parts_case(ctx):
    """Our training iteration cut into its parts, each run forward on detached inputs and then
    backward with the gradient its consumer sent: the trunk (images -> res4), the RPN and its
    losses, the ROI head's layer4 and attention pool on the sampled ROIs, and the rest of the
    ROI head (proposal sampling, ROI pooler, box predictor and losses). The report holds each
    part's median seconds and its share of their sum (the optimizer step is left out)."""
    model, cfg = detector(ctx)
    batch_size = ctx.args.batch or (4 if ctx.device == "cuda" else 2)
    batch = random_detection_batch(batch_size, cfg.MODEL.ROI_HEADS.NUM_CLASSES, ctx.device)
    heads = model.roi_heads
    times = {part: [] for part in PARTS}

    def leaf(x):
        return x.detach().requires_grad_(True)

    def step():
        for part in PARTS:
            times[part].append(0.0)
        with EventStorage(0):
            gt = [x["instances"] for x in batch]
            images = model.preprocess_image(batch)
            res4 = _timed(times, "trunk", lambda: model.backbone(images.tensor)["res4"])
            rpn_in, roi_in = leaf(res4), leaf(res4)
            proposals, rpn_losses = _timed(times, "rpn", lambda: model.proposal_generator(
                images, {"res4": rpn_in}, gt))
            _timed(times, "rpn", lambda: sum(rpn_losses.values()).backward())

            def pool_regions():
                sampled = heads.label_and_sample_proposals(proposals, gt)
                return sampled, heads.pooler([roi_in], [x.proposal_boxes for x in sampled])

            sampled, regions = _timed(times, "roi_pooler_predictor_loss", pool_regions)
            layer4_in = leaf(regions)
            layer4_out = _timed(times, "roi_layer4", lambda: heads.res5(layer4_in))
            pool_in, box_in = leaf(layer4_out), leaf(layer4_out)
            embeddings = _timed(times, "roi_attention_pool", lambda: heads.attnpool(pool_in))
            predictor_in = leaf(embeddings)

            def head_loss():
                losses = heads.box_predictor.losses(heads.box_predictor(predictor_in, box_in),
                                                    sampled)
                sum(losses.values()).backward()

            _timed(times, "roi_pooler_predictor_loss", head_loss)
            _timed(times, "roi_attention_pool", lambda: embeddings.backward(predictor_in.grad))
            _timed(times, "roi_layer4", lambda: layer4_out.backward(pool_in.grad + box_in.grad))
            _timed(times, "roi_pooler_predictor_loss", lambda: regions.backward(layer4_in.grad))
            _timed(times, "trunk", lambda: res4.backward(rpn_in.grad + roi_in.grad))
        model.zero_grad(set_to_none=True)

    def report(_):
        timed = {part: statistics.median(times[part][-ctx.args.iters:]) for part in PARTS}
        total = sum(timed.values())
        return {"parts_s": timed, "parts_share": {p: t / total for p, t in timed.items()}}

    step.report = report
    return step, f"{batch_size} images {IMAGE_HW[0]}x{IMAGE_HW[1]}", batch_size


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
    ("detector_train_iter[authors]", train_iter_case(1.0, authors=True)),
    ("detector_train_iter[no_aug]", train_iter_case(0.0)),
    ("detector_train_iter[text_per_iter]", train_iter_case(0.0, encode_text_each_iter=True)),
    ("detector_train_iter[parts]", iteration_parts_case),
    ("detector_inference", inference_case),
] + training_loop.cases(["detector"], {k: name for k, (name, _) in MODELS.items()})
# (label, numerator case, denominator case, scale): scale x ratio of median seconds per image
RATIOS = [
    ("optimization step: authors' path / ours", "optimization_step[authors]",
     "optimization_step[ours]", 1.0),
    ("detector iteration: authors' path / ours", "detector_train_iter[authors]",
     "detector_train_iter[aug]", 1.0),
    ("detector iteration: aug / no_aug", "detector_train_iter[aug]", "detector_train_iter[no_aug]",
     1.0),
    ("detector iteration: text encoded per iteration / cached",
     "detector_train_iter[text_per_iter]", "detector_train_iter[no_aug]", 1.0),
]
