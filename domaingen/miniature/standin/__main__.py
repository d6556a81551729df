"""``python -m domaingen.miniature.standin``: train (or find) a semantic stand-in CLIP."""
import argparse
import json
import os

from domaingen.engine.console import console_logging

from . import RECIPES, standin_path, train_standin_clip
from . import __doc__ as STANDIN_DOC


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m domaingen.miniature.standin",
                                description=STANDIN_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="domaingen-semantic-RN", choices=sorted(RECIPES))
    p.add_argument("--output", help="default: the cache path $DOMAINGEN_CACHE/standin-...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int)
    p.add_argument("--force", action="store_true", help="retrain even if OUTPUT exists")
    args = p.parse_args(argv)
    console_logging()  # the build's progress with an ETA
    output = args.output or standin_path(args.model, seed=args.seed)
    if os.path.exists(output) and not args.force:
        print(f"stand-in CLIP: {output} exists (--force retrains)")
        return
    r = train_standin_clip(args.model, output, seed=args.seed, steps=args.steps)
    print(json.dumps({k: r[k] for k in ("train_seconds", "final_loss", "zero_shot_top1",
                                        "alignment")},
                     indent=1))


if __name__ == "__main__":
    main()
