#!/usr/bin/env python
"""The miniature world's evidence run (``make evidence``): each paper's claim on the synthetic
datasets with the semantic stand-in CLIPs, mean ± std over seeds.

    python tools/evidence.py              # seeds 0 1 2 -> output/evidence/evidence.md, .csv, .png
    python tools/evidence.py --quick      # one seed
"""
from domaingen.evidence.run import main

if __name__ == "__main__":
    main()
