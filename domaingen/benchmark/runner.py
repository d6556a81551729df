"""Running benchmark suites: models, measurement, ratio table, JSON report."""
import argparse
import json
import random
import re
import time
import warnings
from typing import Dict, List

import numpy as np
import torch

from domaingen.config import get_config_file
from domaingen.engine import Trainer, load_config
from domaingen.utils.files import atomic_write

from . import classification, detection
from .measure import PeakMemory, count_flops, peak_flops_per_s, timing_stats

SUITES = {"detection": detection, "classification": classification}
DEFAULT_MODELS = {"detection": "tiny,RN101", "classification": "tiny,ViT-B-16"}
SEED = 0


def seed_all(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Context:
    """What the cases of one (suite, model key) share: arguments, device, and the last built
    model (one at a time: large CLIP models do not fit many times over in memory)."""

    def __init__(self, args, model_key: str):
        self.args, self.model_key, self.device = args, model_key, args.device
        self._key, self._built = None, None

    def load(self, config: str, opts: List[str]):
        """The config ``configs/<config>`` with random CLIP weights, the device, ``opts`` and
        then the command line's ``--opts``."""
        return load_config(get_config_file(config), [
            "MODEL.CLIP.WEIGHTS", "", "MODEL.DEVICE", self.device, "OUTPUT_DIR", ""] + list(opts)
            + list(self.args.opts))

    def model(self, config: str, opts: List[str]):
        """(model, cfg) of ``configs/<config>`` with ``opts``, random CLIP weights, train mode."""
        key = (config, tuple(opts))
        if key != self._key:
            self.free()
            cfg = self.load(config, opts)
            seed_all()
            self._key, self._built = key, (Trainer.build_model(cfg).train(), cfg)
        return self._built

    def free(self) -> None:
        """Drop the last built model."""
        self._key, self._built = None, None

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def time_case(ctx: Context, name: str, setup, peak_flops: float) -> dict:
    """Warm up (the first warm-up iteration also counts FLOPs), then time ``--iters``."""
    seed_all()
    step, batch, images = setup(ctx)
    flops = None
    for i in range(ctx.args.warmup):
        if i == 0:
            flops = count_flops(step)
        else:
            step()
    ctx.sync()
    times = []
    with PeakMemory(ctx.device) as memory:
        for _ in range(ctx.args.iters):
            start = time.perf_counter()
            step()
            ctx.sync()
            times.append(time.perf_counter() - start)
    stats = timing_stats(times)
    result = {"model": ctx.model_key, "case": name, "batch": batch, "iters": len(times),
              "warmup": ctx.args.warmup, **stats, "images_per_s": images / stats["median_s"],
              "peak_memory_mb": memory.peak / 2 ** 20, "times_s": times}
    if hasattr(step, "report"):  # case-specific measurements over the timed iterations
        result.update(step.report(times))
    if flops is not None:
        result["gflop_per_step"] = flops / 1e9
        result["gflop_per_s"] = flops / 1e9 / stats["median_s"]
        result["fraction_of_peak"] = flops / stats["median_s"] / peak_flops
    return result


def ratios(module, results: List[dict]) -> List[dict]:
    by_key = {(r["model"], r["case"]): r for r in results}
    out = []
    for model in dict.fromkeys(r["model"] for r in results):
        for label, num, den, scale in module.RATIOS:
            if (model, num) in by_key and (model, den) in by_key:
                a, b = by_key[(model, num)], by_key[(model, den)]
                value = scale * b["images_per_s"] / a["images_per_s"]  # per-image time ratio
                out.append({"model": model, "ratio": label, "value": value})
    return out


def markdown(results: List[dict], ratio_rows: List[dict]) -> str:
    lines = ["| model | case | batch | median s | IQR s | min s | max s | it/s | img/s | "
             "GFLOP/step | GFLOP/s | % of peak | peak MB | % loader |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        flops = (f"{r['gflop_per_step']:.1f} | {r['gflop_per_s']:.1f} | "
                 f"{100 * r['fraction_of_peak']:.0f}" if "gflop_per_step" in r
                 else " | | ")
        loader = f"{100 * r['loader_share']:.1f}" if "loader_share" in r else ""
        lines.append(f"| {r['model']} | {r['case']} | {r['batch']} | {r['median_s']:.4f} | "
                     f"{r['iqr_s']:.4f} | {r['min_s']:.4f} | {r['max_s']:.4f} | "
                     f"{r['iters_per_s']:.3f} | {r['images_per_s']:.2f} | {flops} | "
                     f"{r['peak_memory_mb']:.0f} | {loader} |")
    if ratio_rows:
        lines += ["", "| model | ratio (median seconds per image) | value |", "|---|---|---:|"]
        lines += [f"| {r['model']} | {r['ratio']} | {r['value']:.2f} |" for r in ratio_rows]
    return "\n".join(lines)


def case_matches(name: str, pattern: str) -> bool:
    """Shell-style ``*`` and ``?``; brackets are literal, as in the case names
    (``text_encoding[7,authors]``)."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, name) is not None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="tools/benchmark.py", description=__doc__)
    parser.add_argument("--suite", choices=sorted(SUITES) + ["all"], default="detection")
    parser.add_argument("--model", action="append", metavar="KEY",
                        help="repeatable or comma separated; detection: tiny, RN101, RN50; "
                             "classification: tiny, ViT-B-16, RN50 (default: "
                             + "; ".join(f"{s}: {m}" for s, m in DEFAULT_MODELS.items()) + ")")
    parser.add_argument("--cases", action="append", metavar="GLOB",
                        help="only cases matching these patterns (* and ?; brackets are literal), "
                             "e.g. 'text_encoding*' or '*[7,*' (repeatable; default: all)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per case")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed iterations first (the first one counts FLOPs)")
    parser.add_argument("--crops", type=int, default=0,
                        help="crops per optimization step (default 60; 8 for big models on CPU)")
    parser.add_argument("--batch", type=int, default=0, help="images per step (default per case)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every case built from a config, e.g. "
                             "SOLVER.AMP.ENABLED True SOLVER.AMP.PRECISION bfloat16 "
                             "MODEL.COMPILE True (the train_loop cases run the Trainer's AMP step)")
    args = parser.parse_args(argv)
    if len(args.opts) % 2:
        raise SystemExit(f"--opts takes KEY VALUE pairs, got {args.opts}")
    if args.iters < 1 or args.warmup < 0 or args.crops < 0 or args.batch < 0:
        parser.error("--iters must be >= 1; --warmup, --crops and --batch >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    return args


def suite_models(args, suite: str) -> List[str]:
    keys = [k.strip() for v in (args.model or [DEFAULT_MODELS[suite]]) for k in v.split(",")
            if k.strip()]
    known = SUITES[suite].MODELS
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown --model {unknown} for the {suite} suite: choose from "
                         f"{sorted(known)}")
    return list(dict.fromkeys(keys))


def main(argv=None) -> Dict:
    args = parse_args(argv)
    for message in ("torch.meshgrid", "Converting a tensor with requires_grad"):
        warnings.filterwarnings("ignore", message=message)
    measured = peak_flops_per_s(args.device)
    peak = measured["peak"]
    print(f"{args.device}: {torch.get_num_threads()} CPU threads, torch {torch.__version__}; "
          f"fp32 peak {peak / 1e9:.1f} GFLOP/s (matmul {measured['matmul'] / 1e9:.1f}, 3x3 conv "
          f"{measured['conv'] / 1e9:.1f}); {args.warmup} warm-up + {args.iters} timed "
          f"iterations per case", flush=True)
    suites = sorted(SUITES) if args.suite == "all" else [args.suite]
    results, ratio_rows = [], []
    for suite in suites:
        module = SUITES[suite]
        cases = [(n, s) for n, s in module.CASES
                 if not args.cases or any(case_matches(n, g) for g in args.cases)]
        suite_results = []
        for key in suite_models(args, suite):
            ctx = Context(args, key)
            for name, setup in cases:
                r = time_case(ctx, name, setup, peak)
                suite_results.append({"suite": suite, **r})
                print(f"[{key}] {name}: median {r['median_s']:.4f} s ({r['batch']})", flush=True)
            del ctx
        results += suite_results
        ratio_rows += ratios(module, suite_results)
    print("\n" + markdown(results, ratio_rows))
    report = {"device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "peak_gflop_per_s": peak / 1e9,
              "matmul_gflop_per_s": measured["matmul"] / 1e9,
              "conv_gflop_per_s": measured["conv"] / 1e9,
              "iters": args.iters, "warmup": args.warmup, "opts": args.opts, "results": results,
              "ratios": ratio_rows}
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=2).encode()))
        print(f"\nwrote {args.json}")
    return report
