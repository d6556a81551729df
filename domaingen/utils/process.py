"""What the entry points (``tools/*.py``) set for their process; importing domaingen sets
nothing process-wide.

Each tool starts, before it imports torch or domaingen, with::

    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)

Transparent huge pages for large CPU tensors (torch reads the variable once, at start; the
detector's ROI head allocates and frees hundreds of MB per layer: docs/performance.md; opt out
with THP_MEM_ALLOC_ENABLE=0), and silence for the deprecation warning fvcore's import triggers.
Then :func:`quiet_library_messages`.
"""
import logging
import warnings


def _not_fx_tracing_question(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("is_fx_tracing will return true")


def quiet_library_messages() -> None:
    """Silence the two messages torch 2.14 prints on every detector run about Detectron2's code:
    its anchor generator's ``torch.meshgrid`` without ``indexing`` (its "ij" default is what it
    needs) and its ROI pooler asking torch.fx whether it is tracing. Only these two."""
    warnings.filterwarnings("ignore", message="torch.meshgrid: in an upcoming release",
                            category=UserWarning)
    logging.getLogger("torch.fx._symbolic_trace").addFilter(_not_fx_tracing_question)
