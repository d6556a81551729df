"""The package's shape: the core layers import nothing from the miniature world, the package
changes nothing process-wide at import, and a built wheel ships the configs that
``get_config_file`` finds."""
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CORE = ("clip", "config", "data", "engine", "evaluation", "methods", "modeling", "utils")


def test_the_core_layers_import_nothing_from_the_miniature_world():
    found = []
    for layer in CORE:
        for path in glob.glob(os.path.join(REPO, "domaingen", layer, "**", "*.py"), recursive=True):
            with open(path, encoding="utf-8") as f:
                if re.search(r"^\s*(from|import) domaingen\.miniature", f.read(), re.M):
                    found.append(os.path.relpath(path, REPO))
    assert not found


def test_importing_the_package_sets_nothing_process_wide():
    code = ("import os, warnings, logging; import detectron2.engine, detectron2.evaluation, "
            "open_clip, matplotlib, cv2, tabulate; "  # the libraries add filters of their own
            "before = len(warnings.filters); import domaingen; "
            "print(len(warnings.filters) - before, 'THP_MEM_ALLOC_ENABLE' in os.environ, "
            "len(logging.getLogger('torch.fx._symbolic_trace').filters))")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split()
    assert out == ["0", "False", "0"]


@pytest.mark.slow
def test_a_built_wheel_ships_the_configs_get_config_file_finds(tmp_path):
    source = tmp_path / "src"  # a copy: building writes build/ and egg-info next to setup.py
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name if source.exists() else
                    (source.mkdir() or source / name))
    for name in ("domaingen", "configs"):
        shutil.copytree(os.path.join(REPO, name), source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True)
    (wheel,) = glob.glob(str(tmp_path / "dist" / "domaingen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"domaingen/configs/Base-CLIP-RCNN-C4.yaml",
            "domaingen/configs/quick/diverse_weather_clip_rcnn.yaml",
            "domaingen/clip/model_configs/domaingen-tiny-RN.json"} <= set(names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), wheel], check=True, capture_output=True)
    code = ("from domaingen.config import get_config_file; "
            "print(get_config_file('quick/diverse_weather_clip_rcnn.yaml'))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.strip()
    assert out == str(site / "domaingen" / "configs" / "quick" / "diverse_weather_clip_rcnn.yaml")
