#!/usr/bin/env python
"""Run a trained detector on images and write the detections drawn over them.

    python tools/demo.py --config-file configs/quick/diverse_weather_clip_gap.yaml \
        --input photo.jpg more_photos/ --output demo_out \
        MODEL.WEIGHTS output/quick/diverse_weather_clip_gap/model_final.pth

Each image is read in INPUT.FORMAT, resized like Detectron2's DefaultPredictor
(ResizeShortestEdge to INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST), and written as
``--output/<name>.jpg`` at its original size with the detections scoring at least
``--confidence-threshold``. Class names come from the metadata of DATASETS.TEST[0] (else TRAIN[0]).
"""
import argparse
import os
import time

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # domaingen/utils/process.py

import cv2  # noqa: E402
import torch  # noqa: E402
from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.data import transforms as T  # noqa: E402
from detectron2.utils.visualizer import Visualizer  # noqa: E402

from domaingen.data.images import ImageDecodeError, read_image  # noqa: E402
from domaingen.engine import (  # noqa: E402
    AtomicCheckpointer,
    CheckpointError,
    ConfigError,
    Trainer,
    load_config,
)
from domaingen.engine.cli import run_tool  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--input", nargs="+", required=True,
                        help="image files, or folders whose images are all used")
    parser.add_argument("--output", required=True, help="folder for the annotated JPEGs")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing files in --output (never the input images)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="minimum score of a drawn detection")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pth")
    return parser.parse_args(argv)


def list_images(inputs):
    """Files of ``inputs``, folders expanded to their image files (sorted); missing paths fail."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise SystemExit(f"error: input folder {item} holds no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise SystemExit(f"error: input {item} does not exist")
    return paths


def check_outputs(inputs, outputs, overwrite: bool) -> None:
    """Refuse, before writing anything, an output that would replace an input image, or (without
    ``--overwrite``) any existing file."""
    sources = {os.path.realpath(p): p for p in inputs}
    for out in outputs:
        if os.path.realpath(out) in sources:
            raise SystemExit(f"error: {out} would replace the input image "
                             f"{sources[os.path.realpath(out)]}: choose an --output folder that "
                             f"holds none of the inputs")
        if os.path.lexists(out) and not overwrite:
            raise SystemExit(f"error: {out} exists: choose an empty --output folder, or pass "
                             f"--overwrite to replace the files of an earlier demo run")


def output_names(paths):
    """``<stem>.jpg`` for each path, with ``_1``, ``_2``... added where stems repeat."""
    names, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(f"{stem}.jpg" if count == 0 else f"{stem}_{count}.jpg")
    return names


class Predictor:
    """Detectron2's DefaultPredictor on a domaingen model loaded with AtomicCheckpointer."""

    def __init__(self, cfg):
        if not cfg.MODEL.WEIGHTS:
            raise SystemExit("error: MODEL.WEIGHTS is empty: pass a trained checkpoint, "
                             "e.g. `MODEL.WEIGHTS output/.../model_final.pth` after the options")
        if not os.path.isfile(cfg.MODEL.WEIGHTS):
            raise SystemExit(f"error: MODEL.WEIGHTS {cfg.MODEL.WEIGHTS} does not exist")
        self.model = Trainer.build_model(cfg)
        self.model.eval()
        try:
            AtomicCheckpointer(self.model, strict=True).load(cfg.MODEL.WEIGHTS)
        except CheckpointError as e:
            raise SystemExit(f"error: {e}") from e
        self.resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT

    @torch.no_grad()
    def __call__(self, image):
        """``image``: HxWx3 uint8 in INPUT.FORMAT -> Instances in the image's coordinates."""
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        return self.model([{"image": tensor, "height": height, "width": width}])[0]["instances"]


def to_rgb(image, image_format: str):
    """An image read in ``image_format`` as RGB (what Visualizer draws on)."""
    if image_format == "BGR":
        return image[:, :, ::-1]
    if image_format == "L":
        return image.repeat(3, axis=2)
    return image


def main(argv=None):
    args = parse_args(argv)
    if not 0.0 <= args.confidence_threshold <= 1.0:
        raise SystemExit(f"error: --confidence-threshold must be in [0, 1], "
                         f"got {args.confidence_threshold}")
    paths = list_images(args.input)
    try:
        cfg = load_config(args.config_file, args.opts)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from e
    predictor = Predictor(cfg)
    datasets = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
    metadata = MetadataCatalog.get(datasets[0] if datasets else "__unused")
    outputs = [os.path.join(args.output, name) for name in output_names(paths)]
    check_outputs(paths, outputs, args.overwrite)
    os.makedirs(args.output, exist_ok=True)
    for path, out_path in zip(paths, outputs):
        try:
            image = read_image(path, cfg.INPUT.FORMAT)  # 16-bit grey scaled to 8 bit
        except ImageDecodeError as e:
            raise SystemExit(f"error: cannot decode image {path}: {e.__cause__}") from e
        start = time.perf_counter()
        instances = predictor(image).to("cpu")
        instances = instances[instances.scores >= args.confidence_threshold]
        elapsed = time.perf_counter() - start
        visualizer = Visualizer(to_rgb(image, cfg.INPUT.FORMAT), metadata)
        drawn = visualizer.draw_instance_predictions(instances).get_image()
        if not cv2.imwrite(out_path, drawn[:, :, ::-1]):
            raise SystemExit(f"error: could not write {out_path}")
        print(f"{path}: {len(instances)} detections (score >= {args.confidence_threshold}) "
              f"in {elapsed:.2f}s -> {out_path}", flush=True)


if __name__ == "__main__":
    run_tool(main)
