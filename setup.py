"""domaingen: CLIP-based domain generalization (CLIP the Gap, AD-CLIP, SPG) on Detectron2.

Detectron2 itself is not on PyPI and is deliberately not a dependency here: `make setup`
installs it (see README), or bring your own build.
"""
from setuptools import find_packages, setup

setup(
    name="domaingen",
    version="0.1.0",
    description="CLIP-based domain generalization for Detectron2: CLIP the Gap, AD-CLIP, SPG",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[*find_packages(include=["domaingen", "domaingen.*"]), "domaingen.configs"],
    # The top-level configs/ ships as domaingen.configs (domaingen.config.get_config_file).
    package_dir={"domaingen.configs": "configs"},
    package_data={"domaingen.clip": ["model_configs/*.json"], "domaingen.configs": ["**/*.yaml"]},
    install_requires=[
        "torch>=2.1",
        "torchvision",
        "open_clip_torch>=3.2,<4",
        "fvcore",
        "iopath",
        "pycocotools",
        "opencv-python-headless",
        "matplotlib",
        "tensorboard",
        "tabulate",
        "numpy",
    ],
    extras_require={"test": ["pytest", "ruff==0.17.6"]},
    entry_points={
        "console_scripts": [
            "domaingen-train=domaingen.engine.cli:run_cli",
            "domaingen-synthetic=domaingen.miniature.synthetic.__main__:main",
        ]
    },
)
