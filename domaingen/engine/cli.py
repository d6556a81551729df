"""``tools/train_net.py``, and the one error path of every tool."""
import contextlib

from detectron2.data.detection_utils import SizeMismatchError
from detectron2.engine import default_argument_parser

from domaingen.utils.errors import InputError
from domaingen.utils.process import quiet_library_messages

from .launch import launch
from .runner import run
from .setup import setup

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


def main(args):
    """Train (or with ``--eval-only`` evaluate) the model the config describes."""
    cfg = setup(args)
    return run(cfg, resume=args.resume, eval_only=args.eval_only, args=args).results


def run_cli(argv=None):
    """Parse Detectron2's standard arguments and launch ``main`` (1..N processes, or torchrun)."""
    run_tool(launch, main, default_argument_parser().parse_args(argv))
