"""What a run prints: the console shows what a user acts on (what is built from which weights and
data, progress with an ETA, result tables, where the outputs went); ``log.txt`` holds everything
(environment, full config, model, per-class tables). ``--verbose`` prints everything."""
import contextlib
import logging
import os
import sys

from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

LOGGERS = ("detectron2", "fvcore", "domaingen")
# Loggers whose information reaches the console; warnings and errors always do.
CONSOLE = ("domaingen", "detectron2.utils.events", "detectron2.engine.hooks",
           "detectron2.evaluation.evaluator")


class ConsoleFilter(logging.Filter):
    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or record.levelno >= logging.WARNING:
            return True
        return not getattr(record, "file_only", False) and record.name.startswith(CONSOLE)


class PlainConsoleFormatter(logging.Formatter):
    """Detectron2's console layout without colour codes: ``[time d2.module]: message``."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        for long, short in (("detectron2", "d2"), ("domaingen", "dg")):
            if name == long or name.startswith(long + "."):
                name = short + name[len(long):]
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        text = f"{level}[{self.formatTime(record, '%m/%d %H:%M:%S')} {name}]: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def console_logging(name: str = "domaingen") -> logging.Logger:
    """Detectron2's console logging for ``name`` (once per process; colour only on a
    terminal): tools call it for their own progress lines."""
    return setup_logger(distributed_rank=comm.get_rank(), name=name, color=sys.stdout.isatty(),
                        abbrev_name="dg" if name == "domaingen" else None)


@contextlib.contextmanager
def run_logging(output_dir: str, verbose: bool = False):
    """Console logging as above (colour only on a terminal), plus this run's ``log.txt``
    (``log.txt.rankN`` on the other processes), for the duration of the block."""
    rank = comm.get_rank()
    for name in LOGGERS:
        console_logging(name)
    console = ConsoleFilter(verbose)
    streams = [h for name in LOGGERS for h in logging.getLogger(name).handlers
               if type(h) is logging.StreamHandler]
    os.makedirs(output_dir, exist_ok=True)
    log_file = logging.FileHandler(os.path.join(output_dir,
                                                "log.txt" + (f".rank{rank}" if rank else "")))
    log_file.setFormatter(logging.Formatter(
        "[%(asctime)s] %(name)s %(levelname)s: %(message)s", datefmt="%m/%d %H:%M:%S"))
    for handler in streams:
        handler.addFilter(console)
        if not sys.stdout.isatty():
            handler.setFormatter(PlainConsoleFormatter())
    for name in LOGGERS:
        logging.getLogger(name).addHandler(log_file)
    try:
        yield
    finally:
        for handler in streams:
            handler.removeFilter(console)
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(log_file)
        log_file.close()
