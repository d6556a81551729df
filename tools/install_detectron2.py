#!/usr/bin/env python
"""Install Detectron2 into the running Python environment unless one is already importable.

Detectron2 is not on PyPI. The wheel ``sal-detectron2==0.7.2`` is a packaged copy of upstream
detectron2 main (2024) tagged for CPython 3.10 only; its pure-Python code runs on newer Pythons
without the compiled ``detectron2._C`` (domaingen uses none of it: no deformable convolutions,
no rotated boxes). It is installed file-by-file into site-packages, then its dependencies.
An environment with its own detectron2 build (from source, with ``_C``) is left alone.
"""
import importlib.util
import subprocess
import sys
import sysconfig

WHEEL = "sal-detectron2==0.7.2"
# The wheel's declared dependencies, minus `black` (only for LazyConfig.save formatting) and its
# `numpy<2` pin (the pure-Python code runs on numpy 2, which current torch needs).
DEPENDENCIES = [
    "Pillow>=7.1", "matplotlib", "pycocotools>=2.0.2", "termcolor>=1.1", "yacs>=0.1.8",
    "tabulate", "cloudpickle", "tqdm>4.29.0", "tensorboard", "omegaconf>=2.1,<2.4",
    "hydra-core>=1.1", "packaging", "fvcore", "iopath",
]


def pip(*args: str) -> None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args])


def main() -> None:
    if importlib.util.find_spec("detectron2") is not None:
        print(f"detectron2 already importable from "
              f"{importlib.util.find_spec('detectron2').submodule_search_locations[0]}: skipped")
        return
    target = sysconfig.get_paths()["purelib"]
    pip("--no-deps", "--only-binary=:all:", "--python-version", "3.10", "--target", target, WHEEL)
    pip(*DEPENDENCIES)
    print(f"installed {WHEEL} (pure Python) into {target}")


if __name__ == "__main__":
    main()
