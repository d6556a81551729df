"""domaingen: CLIP-based domain generalization on Detectron2.

Importing the package registers its models and datasets with Detectron2's registries.
"""
import warnings

# fvcore (imported by Detectron2) scripts its focal losses at import, which torch 2.14 reports as
# deprecated on every run; the warning concerns neither domaingen nor its users.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                        category=FutureWarning, module="torch.jit._script")

from . import data, modeling  # noqa: E402,F401  (registration side effects)
from .config import add_domaingen_config  # noqa: E402

__all__ = ["add_domaingen_config"]
__version__ = "0.1.0"
