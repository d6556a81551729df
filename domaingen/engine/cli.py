"""``tools/train_net.py``, and the one error path of every tool."""
import contextlib

from detectron2.data.detection_utils import SizeMismatchError
from detectron2.engine import default_argument_parser

from domaingen.utils.errors import InputError
from domaingen.utils.process import quiet_library_messages

from .launch import launch
from .runner import run
from .setup import setup

EPILOG = """\
Examples:
  tools/train_net.py --config-file configs/quick/diverse_weather_clip_gap.yaml
  tools/train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS OUTPUT_DIR/model_final.pth
  tools/train_net.py --config-file CONFIG --resume          continue from OUTPUT_DIR
  tools/train_net.py --config-file CONFIG REPRODUCE_AUTHORS True     the authors' behaviour
  tools/train_net.py --config-file CONFIG --num-gpus 2      2 processes: GPUs, or the CPU (gloo)
  torchrun --nproc-per-node 2 tools/train_net.py --config-file CONFIG --dist-url env://

Trailing KEY VALUE pairs override the config (after the flags). --num-gpus N starts N processes;
without a GPU they train on the CPU with gloo. Several machines: --num-machines M --machine-rank R
--dist-url tcp://HOST:PORT on each. The console shows progress and results; OUTPUT_DIR/log.txt
has the whole log.

Other tools: tools/spg_pipeline.py (SPG's two stages), tools/optimize_augmentations.py (CLIP the
Gap's optimization step alone), tools/demo.py, tools/convert_clip_gap_checkpoint.py,
tools/compare_results.py, tools/evidence.py, tools/benchmark.py. Docs: docs/getting_started.md.
"""
DESCRIPTION = ("Train or evaluate a domaingen config (CLIP the Gap, ZS-CLIP, CoOp, CoCoOp, SPG, "
               "AD-CLIP) on Detectron2's trainer.")

# Errors about the user's input whose message says all: printed as one line, no traceback.
# Detectron2's SizeMismatchError (an image whose size differs from its annotation) is one too.
INPUT_ERRORS = (InputError, SizeMismatchError)


@contextlib.contextmanager
def one_line_errors():
    """End the process with the one-line message (exit status 1) of an error in the user's
    input; other errors keep their traceback."""
    try:
        yield
    except INPUT_ERRORS as e:
        raise SystemExit(f"{type(e).__name__}: {e}") from None


def run_tool(main, *args):
    """A tool's ``main(*args)`` with the library messages quieted and one-line input errors."""
    quiet_library_messages()
    with one_line_errors():
        return main(*args)


def argument_parser():
    """Detectron2's standard arguments, ``--verbose``, and help for domaingen's use."""
    parser = default_argument_parser(epilog=EPILOG)
    parser.description = DESCRIPTION
    parser.add_argument("--verbose", action="store_true",
                        help="print the whole log on the console (environment, config, model, "
                             "per-class tables); OUTPUT_DIR/log.txt always has it")
    return parser


def main(args):
    """Train (or with ``--eval-only`` evaluate) the model the config describes."""
    cfg = setup(args)
    return run(cfg, resume=args.resume, eval_only=args.eval_only, args=args,
               verbose=getattr(args, "verbose", False)).results


def run_cli(argv=None):
    """Parse the arguments and launch ``main`` (1..N processes, or torchrun)."""
    run_tool(launch, main, argument_parser().parse_args(argv))
