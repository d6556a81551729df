#!/usr/bin/env python
"""SPG end to end: stage I (a CoOp prompt per source domain), stage II (the prompt GAN), and the
held-out evaluation, for one target or all of them; rerunning continues where it stopped.

    python tools/spg_pipeline.py --dataset pacs --target sketch MODEL.CLIP.WEIGHTS ViT-B-16.pt
    python tools/spg_pipeline.py --dataset pacs --all-targets
    python tools/spg_pipeline.py --dataset synthetic_domains --target sketch     # tiny, CPU
    python tools/spg_pipeline.py --dataset pacs --target sketch --authors \
        --domain-prompts prompt_labels/PACS/ViT-B16/seed_1    # the authors' run and labels
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.methods.spg.pipeline import main  # noqa: E402

if __name__ == "__main__":
    run_tool(main)
