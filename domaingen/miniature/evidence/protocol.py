"""The miniature world's evidence run: each paper's claim tested on the synthetic datasets with
the semantic stand-in CLIPs, one seed at a time.

- detection: the CLIP-RN Faster R-CNN baseline vs CLIP the Gap, trained on synthetic
  daytime_clear, AP50 on all five synthetic Diverse Weather domains;
- domain generalization: ZS-CLIP, CoOp, CoCoOp and SPG, each synthetic domain held out in turn
  (trained on the other three), top-1 on the held-out domain;
- adaptation: photo (labelled) -> each other domain (unlabelled), source-only CoOp vs AD-CLIP,
  top-1 on the target.

Every run lives in ``<output>/seed<k>/<experiment>/<method>/<domain>/`` and leaves
``evidence.json`` last: a rerun skips it. Each run returns records
``{experiment, method, seed, domain, value}``.
"""
import json
import logging
import os
import shutil
from typing import Dict, List

from detectron2.data import MetadataCatalog

from domaingen.config import get_config_file
from domaingen.data.datasets.builtin import DIVERSE_WEATHER_DOMAINS
from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS
from domaingen.engine import load_config, run
from domaingen.methods.spg.pipeline import stage1, stage2
from domaingen.utils.files import atomic_write

logger = logging.getLogger(__name__)

DETECTORS = {"CLIP-RN baseline": "diverse_weather_clip_rcnn.yaml",
             "CLIP the Gap": "diverse_weather_clip_gap.yaml"}
DG_METHODS = {"ZS-CLIP": "synthetic_domains_zsclip.yaml", "CoOp": "synthetic_domains_coop.yaml",
              "CoCoOp": "synthetic_domains_cocoop.yaml", "SPG": "synthetic_domains_spg.yaml"}
SPG_STAGE1 = "synthetic_domains_spg_stage1.yaml"
UDA_SOURCE = "photo"
UDA_METHODS = {"source only (CoOp)": "synthetic_domains_coop.yaml",
               "AD-CLIP": "synthetic_domains_adclip.yaml"}
DONE = "evidence.json"  # {"provenance", "results"}, written last
STARTED = "provenance.json"  # written first: what an interrupted run was computing from


def _read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _cached(out_dir: str, provenance: dict, compute) -> dict:
    """``compute()``'s results for this run directory, computed once per provenance: a result
    (or an interrupted run's checkpoints) from other code, data, stand-ins or environment is
    removed with its folder, which this protocol made, and computed again."""
    done, started = os.path.join(out_dir, DONE), os.path.join(out_dir, STARTED)
    record = _read(done) if os.path.isfile(done) else {}
    if record.get("provenance") == provenance:
        return record["results"]
    if os.path.isfile(done) or (os.path.isfile(started) and _read(started) != provenance):
        logger.info(f"{out_dir} was computed from other code, data, stand-ins or environment: "
                    f"computing it again")
        shutil.rmtree(out_dir)
    atomic_write(started, lambda f: f.write(json.dumps(provenance, indent=1).encode()))
    results = compute()
    record = {"provenance": provenance, "results": results}
    atomic_write(done, lambda f: f.write(json.dumps(record, indent=1).encode()))
    return results


def _train(config: str, opts: List[str], out_dir: str) -> dict:
    """Train (or, for a method without training, only evaluate) ``config``; test results."""
    cfg = load_config(get_config_file(f"evidence/{config}"), opts + ["OUTPUT_DIR", out_dir])
    return run(cfg, resume=True).results


def _metric(results: dict, task: str, key: str) -> Dict[str, float]:
    """``{domain: value}`` from Trainer.test results keyed by dataset name."""
    return {MetadataCatalog.get(name).domain: float(r[task][key]) for name, r in results.items()}


def detection(seed: int, root: str, provenance: dict) -> List[dict]:
    records = []
    for method, config in DETECTORS.items():
        out = os.path.join(root, f"seed{seed}", "detection", config[:-5])
        ap = _cached(out, provenance, lambda: _metric(
            _train(config, ["SEED", str(seed)], out), "bbox", "AP50"))
        records += [{"experiment": "detection", "method": method, "seed": seed, "domain": d,
                     "value": v} for d, v in ap.items()]
    return records


def domain_generalization(seed: int, root: str, provenance: dict) -> List[dict]:
    base = os.path.join(root, f"seed{seed}", "dg")
    opts = ["SEED", str(seed)]
    # Stage I depends on the source domain only: one domain prompt per domain, shared by targets.
    labels = {}
    for d in SYNTHETIC_DOMAINS:
        out = os.path.join(base, "spg_stage1", d)
        labels[d] = _cached(out, provenance, lambda: {"label": stage1(
            get_config_file(f"evidence/{SPG_STAGE1}"), "synthetic_domains", d, out, opts)})["label"]
    records = []
    for target in SYNTHETIC_DOMAINS:
        split = ["DATASETS.DG_BENCHMARK", "synthetic_domains", "DATASETS.DG_DOMAIN", target]
        for method, config in DG_METHODS.items():
            out = os.path.join(base, method, target)
            if method == "SPG":
                sources = [labels[d] for d in SYNTHETIC_DOMAINS if d != target]
                top1 = _cached(out, provenance, lambda: stage2(
                    get_config_file(f"evidence/{config}"), "synthetic_domains", target,
                    "multi_source", ["MODEL.SPG.DOMAIN_PROMPTS", repr(sources)],
                    os.path.join(out, "run"), opts))
                value = next(iter(top1.values()))
            else:
                value = _cached(out, provenance, lambda: _metric(_train(config, opts + split, out),
                                                     "accuracy", "top1"))[target]
            records.append({"experiment": "dg", "method": method, "seed": seed, "domain": target,
                            "value": value})
    return records


def adaptation(seed: int, root: str, provenance: dict) -> List[dict]:
    base = os.path.join(root, f"seed{seed}", "uda")
    opts = ["SEED", str(seed)]
    targets = [d for d in SYNTHETIC_DOMAINS if d != UDA_SOURCE]
    records = []
    method, config = "source only (CoOp)", UDA_METHODS["source only (CoOp)"]
    out = os.path.join(base, "source_only")
    # One source-only model, tested on every target (the DG benchmark's single-source split).
    top1 = _cached(out, provenance, lambda: _metric(_train(config, opts + [
        "DATASETS.DG_BENCHMARK", "synthetic_domains", "DATASETS.DG_PROTOCOL", "single_source",
        "DATASETS.DG_DOMAIN", UDA_SOURCE], out), "accuracy", "top1"))
    records += [{"experiment": "uda", "method": method, "seed": seed, "domain": t, "value": top1[t]}
                for t in targets]
    method, config = "AD-CLIP", UDA_METHODS["AD-CLIP"]
    for target in targets:
        out = os.path.join(base, "adclip", target)
        test = f"('synthetic_domains_{target}_test',)"
        top1 = _cached(out, provenance, lambda: _metric(_train(config, opts + [
            "DATASETS.TRAIN_UNLABELED", test, "DATASETS.TEST", test], out), "accuracy", "top1"))
        records.append({"experiment": "uda", "method": method, "seed": seed, "domain": target,
                        "value": top1[target]})
    return records


EXPERIMENTS = {"detection": detection, "dg": domain_generalization, "uda": adaptation}
# experiment -> (title, metric, methods, columns, columns averaged per seed, file name)
TABLES = {
    "detection": ("Single-source detection on synthetic Diverse Weather (train daytime_clear)",
                  "AP50 (%)", list(DETECTORS), list(DIVERSE_WEATHER_DOMAINS),
                  [d for d in DIVERSE_WEATHER_DOMAINS if d != "daytime_clear"], "detection"),
    "dg": ("Leave-one-domain-out classification on the synthetic domains (column: held-out domain)",
           "top-1 (%)", list(DG_METHODS), list(SYNTHETIC_DOMAINS), list(SYNTHETIC_DOMAINS),
           "domain_generalization"),
    "uda": (f"Unsupervised adaptation {UDA_SOURCE} -> each domain (column: target)", "top-1 (%)",
            list(UDA_METHODS), [d for d in SYNTHETIC_DOMAINS if d != UDA_SOURCE],
            [d for d in SYNTHETIC_DOMAINS if d != UDA_SOURCE], "adaptation"),
}
