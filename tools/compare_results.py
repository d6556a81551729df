#!/usr/bin/env python
"""Compare the per-domain mAP of several evaluated runs: a table (the domains, the target mean
over every domain but the first, each run's difference to the first) and a chart of the runs
side by side on one scale.

    python tools/compare_results.py baseline=output/quick/diverse_weather_clip_rcnn \
        clip_gap=output/quick/diverse_weather_clip_gap [--output comparison.md]

With --output, the table goes to that file and the chart beside it (.png).
"""
import argparse
import os

from domaingen.engine.cli import run_tool
from domaingen.evaluation import compare_runs, comparison_markdown
from domaingen.utils.files import atomic_write
from domaingen.utils.plots import bar_chart


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=OUTPUT_DIR (each holding results.csv)")
    parser.add_argument("--output", help="also write the table to this markdown file, and the "
                                         "chart beside it")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected LABEL=OUTPUT_DIR, got {item!r}")
        runs[label] = os.path.join(path, "results.csv")
    chart = os.path.splitext(args.output)[0] + ".png" if args.output else None
    written = {os.path.realpath(p) for p in (args.output, chart) if p}
    if written & {os.path.realpath(p) for p in runs.values()}:
        parser.error(f"--output {args.output} is one of the results files it reads")
    rows, values = compare_runs(runs)
    table = "### mAP (AP50, %) per domain\n\n" + comparison_markdown(rows, values) + "\n"
    print(table)
    if args.output:
        atomic_write(args.output, lambda f: f.write(table.encode()))
        bar_chart(chart, rows, values, "AP50 (%)", f"mAP per domain: {' vs '.join(runs)}",
                  ylim=(0, 100))
        print(f"Wrote {args.output} and {chart}")


if __name__ == "__main__":
    run_tool(main)
