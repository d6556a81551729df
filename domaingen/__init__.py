"""domaingen: CLIP-based domain generalization on Detectron2.

Importing the package registers its models and datasets with Detectron2's registries.
"""
import logging
import os
import sys
import warnings

# Large CPU tensors in transparent huge pages (torch reads this once, when it starts, so only
# where domaingen is imported first). The detector's ROI head allocates and frees hundreds of
# MB per layer; with 4 KiB pages the kernel spends much of an iteration faulting in pages
# (README, Performance: RN101 training iterations 1.26x faster on 2 CPU cores, no more memory).
# Opt out with THP_MEM_ALLOC_ENABLE=0; where the kernel has THP "never", nothing changes.
if "torch" not in sys.modules:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

# fvcore (imported by Detectron2) scripts its focal losses at import, which torch 2.14 reports as
# deprecated on every run; the warning concerns neither domaingen nor its users.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                        category=FutureWarning, module="torch.jit._script")
# Detectron2's anchor generator calls torch.meshgrid without ``indexing`` (its "ij" default is
# what it needs) and its ROI pooler asks torch.fx whether it is tracing; torch 2.14 warns about
# both on every training run. Only these two messages are silenced.
warnings.filterwarnings("ignore", message="torch.meshgrid: in an upcoming release",
                        category=UserWarning)
logging.getLogger("torch.fx._symbolic_trace").addFilter(
    lambda record: not record.getMessage().startswith("is_fx_tracing will return true"))

from . import data, modeling  # noqa: E402,F401  (registration side effects)
from .config import add_domaingen_config  # noqa: E402

__all__ = ["add_domaingen_config"]
__version__ = "0.1.0"
