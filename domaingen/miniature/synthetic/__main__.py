"""Command line: ``python -m domaingen.miniature.synthetic [--kind diverse_weather|domains]
[--root DIR] ...``."""
import argparse
import os
from typing import Callable, Dict, Optional, Sequence

from domaingen.data.datasets.builtin import default_root

from .diverse_weather import generate_diverse_weather
from .domains import generate_domains


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
    splits = ", ".join(f"{d}/{sp}={n}" for d, splits in s["splits"].items()
                       for sp, n in splits.items())
    return (f"diverse_weather: {s['images']} images, {s['objects']} objects ({splits}) "
            f"at {s['root']}: {state}")


def _domains(args: argparse.Namespace) -> str:
    s = generate_domains(
        args.root or default_root(), seed=args.seed, num_per_class=args.num_per_class,
        image_size=args.side
    )
    state = f"wrote in {s['seconds']:.1f}s" if s["generated"] else "already up to date"
    shape = (f"{len(s['domains'])} domains x {len(s['classes'])} classes x "
             f"{s['params']['num_per_class']}")
    return f"domains: {s['images']} images ({shape}) at {s['root']}: {state}"


# kind -> function running the generator and returning a one-line summary
GENERATORS: Dict[str, Callable[[argparse.Namespace], str]] = {
    "diverse_weather": _diverse_weather,
    "domains": _domains,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m domaingen.miniature.synthetic", description=__doc__)
    p.add_argument("--kind", choices=sorted(GENERATORS), default="diverse_weather")
    p.add_argument(
        "--root",
        help="output folder (default: $DETECTRON2_DATASETS/synthetic_<kind>); "
        "for --kind domains the datasets root, which receives synthetic_domains/",
    )
    p.add_argument("--seed", type=int, default=0)
    dw = p.add_argument_group("diverse_weather")
    dw.add_argument("--num-train", type=int, default=160, help="daytime_clear train images")
    dw.add_argument("--num-test", type=int, default=40, help="daytime_clear test images")
    dw.add_argument("--num-target", type=int, default=40, help="train images per target domain")
    dw.add_argument("--image-size", type=int, nargs=2, default=(384, 216), metavar=("W", "H"))
    dom = p.add_argument_group("domains")
    dom.add_argument("--num-per-class", type=int, default=12, help="images per class and domain")
    dom.add_argument("--side", type=int, default=64, help="side of the square images in px")
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    print(GENERATORS[args.kind](args))


if __name__ == "__main__":
    main()
