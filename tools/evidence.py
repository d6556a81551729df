#!/usr/bin/env python
"""The miniature world's evidence run (``make evidence``): each paper's claim on the synthetic
datasets with the semantic stand-in CLIPs, mean ± std over seeds.

    python tools/evidence.py              # seeds 0 1 2 -> output/evidence/evidence.md, .csv, .png
    python tools/evidence.py --quick      # one seed
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.miniature.evidence.run import main  # noqa: E402

if __name__ == "__main__":
    run_tool(main)
