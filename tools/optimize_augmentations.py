#!/usr/bin/env python
"""CLIP the Gap's optimization step on its own: learn the semantic augmentation bank.

    python tools/optimize_augmentations.py --config-file configs/quick/diverse_weather_clip_gap.yaml

Writes OUTPUT_DIR/augmentation_bank.pth (offsets, prompts, text directions, CLIP name) and
OUTPUT_DIR/augmentation_loss.png; train the detector with it through
MODEL.CLIP_GAP.AUG_WEIGHTS. Accepts Detectron2's arguments (--num-gpus N: the bank gradient is
averaged over processes).
"""
from detectron2.engine import default_argument_parser

from domaingen.engine import Trainer, launch, setup
from domaingen.engine.augmentation import optimize_augmentations


def main(args):
    cfg = setup(args)
    if cfg.MODEL.META_ARCHITECTURE != "ClipGapRCNN":
        raise SystemExit(f"{args.config_file}: MODEL.META_ARCHITECTURE is "
                         f"{cfg.MODEL.META_ARCHITECTURE}; the optimization step needs ClipGapRCNN")
    model = Trainer.build_model(cfg)
    model.train()
    optimize_augmentations(cfg, model)


if __name__ == "__main__":
    launch(main, default_argument_parser().parse_args())
