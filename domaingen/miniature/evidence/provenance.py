"""What an evidence result was computed from: the code (commit and whether the checkout had
uncommitted changes), the stand-in CLIPs' weights, the generated data, the package versions,
the thread count and the CPU. A cached result is reused only when all of it matches."""
import os
import platform
import subprocess
from typing import Iterable, Mapping

import torch

from domaingen.utils.files import tree_sha256


def code_state() -> dict:
    """``{"commit", "dirty"}`` of the checkout domaingen runs from ("" and None when it is not
    one, e.g. an installed wheel)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def git(*args):
        return subprocess.run(["git", "-C", here, *args], capture_output=True, text=True,
                              timeout=60)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return {"commit": "", "dirty": None}
        changes = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "", "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(changes)}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions of what computes the numbers, the thread count and the CPU."""
    import cv2
    import detectron2
    import numpy
    import open_clip
    import PIL

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "opencv": cv2.__version__,
            "open_clip": open_clip.__version__, "detectron2": detectron2.__version__,
            "pillow": PIL.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model()}


def provenance(standin_reports: Mapping[str, dict], data_folders: Iterable[str]) -> dict:
    """The provenance record of an evidence run: :func:`code_state`, :func:`environment`, each
    stand-in's weights sha256 (from its report) and each data folder's content sha256 (its
    absolute path included: SPG's evaluation noise is seeded by the images' paths)."""
    return {**code_state(), "environment": environment(),
            "standins": {name: r.get("sha256", "") for name, r in standin_reports.items()},
            "data": {os.path.abspath(folder): tree_sha256(folder) for folder in data_folders}}
