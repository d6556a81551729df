#!/usr/bin/env python
"""Images and objects of registered detection datasets.

    python tools/dataset_stats.py diverse_weather_daytime_clear_test \\
        diverse_weather_night_rainy_train

Per dataset: the images its split lists, those holding at least one object (what
DATASETS.DROP_EMPTY_TEST_IMAGES keeps), and the objects per class.
"""
import argparse
import os
from collections import Counter

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from domaingen.engine.cli import run_tool  # noqa: E402  (registers the datasets too)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="registered dataset names")
    for name in parser.parse_args(argv).datasets:
        dicts = DatasetCatalog.get(name)
        classes = MetadataCatalog.get(name).thing_classes
        objects = Counter(classes[a["category_id"]] for d in dicts for a in d["annotations"])
        with_objects = sum(1 for d in dicts if d["annotations"])
        print(f"{name}: {len(dicts)} images, {with_objects} with objects, "
              f"{len(dicts) - with_objects} without; objects: "
              + ", ".join(f"{c} {objects[c]}" for c in classes))


if __name__ == "__main__":
    run_tool(main)
