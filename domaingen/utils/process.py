"""What the entry points set for their process; importing domaingen sets nothing process-wide.

Each tool starts, before it imports torch or domaingen, with
``os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")``: transparent huge pages for large CPU
tensors (torch reads the variable once, at start; the detector's ROI head allocates and frees
hundreds of MB per layer: docs/performance.md; opt out with THP_MEM_ALLOC_ENABLE=0). Then
:func:`quiet_library_messages` (``domaingen.engine.cli.run_tool`` calls it)."""
import contextlib
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


def _not_missing_cuda_runtime(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No CUDA runtime is found")


@contextlib.contextmanager
def quiet_library_imports():
    """Within the block (``import domaingen``, Detectron2's environment report): no warning for
    torch 2.14's deprecation of the ``torch.jit.script`` that fvcore calls at import, and no
    "No CUDA runtime is found" from torch's extension module on a CPU-only machine. Everything
    is as before afterwards."""
    extension_logger = logging.getLogger("torch.utils.cpp_extension")
    extension_logger.addFilter(_not_missing_cuda_runtime)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
            yield
    finally:
        extension_logger.removeFilter(_not_missing_cuda_runtime)
