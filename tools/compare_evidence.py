#!/usr/bin/env python
"""Whether two runs of the evidence study computed the same numbers: every record compared
exactly, with the stand-ins' weights, the data and the acceptance checks of each stand-in seed
both ran (exit status 1 when anything differs).

    python tools/compare_evidence.py output/evidence /elsewhere/output/evidence
"""
import argparse

from domaingen.engine.cli import run_tool
from domaingen.miniature.evidence.reproduction import (
    compare_studies,
    comparison_markdown,
    identical,
    load_study,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="an evidence output folder, or its records.json")
    parser.add_argument("second")
    args = parser.parse_args(argv)
    result = compare_studies(load_study(args.first), load_study(args.second))
    print(comparison_markdown(result), end="")
    return 0 if identical(result) else 1


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
