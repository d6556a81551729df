"""The miniature world v2's pre-registered evidence protocol (docs/miniature_world.md): what each
replicate trains and measures. A replicate is a stand-in seed (the CLIPs' pretraining) and a
training seed (every learner's init, data order and augmentation draws).

- detection: trained on day-clear; AP50 on the day-clear test split and on each target domain at
  each style strength; the baseline CLIP detector, CLIP the Gap, CLIP the Gap with a bank of
  random directions of the learned entries' norms (control), and an oracle trained with labelled
  target-domain images.
- dg: each non-photo style held out in turn (trained on the other four): ZS-CLIP, CoOp, CoCoOp,
  SPG; top-1 on the held-out domain with the last epoch's weights (primary) and with the best
  epoch on the sources' validation splits.
- uda: photo (labelled) -> each other style (unlabelled): source-only CoOp and AD-CLIP on the
  same labelled images and iteration budget; top-1 on the target, last iterate.

Each run lives in ``<output>/standin<a>/seed<b>/<experiment>/...`` and is cached with its
provenance (:func:`cached`). Records are ``{experiment, method, standin_seed, seed, domain,
strength, rule, value}``.
"""
import json
import logging
import os
import shutil
from typing import Callable, Dict, List, Sequence

from domaingen.config import get_config_file
from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS
from domaingen.engine import load_config, run
from domaingen.methods.spg.pipeline import stage1
from domaingen.utils.files import atomic_write

from .world import DIVERSE_WEATHER_DOMAINS, SOURCE, TARGETS, dataset_name, detection_test_sets

logger = logging.getLogger(__name__)

DETECTORS = {
    "baseline": ("diverse_weather_clip_rcnn.yaml", []),
    "CLIP the Gap": ("diverse_weather_clip_gap.yaml", []),
    "random-direction bank": ("diverse_weather_clip_gap.yaml",
                              ["MODEL.CLIP_GAP.RANDOM_DIRECTIONS", "True"]),
    "oracle": ("diverse_weather_clip_rcnn.yaml", None),  # trained on the oracle tree
}
DG_TARGETS = tuple(d for d in SYNTHETIC_DOMAINS if d != "photo")
DG_METHODS = {"ZS-CLIP": "synthetic_domains_zsclip.yaml", "CoOp": "synthetic_domains_coop.yaml",
              "CoCoOp": "synthetic_domains_cocoop.yaml", "SPG": "synthetic_domains_spg.yaml"}
SPG_STAGE1 = "synthetic_domains_spg_stage1.yaml"
UDA_SOURCE = "photo"
UDA_TARGETS = DG_TARGETS
UDA_METHODS = {"source only": "synthetic_domains_source_only.yaml",
               "AD-CLIP": "synthetic_domains_adclip.yaml"}
DONE = "evidence.json"  # {"provenance", "results"}, written last
STARTED = "provenance.json"  # written first: what an interrupted run was computing from


def _read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def cached(out_dir: str, provenance: dict, compute: Callable[[], dict]) -> dict:
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


def _config(config: str, opts: List[str], out_dir: str):
    return load_config(get_config_file(f"evidence/{config}"), opts + ["OUTPUT_DIR", out_dir])


def _top1(results: dict) -> Dict[str, float]:
    return {name: float(r["accuracy"]["top1"]) for name, r in results.items()}


def _last_and_best(config: str, opts: List[str], out_dir: str) -> Dict[str, Dict[str, float]]:
    """Train ``config`` (it selects the best epoch on the sources' validation splits and tests
    it), then test the last epoch's weights; ``{"last": {set: top1}, "best-val": ...}``."""
    best = _top1(run(_config(config, opts, out_dir), resume=True).results)
    last = _config(config, opts + ["MODEL.WEIGHTS", os.path.join(out_dir, "model_final.pth")],
                   os.path.join(out_dir, "last"))
    return {"last": _top1(run(last, eval_only=True).results), "best-val": best}


def augmentation_log(out_dir: str) -> Dict[str, float]:
    """Means over the logged iterations (metrics.json) of CLIP the Gap's ``clip_gap/*``
    scalars: the share of augmented batches and ||offset|| / ||res4 channel mean||."""
    values: Dict[str, List[float]] = {}
    with open(os.path.join(out_dir, "metrics.json")) as f:
        for line in f:
            for key, value in json.loads(line).items():
                if key.startswith("clip_gap/"):
                    values.setdefault(key[len("clip_gap/"):], []).append(float(value))
    return {k: sum(v) / len(v) for k, v in values.items()} | {
        "logged_iterations": len(values.get("augmented", []))}


def detection(standin_seed: int, seed: int, root: str, provenance: dict, device: str = "cpu",
              methods: Sequence[str] = tuple(DETECTORS)) -> List[dict]:
    base = os.path.join(root, f"standin{standin_seed}", f"seed{seed}", "detection")
    tests = detection_test_sets()
    opts = ["SEED", str(seed), "MODEL.CLIP.INIT_SEED", str(standin_seed), "MODEL.DEVICE", device,
            "DATASETS.TEST", repr(tuple(tests))]
    day = f"('{dataset_name('s100', SOURCE, 'train')}',)"
    oracle = repr(tuple(dataset_name("oracle", d, "train") for d in DIVERSE_WEATHER_DOMAINS))
    records = []
    for method, (config, extra) in DETECTORS.items():
        if method not in methods:
            continue
        out = os.path.join(base, method.replace(" ", "_"))
        train = ["DATASETS.TRAIN", day if extra is not None else oracle]

        def compute():
            results = run(_config(config, opts + train + (extra or []), out), resume=True).results
            ap = {name: float(r["bbox"]["AP50"]) for name, r in results.items()}
            return {"AP50": ap, "augmentation": augmentation_log(out)
                    if config.endswith("clip_gap.yaml") else {}}

        result = cached(out, provenance, compute)
        records += [{"experiment": "detection", "method": method, "standin_seed": standin_seed,
                     "seed": seed, "domain": tests[name][0], "strength": tests[name][1],
                     "rule": "last", "value": v} for name, v in result["AP50"].items()]
        if result["augmentation"]:
            records.append({"experiment": "augmentation", "method": method,
                            "standin_seed": standin_seed, "seed": seed, **result["augmentation"]})
    return records


def _dg_record(method, standin_seed, seed, target, rule, value) -> dict:
    return {"experiment": "dg", "method": method, "standin_seed": standin_seed, "seed": seed,
            "domain": target, "strength": None, "rule": rule, "value": value}


def domain_generalization(standin_seed: int, seed: int, root: str, provenance: dict,
                          device: str = "cpu") -> List[dict]:
    base = os.path.join(root, f"standin{standin_seed}", f"seed{seed}", "dg")
    opts = ["SEED", str(seed), "MODEL.CLIP.INIT_SEED", str(standin_seed), "MODEL.DEVICE", device]
    # Stage I depends on the source domain only: one domain prompt per domain, shared by targets.
    labels = {}
    for d in SYNTHETIC_DOMAINS:
        out = os.path.join(base, "spg_stage1", d)
        labels[d] = cached(out, provenance, lambda: {"label": stage1(
            get_config_file(f"evidence/{SPG_STAGE1}"), "synthetic_domains", d, out, opts)})["label"]
    records = []
    for target in DG_TARGETS:
        split = ["DATASETS.DG_BENCHMARK", "synthetic_domains", "DATASETS.DG_DOMAIN", target]
        test = f"synthetic_domains_{target}_test"
        for method, config in DG_METHODS.items():
            out = os.path.join(base, method, target)
            if method == "ZS-CLIP":
                top1 = cached(out, provenance, lambda: _top1(
                    run(_config(config, opts + split, out)).results))
                records.append(_dg_record(method, standin_seed, seed, target, "last", top1[test]))
                continue
            extra = []
            if method == "SPG":
                sources = [labels[d] for d in SYNTHETIC_DOMAINS if d != target]
                extra = ["MODEL.SPG.DOMAIN_PROMPTS", repr(sources)]
            result = cached(out, provenance, lambda: _last_and_best(
                config, opts + split + extra, out))
            records += [_dg_record(method, standin_seed, seed, target, rule, values[test])
                        for rule, values in result.items()]
    return records


def adaptation(standin_seed: int, seed: int, root: str, provenance: dict, device: str = "cpu",
               methods: Sequence[str] = tuple(UDA_METHODS)) -> List[dict]:
    base = os.path.join(root, f"standin{standin_seed}", f"seed{seed}", "uda")
    opts = ["SEED", str(seed), "MODEL.CLIP.INIT_SEED", str(standin_seed), "MODEL.DEVICE", device]
    records = []
    out = os.path.join(base, "source_only")
    # One source-only model, tested on every target.
    tests = repr(tuple(f"synthetic_domains_{t}_test" for t in UDA_TARGETS))
    top1 = cached(out, provenance, lambda: _top1(run(_config(
        UDA_METHODS["source only"], opts + ["DATASETS.TEST", tests], out), resume=True).results))
    records += [{"experiment": "uda", "method": "source only", "standin_seed": standin_seed,
                 "seed": seed, "domain": t, "strength": None, "rule": "last",
                 "value": top1[f"synthetic_domains_{t}_test"]} for t in UDA_TARGETS]
    for target in UDA_TARGETS if "AD-CLIP" in methods else ():
        out = os.path.join(base, "adclip", target)
        test = f"('synthetic_domains_{target}_test',)"
        top1 = cached(out, provenance, lambda: _top1(run(_config(UDA_METHODS["AD-CLIP"], opts + [
            "DATASETS.TRAIN_UNLABELED", test, "DATASETS.TEST", test], out), resume=True).results))
        records.append({"experiment": "uda", "method": "AD-CLIP", "standin_seed": standin_seed,
                        "seed": seed, "domain": target, "strength": None, "rule": "last",
                        "value": top1[f"synthetic_domains_{target}_test"]})
    return records


EXPERIMENTS = {"detection": detection, "dg": domain_generalization, "uda": adaptation}
__all__ = ["EXPERIMENTS", "DETECTORS", "DG_METHODS", "DG_TARGETS", "UDA_METHODS", "UDA_TARGETS",
           "TARGETS", "cached", "augmentation_log"]
