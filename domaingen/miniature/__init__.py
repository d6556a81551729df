"""The miniature world: synthetic datasets in the real benchmarks' layouts, the captioned
pretraining world and the semantic stand-in CLIPs trained on it, and the evidence protocol.
The core layers import nothing from here; importing it registers ``MODEL.CLIP.WEIGHTS
standin``."""
from . import standin  # noqa: F401  (registers the "standin" weights)
