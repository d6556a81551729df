#!/usr/bin/env python
"""The miniature world's pre-registered evidence study (``make evidence``; docs/miniature_world.md):
stand-in acceptance checks, then every experiment over stand-in seeds x training seeds, paired
differences with 95 % CIs, Holm-adjusted tests and a verdict per claim.

    python tools/evidence.py                 # the committed study -> output/evidence/evidence.md
    python tools/evidence.py --quick         # one replicate
    python tools/evidence.py --world-seed 7 --standin-seeds 3 4 --seeds 0 1 2   # a fresh draw
    python tools/evidence.py --device cuda --jobs 8
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.miniature.evidence.run import main  # noqa: E402

if __name__ == "__main__":
    run_tool(main)
