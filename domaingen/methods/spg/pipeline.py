"""``tools/spg_pipeline.py``: SPG's stage I, stage II and held-out evaluation, per target domain.

Layout under ``--output-dir`` (default ``output/spg/<dataset>``)::

    <target>/stage1/<source domain>/   CoOp run; domain_prompt.pt written last
    <target>/stage2/                   SPGClassifier run; results.json written last
    <target>/stage2_authors_labels/    the same on the authors' labels (--domain-prompts)
    results.md, top1_per_target.png    the table of all targets run so far

Every step is skipped when its final file exists and resumes from its last checkpoint when it
was interrupted, so rerunning the same command continues where it stopped. Each step's folder
records its inputs (``inputs.json``: the config and the label files' contents): a rerun with
other inputs on the same folders is refused, never answered with the old results.
"""
import argparse
import hashlib
import json
import logging
import os
from typing import Dict, List, Optional, Sequence

from detectron2.data import MetadataCatalog
from tabulate import tabulate

from domaingen.config import get_config_file
from domaingen.data.datasets import DG_DATASETS, dg_split_names
from domaingen.engine import load_config, run
from domaingen.engine.console import console_logging
from domaingen.utils.errors import InputError
from domaingen.utils.files import atomic_write
from domaingen.utils.plots import bar_chart

from .domain_prompts import save_domain_prompt

logger = logging.getLogger("domaingen.spg_pipeline")

PROMPT_FILE = "domain_prompt.pt"
RESULTS_FILE = "results.json"
INPUTS_FILE = "inputs.json"


def default_configs(dataset: str, model: str):
    """(stage I, stage II) config files: the quick twins for the synthetic domains, else
    ``classification/<dataset>/spg[_stage1]_<model>.yaml``."""
    if dataset == "synthetic_domains":
        names = ("quick/synthetic_domains_spg_stage1.yaml", "quick/synthetic_domains_spg.yaml")
    else:
        names = (f"classification/{dataset}/spg_stage1_{model}.yaml",
                 f"classification/{dataset}/spg_{model}.yaml")
    return tuple(get_config_file(n) for n in names)


class PipelineInputsError(InputError, FileExistsError):
    """A stage's folder holds a run computed from other inputs."""


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_inputs(cfg, out_dir: str) -> None:
    """Record in ``out_dir/inputs.json`` what the stage is computed from (the whole config and
    the content of every domain prompt label file it reads); refuse, naming what differs, a
    folder whose earlier run had other inputs: its checkpoints and results are not this run's."""
    labels = list(cfg.MODEL.SPG.DOMAIN_PROMPTS)
    folder = cfg.MODEL.SPG.AUTHORS_DOMAIN_PROMPTS
    if folder and os.path.isdir(folder):
        labels += sorted(os.path.join(folder, f) for f in os.listdir(folder))
    inputs = {"config": hashlib.sha256(cfg.dump().encode()).hexdigest(),
              "labels": {p: _sha256(p) for p in labels if os.path.isfile(p)}}
    path = os.path.join(out_dir, INPUTS_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            previous = json.load(f)
        changed = (["the config"] if previous.get("config") != inputs["config"] else []) + [
            p for p in sorted(set(inputs["labels"]) | set(previous.get("labels", {})))
            if previous.get("labels", {}).get(p) != inputs["labels"].get(p)]
        if changed:
            raise PipelineInputsError(
                f"{out_dir} holds a run computed from other inputs ({', '.join(changed)} "
                f"changed since): its checkpoints and results are not this run's. Choose "
                f"another --output-dir, or delete {out_dir} to start that stage over")
        return
    atomic_write(path, lambda f: f.write(json.dumps(inputs, indent=1).encode()))


def stage1(config: str, dataset: str, domain: str, out_dir: str, opts: Sequence[str]) -> str:
    """Learn (or reuse) the domain prompt label of one source domain; returns its file."""
    cfg = load_config(config, list(opts) + [
        "DATASETS.DG_BENCHMARK", "", "DATASETS.TRAIN", f"('{dataset}_{domain}_train',)",
        "DATASETS.VAL", f"('{dataset}_{domain}_val',)", "DATASETS.TEST", "()",
        "OUTPUT_DIR", out_dir])
    check_inputs(cfg, out_dir)
    path = os.path.join(out_dir, PROMPT_FILE)
    if os.path.isfile(path):
        logger.info(f"stage I {domain}: reusing {path}")
        return path
    model = run(cfg, resume=True).model  # carries the weights selected on validation
    save_domain_prompt(path, model.prompts.ctx, domain, model.class_names, cfg.MODEL.CLIP.NAME)
    logger.info(f"stage I {domain}: domain prompt label written to {path}")
    return path


def stage2(config: str, dataset: str, domain: str, protocol: str, label_opts: List[str],
           out_dir: str, opts: Sequence[str]) -> Dict[str, float]:
    """Train SPGClassifier on the sources (labels set by ``label_opts``, config overrides) and
    return top-1 per test dataset."""
    cfg = load_config(config, list(opts) + [
        "DATASETS.DG_BENCHMARK", dataset, "DATASETS.DG_DOMAIN", domain,
        "DATASETS.DG_PROTOCOL", protocol, *label_opts, "OUTPUT_DIR", out_dir])
    check_inputs(cfg, out_dir)
    path = os.path.join(out_dir, RESULTS_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    results = run(cfg, resume=True).results
    top1 = {name: r["accuracy"]["top1"] for name, r in results.items()}
    atomic_write(path, lambda f: f.write(json.dumps(top1, indent=1).encode()))
    return top1


def run_target(dataset: str, domain: str, protocol: str, configs, root: str,
               opts: Sequence[str], domain_prompts: str = "") -> Dict[str, float]:
    """Both stages for one DG task (``domain``: the held-out target, or the single source);
    with ``domain_prompts`` (a folder of the authors' labels) stage II only, on those."""
    base = os.path.join(root, domain)
    if domain_prompts:
        return stage2(configs[1], dataset, domain, protocol,
                      ["MODEL.SPG.AUTHORS_DOMAIN_PROMPTS", domain_prompts],
                      os.path.join(base, "stage2_authors_labels"), opts)
    splits = dg_split_names(dataset, domain, protocol)
    sources = [MetadataCatalog.get(n).domain for n in splits["train"]]
    labels = []
    for k, source in enumerate(sources, 1):
        logger.info(f"SPG {dataset}, target {domain}: stage I on {source} ({k}/{len(sources)})")
        labels.append(stage1(configs[0], dataset, source, os.path.join(base, "stage1", source),
                             opts))
    logger.info(f"SPG {dataset}, target {domain}: stage II")
    return stage2(configs[1], dataset, domain, protocol,
                  ["MODEL.SPG.DOMAIN_PROMPTS", repr(labels)], os.path.join(base, "stage2"), opts)


def summarize(dataset: str, per_target: Dict[str, Dict[str, float]], root: str) -> str:
    """Markdown table (top-1 per target domain and the average), written with its chart."""
    rows = [(t, sum(r.values()) / len(r)) for t, r in per_target.items()]
    average = sum(v for _, v in rows) / len(rows)
    table = tabulate(rows + [("average", average)], headers=["target", "top1"],
                     tablefmt="pipe", floatfmt=".1f")
    text = f"### SPG on {dataset}\n\n{table}\n"
    atomic_write(os.path.join(root, "results.md"), lambda f: f.write(text.encode()))
    bar_chart(os.path.join(root, "top1_per_target.png"), [t for t, _ in rows] + ["average"],
              {"SPG": [v for _, v in rows] + [average]}, "top-1 (%)", f"SPG on {dataset}")
    return text


def main(argv: Optional[Sequence[str]] = None) -> str:
    p = argparse.ArgumentParser(prog="tools/spg_pipeline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(DG_DATASETS))
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--target", help="held-out domain (single_source: the source domain)")
    who.add_argument("--all-targets", action="store_true", help="every domain in turn")
    p.add_argument("--protocol", default="multi_source",
                   choices=("multi_source", "single_source"))
    p.add_argument("--model", default="ViT-B-16", help="picks spg[_stage1]_<model>.yaml")
    p.add_argument("--authors", action="store_true",
                   help="both stages as the authors' code runs them (REPRODUCE_AUTHORS True)")
    p.add_argument("--domain-prompts", default="",
                   help="folder of the authors' released stage I labels "
                        "(<Dataset>_CoOp_<letter>.pt, e.g. prompt_labels/PACS/ViT-B16/seed_1): "
                        "skips stage I")
    p.add_argument("--stage1-config", help="default: configs/classification/<dataset>/...")
    p.add_argument("--stage2-config")
    p.add_argument("--output-dir",
                   help="default: output/spg/<dataset>[_single_source][_authors]")
    p.add_argument("opts", nargs=argparse.REMAINDER,
                   help="config overrides for both stages, e.g. MODEL.CLIP.WEIGHTS ViT-B-16.pt")
    args = p.parse_args(argv)
    console_logging()  # the stages' progress
    configs = default_configs(args.dataset, args.model)
    configs = (args.stage1_config or configs[0], args.stage2_config or configs[1])
    suffix = ("" if args.protocol == "multi_source" else f"_{args.protocol}") + (
        "_authors" if args.authors else "")
    root = args.output_dir or os.path.join("output", "spg", args.dataset + suffix)
    targets = DG_DATASETS[args.dataset] if args.all_targets else [args.target]
    opts = [*args.opts, "REPRODUCE_AUTHORS", "True"] if args.authors else args.opts
    per_target = {t: run_target(args.dataset, t, args.protocol, configs, root, opts,
                                args.domain_prompts) for t in targets}
    text = summarize(args.dataset, per_target, root)
    print(text)
    return text
