#!/usr/bin/env python
"""Print the per-domain mAP of several evaluated runs side by side.

    python tools/compare_results.py baseline=output/quick/diverse_weather_clip_rcnn \
        clip_gap=output/quick/diverse_weather_clip_gap [--output comparison.md]
"""
import argparse
import os
import warnings

warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)

from domaingen.engine.cli import run_tool  # noqa: E402
from domaingen.evaluation import compare_runs  # noqa: E402
from domaingen.utils.files import atomic_write  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=OUTPUT_DIR (each holding results.csv)")
    parser.add_argument("--output", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected LABEL=OUTPUT_DIR, got {item!r}")
        runs[label] = os.path.join(path, "results.csv")
    if args.output and os.path.realpath(args.output) in map(os.path.realpath, runs.values()):
        parser.error(f"--output {args.output} is one of the results files it reads")
    table = "### mAP (AP50) per domain\n\n" + compare_runs(runs) + "\n"
    print(table)
    if args.output:
        atomic_write(args.output, lambda f: f.write(table.encode()))


if __name__ == "__main__":
    run_tool(main)
