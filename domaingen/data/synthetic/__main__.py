"""Command line: ``python -m domaingen.data.synthetic [--kind diverse_weather] [--root DIR] ...``."""
import argparse
import os
from typing import Callable, Dict, Optional, Sequence

from ..datasets.builtin import default_root
from .diverse_weather import generate_diverse_weather


def _diverse_weather(args: argparse.Namespace) -> str:
    s = generate_diverse_weather(
        args.root or os.path.join(default_root(), "synthetic_diverse_weather"),
        seed=args.seed,
        num_train=args.num_train,
        num_test=args.num_test,
        num_target=args.num_target,
        image_size=tuple(args.image_size),
    )
    state = f"wrote in {s['seconds']:.1f}s" if s["generated"] else "already up to date"
    splits = ", ".join(f"{d}/{sp}={n}" for d, splits in s["splits"].items() for sp, n in splits.items())
    return f"diverse_weather: {s['images']} images, {s['objects']} objects ({splits}) at {s['root']}: {state}"


# kind -> function running the generator and returning a one-line summary
GENERATORS: Dict[str, Callable[[argparse.Namespace], str]] = {"diverse_weather": _diverse_weather}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m domaingen.data.synthetic", description=__doc__)
    p.add_argument("--kind", choices=sorted(GENERATORS), default="diverse_weather")
    p.add_argument("--root", help="output folder (default: $DETECTRON2_DATASETS/synthetic_<kind>)")
    p.add_argument("--seed", type=int, default=0)
    dw = p.add_argument_group("diverse_weather")
    dw.add_argument("--num-train", type=int, default=160, help="daytime_clear train images")
    dw.add_argument("--num-test", type=int, default=40, help="daytime_clear test images")
    dw.add_argument("--num-target", type=int, default=40, help="train images per target domain")
    dw.add_argument("--image-size", type=int, nargs=2, default=(384, 216), metavar=("W", "H"))
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    print(GENERATORS[args.kind](args))


if __name__ == "__main__":
    main()
