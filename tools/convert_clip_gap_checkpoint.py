#!/usr/bin/env python
"""Convert a detector checkpoint of the CLIP-the-Gap authors (vidit09/domaingen) to domaingen.

    python tools/convert_clip_gap_checkpoint.py their_model_best.pth ours.pth \
        --config-file configs/diverse_weather/clip_gap_RN101.yaml
    python tools/train_net.py --config-file configs/diverse_weather/clip_gap_RN101.yaml \
        --eval-only MODEL.WEIGHTS ours.pth REPRODUCE_AUTHORS True

The config names the architecture (ClipGapRCNN for theirs with offsets, ClipRCNN for their
baseline), the classes and prompts; trailing KEY VALUE pairs override it. Their unused modules
(a second CLIP copy, Detectron2's res5 head, aliases) are left out; a tensor that fits nowhere
is an error naming it.
"""
import argparse
import logging
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

import torch  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from domaingen.config import get_config_file  # noqa: E402
from domaingen.engine import load_config  # noqa: E402
from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.methods.clip_gap.authors_checkpoint import (  # noqa: E402
    AuthorsCheckpointError,
    convert_authors_state,
    read_authors_checkpoint,
)
from domaingen.utils.files import atomic_write  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the authors' checkpoint (.pth)")
    parser.add_argument("output", help="where to write the domaingen checkpoint")
    parser.add_argument("--config-file", default="diverse_weather/clip_gap_RN101.yaml",
                        help="a config file, or a shipped config's name below configs/")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="unpickle the file fully (only for a file you trust)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file (never the source)")
    parser.add_argument("opts", nargs="*", help="config overrides KEY VALUE ...")
    args = parser.parse_intermixed_args(argv)
    if os.path.realpath(args.output) == os.path.realpath(args.source):
        raise SystemExit(f"error: the output {args.output} is the authors' checkpoint itself: "
                         f"name another file")
    if os.path.isfile(args.output) and not args.overwrite:
        raise SystemExit(f"error: {args.output} exists: name a new file, or pass --overwrite")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(get_config_file(args.config_file),
                      ["MODEL.WEIGHTS", "", "MODEL.CLIP.WEIGHTS", "",
                       "MODEL.DEVICE", "cpu", "REPRODUCE_AUTHORS", "True",
                       *args.opts])
    try:
        state = read_authors_checkpoint(args.source, args.allow_pickle)
        target = build_model(cfg).state_dict()
        converted, unused = convert_authors_state(state, cfg, target)
    except AuthorsCheckpointError as e:
        raise SystemExit(f"{args.source}: {e}")
    atomic_write(args.output, lambda f: torch.save({"model": converted}, f))
    print(f"Wrote {args.output}: {len(converted)} tensors for {cfg.MODEL.META_ARCHITECTURE}; "
          f"left out {len(unused)} unused tensors of the authors' model")


if __name__ == "__main__":
    run_tool(main)
