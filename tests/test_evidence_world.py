"""The miniature world v2 leaves the class to the shape: a probe on colour statistics alone stays
near chance on the synthetic domains, and reads a class-coloured copy of them."""
import glob
import os

import cv2
import numpy as np

from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS_CLASSES
from domaingen.miniature.evidence.acceptance import _colour_statistics, _probe
from domaingen.miniature.synthetic.domains import generate_domains


def _load(root):
    images, labels = [], []
    for path in sorted(glob.glob(os.path.join(root, "synthetic_domains", "*", "*", "*.jpg"))):
        images.append(cv2.imread(path))
        labels.append(SYNTHETIC_DOMAINS_CLASSES.index(os.path.basename(os.path.dirname(path))))
    return np.stack(images), np.array(labels)


def test_colour_alone_does_not_tell_the_class(tmp_path):
    generate_domains(str(tmp_path / "train"), seed=0, num_per_class=24, image_size=32)
    generate_domains(str(tmp_path / "val"), seed=1, num_per_class=12, image_size=32)
    (train, train_y), (val, val_y) = _load(str(tmp_path / "train")), _load(str(tmp_path / "val"))
    colour = _probe(_colour_statistics(train), train_y, _colour_statistics(val), val_y)
    assert colour <= 32.0  # chance is 20 %

    def tint(images, labels):  # class-coded colour, as in version 1 of the world
        hue = (np.array([0, 36, 72, 108, 144])[labels][:, None, None, None] + 0 * images)
        hsv = np.stack([cv2.cvtColor(i, cv2.COLOR_BGR2HSV) for i in images])
        hsv[..., :1] = hue[..., :1]
        return np.stack([cv2.cvtColor(i, cv2.COLOR_HSV2BGR) for i in hsv])

    coded = _probe(_colour_statistics(tint(train, train_y)), train_y,
                   _colour_statistics(tint(val, val_y)), val_y)
    assert coded >= 70.0  # the sketches, grey, keep no tint
