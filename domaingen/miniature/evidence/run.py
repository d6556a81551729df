"""``tools/evidence.py``: the whole evidence run (data, stand-ins, experiments, tables)."""
import argparse
import json
import logging
import os
import time
from typing import List, Optional, Sequence

from domaingen.data.datasets.builtin import default_root
from domaingen.engine.console import console_logging
from domaingen.miniature.standin import ensure_standin
from domaingen.miniature.synthetic import generate_diverse_weather
from domaingen.miniature.synthetic.domains import generate_domains
from domaingen.utils.files import atomic_write

from .protocol import EXPERIMENTS, TABLES
from .provenance import provenance
from .tables import evidence_rows, write_evidence

logger = logging.getLogger("domaingen.evidence")

# The evaluation data of the miniature world (fixed with the protocol).
DW_DATA = dict(seed=0, num_train=160, num_test=40, num_target=40, image_size=(384, 216))
DOMAINS_DATA = dict(seed=0, num_per_class=40, image_size=64)
STANDINS = ("domaingen-semantic-RN", "domaingen-semantic-ViT")


def prepare(root: str) -> dict:
    """Generate the synthetic datasets and build (or find) the stand-ins; their reports."""
    generate_diverse_weather(os.path.join(root, "synthetic_diverse_weather"), **DW_DATA)
    generate_domains(root, **DOMAINS_DATA)
    reports = {}
    for name in STANDINS:
        path = ensure_standin(name)
        with open(path + ".json") as f:
            reports[name] = json.load(f)
    return reports


def standin_markdown(reports: dict) -> str:
    """Zero-shot top-1 per domain and the text/image alignment of each stand-in."""
    lines = ["## Stand-in CLIPs", ""]
    for name, r in reports.items():
        lines += [f"**{name}** (seed {r['seed']}, {r['recipe']['steps']} steps, "
                  f"{r['train_seconds']:.0f} s to train)", "",
                  "| domain | zero-shot top-1 (%) |", "|---|---:|"]
        lines += [f"| {d} | {v:.1f} |" for d, v in r["zero_shot_top1"].items()]
        lines += ["", "| source -> target | cos(text direction, image shift) |", "|---|---:|"]
        lines += [f"| {pair} | {v:.3f} |" for pair, v in r["alignment"].items()
                  if pair.startswith(("daytime_clear->", "photo->"))]
        lines.append("")
    return "\n".join(lines) + "\n"


def run(seeds: Sequence[int], experiments: Sequence[str], output: str) -> str:
    start = time.perf_counter()
    root = default_root()
    reports = prepare(root)
    record = provenance(reports, [os.path.join(root, "synthetic_diverse_weather"),
                                  os.path.join(root, "synthetic_domains")])
    sections = [standin_markdown(reports)]
    records: List[dict] = []
    units, done = len(experiments) * len(seeds), 0
    for name in experiments:
        for seed in seeds:
            t = time.perf_counter()
            logger.info(f"evidence: {name} seed {seed} ({done + 1}/{units})")
            records += EXPERIMENTS[name](seed, output, record)
            done += 1
            elapsed = time.perf_counter() - start
            logger.info(f"evidence: {name} seed {seed} in {time.perf_counter() - t:.0f} s; "
                        f"eta {elapsed / done * (units - done) / 60:.0f} min")
        title, metric, methods, columns, averaged, file = TABLES[name]
        table = evidence_rows([r for r in records if r["experiment"] == name], methods, columns,
                              averaged)
        write_evidence(output, file, title, metric, table)
        with open(os.path.join(output, f"{file}.md")) as f:
            sections.append(f.read())
    minutes = (time.perf_counter() - start) / 60
    sections.append(f"Seeds {list(seeds)}; wall time {minutes:.1f} min "
                    f"(stand-ins cached beforehand are not retrained).\n")
    sections.append(f"Commit {record['commit'] or 'unknown'}"
                    f"{' with uncommitted changes' if record['dirty'] else ''}; "
                    + ", ".join(f"{k} {v}" for k, v in record["environment"].items()) + ".\n")
    text = "# Miniature world evidence\n\n" + "\n".join(sections)
    atomic_write(os.path.join(output, "evidence.md"), lambda f: f.write(text.encode()))
    atomic_write(os.path.join(output, "records.json"), lambda f: f.write(
        json.dumps({"provenance": record, "records": records}, indent=1).encode()))
    return text


def main(argv: Optional[Sequence[str]] = None) -> str:
    p = argparse.ArgumentParser(prog="tools/evidence.py", description=__doc__)
    p.add_argument("--quick", action="store_true", help="one seed (0)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    p.add_argument("--output", default="output/evidence")
    args = p.parse_args(argv)
    console_logging()
    seeds = [0] if args.quick else args.seeds
    text = run(seeds, args.experiments, args.output)
    print(text)
    return text
