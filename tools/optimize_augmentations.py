#!/usr/bin/env python
"""CLIP the Gap's optimization step on its own: learn the semantic augmentation bank.

    python tools/optimize_augmentations.py --config-file configs/quick/diverse_weather_clip_gap.yaml

Writes OUTPUT_DIR/augmentation_bank.pth (offsets, prompts, text directions, CLIP name) and
OUTPUT_DIR/augmentation_loss.png; train the detector with it through
MODEL.CLIP_GAP.AUG_WEIGHTS. Accepts Detectron2's arguments (--num-gpus N: the bank gradient is
averaged over processes).
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from detectron2.engine import default_argument_parser  # noqa: E402

from domaingen.engine import ConfigError, Trainer, launch, setup  # noqa: E402
from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.engine.runner import output_dir_session  # noqa: E402
from domaingen.methods.clip_gap import optimize_augmentations  # noqa: E402


def main(args):
    cfg = setup(args)
    if cfg.MODEL.META_ARCHITECTURE != "ClipGapRCNN":
        raise ConfigError(f"{args.config_file}: MODEL.META_ARCHITECTURE is "
                          f"{cfg.MODEL.META_ARCHITECTURE}; the optimization step needs ClipGapRCNN")
    cfg.freeze()
    with output_dir_session(cfg, args):
        model = Trainer.build_model(cfg)
        model.train()
        optimize_augmentations(cfg, model)


if __name__ == "__main__":
    run_tool(launch, main, default_argument_parser().parse_args())
