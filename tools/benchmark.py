#!/usr/bin/env python
"""Time domaingen's hot paths beside twins of the authors' paths (random weights, no dataset).

    python tools/benchmark.py --suite detection --model tiny            # seconds
    python tools/benchmark.py --suite classification --model ViT-B-16 --cases 'text_encoding*'
    python tools/benchmark.py --suite all --device cuda --json bench.json

Each case runs warm-up iterations (the first one counts FLOPs with torch's operator counter),
then timed ones; the table gives median, interquartile range, min and max seconds per step,
images/s, GFLOP per step, achieved GFLOP/s and its share of this machine's fp32 peak (the
faster of a matmul and a channels-last convolution, measured at start), and peak memory (RSS on
CPU, max allocated on CUDA); then the authors' path / ours ratios. Cases live in
domaingen/benchmark/{detection,classification}.py, the authors' twins in .../authors_paths.py.
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from domaingen.benchmark.runner import main  # noqa: E402
from domaingen.utils.process import quiet_library_messages  # noqa: E402

if __name__ == "__main__":
    quiet_library_messages()
    main()
