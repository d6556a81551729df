#!/usr/bin/env python
"""Train or evaluate a domaingen model from a YAML config (Detectron2's arguments).

    python tools/train_net.py --config-file configs/quick/diverse_weather_clip_rcnn.yaml
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/.../model_final.pth
    python tools/train_net.py --config-file ... REPRODUCE_AUTHORS True   # the authors' behaviour
    python tools/train_net.py --config-file ... --num-gpus 2          # 2 processes (gloo on CPU)
    torchrun --nproc-per-node 2 tools/train_net.py --config-file ... --dist-url env://
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from domaingen.engine.cli import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli()
