#!/usr/bin/env python
"""Fixed-seed digests of every method: proof that a refactor changed no number.

    python tools/digests.py record output/digests/after.json        # ~5 min on 2 CPU cores
    python tools/digests.py compare tools/digests_reference.json output/digests/after.json

``record`` generates small synthetic datasets, runs short fixed-seed trainings of the baseline
detector, CLIP the Gap (with its optimization step), ZS-CLIP, CoOp, CoCoOp, the SPG pipeline
(both stages) and AD-CLIP through the command-line tools (each in its own process, as a user
runs them), and writes the sha256 of every trained tensor (model weights, the augmentation bank,
the domain prompt labels) and of every results table. ``compare`` prints the entries that differ
and exits 1 if any does. Digests depend on the machine (CPU kernels, thread count) and on the
work folder (SPG's evaluation noise is seeded by image paths): compare records made on the same
machine with the same ``--work`` (default ``$TMPDIR/domaingen-digests``, emptied first).
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join(REPO, "tools", "train_net.py")
SPG_PIPELINE = os.path.join(REPO, "tools", "spg_pipeline.py")
GENERATOR = "domaingen.miniature.synthetic"
MARKER = ".domaingen-digests"  # marks a work folder this tool made (and may empty)

DETECTION = ["DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "12",
             "SOLVER.STEPS", "(8,)", "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "12",
             "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32"]
CLASSIFICATION = ["SOLVER.MAX_ITER", "8", "SOLVER.WARMUP_ITERS", "2",
                  "SOLVER.CHECKPOINT_PERIOD", "8"]
# name -> (command line after the interpreter, files whose tensors or bytes are digested)
CASES = {
    "clip_rcnn": ([TRAIN_NET, "--config-file", "configs/quick/diverse_weather_clip_rcnn.yaml",
                   *DETECTION], ["model_final.pth", "results.csv"]),
    "clip_gap": ([TRAIN_NET, "--config-file", "configs/quick/diverse_weather_clip_gap.yaml",
                  *DETECTION, "MODEL.CLIP_GAP.OPT_ITERS", "4"],
                 ["model_final.pth", "augmentation_bank.pth", "results.csv"]),
    "zsclip": ([TRAIN_NET, "--config-file", "configs/quick/synthetic_domains_zsclip.yaml"],
               ["results.csv"]),
    "coop": ([TRAIN_NET, "--config-file", "configs/quick/synthetic_domains_coop.yaml",
              *CLASSIFICATION], ["model_final.pth", "results.csv"]),
    "cocoop": ([TRAIN_NET, "--config-file", "configs/quick/synthetic_domains_cocoop.yaml",
                *CLASSIFICATION], ["model_final.pth", "results.csv"]),
    "adclip": ([TRAIN_NET, "--config-file", "configs/quick/synthetic_domains_adclip.yaml",
                *CLASSIFICATION], ["model_final.pth", "results.csv"]),
    "spg": ([SPG_PIPELINE, "--dataset", "synthetic_domains", "--target", "sketch",
             "SOLVER.MAX_ITER", "6", "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "6",
             "TEST.EVAL_PERIOD", "3"],
            ["sketch/stage1/photo/domain_prompt.pt", "sketch/stage1/cartoon/domain_prompt.pt",
             "sketch/stage1/painting/domain_prompt.pt", "sketch/stage2/model_final.pth",
             "sketch/stage2/results.json", "results.md"]),
}


def tensor_digest(obj, h) -> None:
    """Feed ``obj`` (nested dicts/lists of tensors and plain values) into ``h`` in a fixed
    order; for checkpoints only the ``model`` entry (optimizer and trainer state are not
    numbers a user sees)."""
    import torch

    if isinstance(obj, dict):
        for key in sorted(obj, key=str):
            h.update(f"<{key}>".encode())
            tensor_digest(obj[key], h)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            tensor_digest(item, h)
    elif isinstance(obj, torch.Tensor):
        h.update(f"{obj.dtype}{tuple(obj.shape)}".encode())
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    else:
        h.update(repr(obj).encode())


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    if path.endswith((".pth", ".pt")):
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        tensor_digest(state.get("model", state) if isinstance(state, dict) else state, h)
    else:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def prepare_work(work: str) -> None:
    """An empty work folder: a new one, or one this tool made before (emptied)."""
    if os.path.exists(work):
        if not os.path.isfile(os.path.join(work, MARKER)):
            raise SystemExit(f"--work {work} exists and was not made by tools/digests.py: "
                             f"name a new folder")
        shutil.rmtree(work)
    os.makedirs(work)
    open(os.path.join(work, MARKER), "w").close()


def record(out: str, work: str, cases) -> dict:
    from domaingen.utils.files import tree_sha256

    prepare_work(work)
    env = {**os.environ, "DETECTRON2_DATASETS": os.path.join(work, "datasets")}
    python = sys.executable
    digests = {}
    for kind, extra in (("diverse_weather", ["--num-train", "12", "--num-test", "4",
                                             "--num-target", "4"]),
                        ("domains", ["--num-per-class", "6"])):
        subprocess.run([python, "-m", GENERATOR, "--kind", kind, *extra], env=env, check=True,
                       cwd=REPO)
    digests["data"] = tree_sha256(env["DETECTRON2_DATASETS"])  # the data read by every case
    for name in cases:
        argv, files = CASES[name]
        output = os.path.join(work, name)
        if argv[0] == SPG_PIPELINE:  # its flags go before the config overrides
            argv = [argv[0], "--output-dir", output, *argv[1:]]
        else:
            argv = [*argv, "OUTPUT_DIR", output]
        print(f"== {name}", flush=True)
        subprocess.run([python, *argv], env=env, check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        for f in files:
            digests[f"{name}/{f}"] = file_digest(os.path.join(output, f))
    text = json.dumps(digests, indent=1, sort_keys=True) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(text)
    return digests


def compare(a: str, b: str) -> int:
    with open(a) as f:
        first = json.load(f)
    with open(b) as f:
        second = json.load(f)
    differ = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
    for key in differ:
        print(f"DIFFERENT {key}: {first.get(key)} != {second.get(key)}")
    print(f"{len(first.keys() & second.keys()) - len(differ)} identical, {len(differ)} different")
    return 1 if differ else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="run every case and write the digests as JSON")
    r.add_argument("output")
    r.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "domaingen-digests"),
                   help="folder for data and runs (emptied first; default: %(default)s)")
    r.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    c = sub.add_parser("compare", help="print the entries that differ; exit 1 if any")
    c.add_argument("first")
    c.add_argument("second")
    args = p.parse_args(argv)
    if args.command == "compare":
        raise SystemExit(compare(args.first, args.second))
    record(args.output, args.work, args.cases)


if __name__ == "__main__":
    main()
