"""Reading image files for every loader: EXIF orientation applied, 16-bit grey levels scaled to
8 bit (PIL's own conversion clips them, which turns a 16-bit PNG all white), and every failure
an ImageDecodeError naming the file."""
import logging
from typing import Optional

import numpy as np
import torch
from detectron2.data.detection_utils import convert_PIL_to_numpy
from detectron2.utils.file_io import PathManager
from PIL import Image, ImageFile, ImageOps

from domaingen.utils.errors import InputError

logger = logging.getLogger(__name__)

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
SKIP_HINT = "Fix or remove it, or set DATALOADER.SKIP_BAD_IMAGES True to skip unreadable " \
            "training images."


class ImageDecodeError(InputError, RuntimeError):
    """An image file that cannot be read; the message names the file."""


def image_extensions():
    """The file extensions of every format PIL decodes by itself (``.jpg``, ``.png``, ``.bmp``,
    ``.webp``, ``.tif``, ...): not its header-only stubs (HDF5, GRIB, WMF, ...), nor EPS (needs
    Ghostscript) and MPEG (PIL reads only its header)."""
    Image.init()
    return tuple(sorted(
        ext for ext, fmt in Image.registered_extensions().items()
        if fmt in Image.OPEN and fmt not in ("EPS", "MPEG")
        and not (isinstance(Image.OPEN[fmt][0], type)
                 and issubclass(Image.OPEN[fmt][0], ImageFile.StubImageFile))))


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with 16-bit grey levels scaled to 0..255 (65535 -> 255); 32-bit integer and
    float images, whose range is unknown, are refused."""
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.float64)
        return Image.fromarray(np.round(grey / 257.0).astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):
        raise OSError(f"its pixels are 32-bit {'integers' if image.mode == 'I' else 'floats'} "
                      f"(PIL mode {image.mode!r}) of unknown range; save it with 8 or 16 bits "
                      f"per channel")
    return image


def _decode(file_name: str, convert):
    """``convert(image)`` of the opened 8-bit image; any failure is an ImageDecodeError."""
    try:
        with PathManager.open(file_name, "rb") as f:
            return convert(to_8bit(ImageOps.exif_transpose(Image.open(f))))
    except Exception as e:  # PIL: unidentified, truncated or missing files; our 32-bit refusal
        raise ImageDecodeError(f"cannot read image {file_name}: {e}. {SKIP_HINT}") from e


def read_image(file_name: str, image_format: Optional[str] = "RGB") -> np.ndarray:
    """The image as an HWC uint8 array in ``image_format`` ("RGB", "BGR", "L", ... as
    Detectron2's ``read_image``); raises ImageDecodeError naming the file."""
    return _decode(file_name, lambda image: convert_PIL_to_numpy(image, image_format))


def read_rgb(file_name: str) -> torch.Tensor:
    """The image as a writable [H, W, 3] uint8 RGB tensor (no copy after decoding)."""
    return torch.from_numpy(_decode(file_name, lambda image: np.array(image.convert("RGB"))))


class BadImages:
    """What a training mapper does with an unreadable image: raise (the default) or, with
    ``skip``, log it and return None so that Detectron2's loader draws another image. Skipping
    every one of the ``num_images`` images of a dataset is an error: nothing is left to train."""

    def __init__(self, skip: bool = False, num_images: Optional[int] = None):
        self.skip = skip
        self.num_images = num_images
        self.skipped = set()

    def __call__(self, error: ImageDecodeError, file_name: str) -> None:
        if not self.skip:
            raise error
        self.skipped.add(file_name)
        if self.num_images is not None and len(self.skipped) >= self.num_images:
            raise ImageDecodeError(
                f"all {self.num_images} training images are unreadable (DATALOADER.SKIP_BAD_IMAGES "
                f"skipped every one; the last: {file_name}: {error.__cause__ or error}): nothing "
                f"to train on. Check the image files of DATASETS.TRAIN.") from error
        logger.warning(f"skipped unreadable image {file_name} ({error.__cause__ or error}); "
                       f"{len(self.skipped)} skipped so far in this worker")
