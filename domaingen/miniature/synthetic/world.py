"""The pretraining world of the semantic stand-in CLIPs: captioned images of every domain.

Like real CLIP's web data, it shows every domain: object-centred street scenes of the 7 Diverse
Weather classes in the 5 weather domains, each target weather at a strength of 0.25-1 with
words for a weak or a strong one ("a car in light fog", "a truck in thick fog"), and the 5
shapes of the synthetic classification domains in their 5 styles, in colours drawn whatever the
class. Each caption names the object and the domain in varied wording; shape captions come with
a prefix and suffix of 0-13 words, so that class words and the end of the text fall at every
token position up to 30 (prompt learners put them as late as position 14).
The detectors and prompt learners trained later see only their source domains. Seeds are
``WORLD_SEED`` and above (the evaluation sets use seeds below 1000), scenes are framed around
one object, and object sizes, positions and colours are drawn afresh, so no evaluation image
appears here.
"""
from typing import List, Tuple

import cv2
import numpy as np

from domaingen.data.datasets.builtin import DIVERSE_WEATHER_CLASSES, DIVERSE_WEATHER_DOMAINS
from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS, SYNTHETIC_DOMAINS_CLASSES

from .diverse_weather import _DRAW, _background, _Frame
from .domains import _STYLES, _shape_mask
from .weather_styles import stylize

__all__ = ["WORLD_SEED", "STREET_PHRASES", "SHAPE_CAPTIONS", "render_world"]

WORLD_SEED = 1000

# Ways of saying each weather domain at full strength; a caption puts one after the object.
STREET_PHRASES = {
    "daytime_clear": ("during the day", "on a clear day", "in daylight", "on a sunny day",
                      "in the daytime"),
    "night_sunny": ("at night", "during the night", "on a clear night", "in the dark at night"),
    "dusk_rainy": ("on a rainy evening", "at dusk in the rain", "in the evening rain",
                   "in the rain at dusk"),
    "night_rainy": ("on a rainy night", "in the rain at night", "at night in the rain",
                    "on a stormy night"),
    "daytime_foggy": ("on a foggy day", "in the fog", "in thick fog", "on a misty day"),
}
# ... and at half strength or less.
WEAK_STREET_PHRASES = {
    "night_sunny": ("in the late evening", "as night falls", "in fading light", "at twilight"),
    "dusk_rainy": ("in a light evening rain", "in a drizzle at dusk",
                   "on a slightly rainy evening"),
    "night_rainy": ("in a light rain at night", "on a drizzly night",
                    "at night in a light drizzle"),
    "daytime_foggy": ("in light fog", "in a slight haze", "on a hazy day", "in thin mist"),
}
STRENGTHS = (0.25, 0.5, 0.75, 1.0)
STREET_OPENINGS = ("a photo of a {}", "an image of a {}", "a picture of a {}", "a {}",
                   "an image taken of a {}")
# Caption templates of each classification style, "{}" for the shape.
SHAPE_CAPTIONS = {
    "photo": ("a photo of a {}", "a picture of a {}", "a real photo of a {}", "a {}"),
    "sketch": ("a sketch of a {}", "a pencil drawing of a {}", "a drawing of a {}",
               "a black and white sketch of a {}"),
    "cartoon": ("a cartoon {}", "a cartoon of a {}", "a {} in cartoon style",
                "a cartoon drawing of a {}"),
    "painting": ("a painting of a {}", "an oil painting of a {}", "a painted {}",
                 "a {} in a painting"),
    "neon": ("a neon sign of a {}", "a glowing neon {}", "a {} in neon light",
             "a neon {} on a dark wall"),
}
# Words around a shape caption, so that its tokens fall at many positions.
CAPTION_PREFIXES = ("", "", "look:", "here we see", "this image shows",
                    "in this small picture we can see", "someone made this and it shows",
                    "right in the middle of the little square image there is",
                    "what you are looking at here in the very centre of the frame is")
CAPTION_SUFFIXES = ("", "", "in the middle", "on its own",
                    "seen from the front with nothing else around it")
_ASPECT = {"bus": 1.35, "bike": 1.3, "car": 1.7, "motor": 1.3, "person": 0.42, "rider": 0.7,
           "truck": 1.6}


def _street(rng, size: int) -> Tuple[np.ndarray, str, int, int]:
    """A scene framed around one object of a random class, in a random weather domain."""
    c, d = (int(rng.integers(len(DIVERSE_WEATHER_CLASSES))),
            int(rng.integers(len(DIVERSE_WEATHER_DOMAINS))))
    cls, domain = DIVERSE_WEATHER_CLASSES[c], DIVERSE_WEATHER_DOMAINS[d]
    img, horizon = _background(rng, size, size)
    extent = rng.uniform(0.45, 0.85) * size
    aspect = _ASPECT[cls] * rng.uniform(0.85, 1.15)
    w, h = (extent, extent / aspect) if aspect >= 1 else (extent * aspect, extent)
    w, h = int(max(8, min(w, size - 2))), int(max(8, min(h, size - 2)))
    x0 = int(rng.integers(0, size - w))
    y1 = int(rng.integers(max(h, horizon + 4), size))
    _DRAW[cls](img, _Frame((x0, y1 - h, x0 + w, y1), flip=bool(rng.integers(0, 2))), rng)
    strength = 1.0 if domain == "daytime_clear" else float(rng.choice(STRENGTHS))
    phrases = WEAK_STREET_PHRASES[domain] if strength <= 0.5 else STREET_PHRASES[domain]
    caption = rng.choice(STREET_OPENINGS).format(cls) + " " + rng.choice(phrases)
    return stylize(img, domain, rng, horizon, strength), caption, c, d


def _shape(rng, size: int) -> Tuple[np.ndarray, str, int, int]:
    """One shape of a random class in a random classification style."""
    c, d = (int(rng.integers(len(SYNTHETIC_DOMAINS_CLASSES))),
            int(rng.integers(len(SYNTHETIC_DOMAINS))))
    cls, style = SYNTHETIC_DOMAINS_CLASSES[c], SYNTHETIC_DOMAINS[d]
    mask = _shape_mask(cls, size, rng)
    img = np.clip(_STYLES[style](mask, rng), 0, 255).astype(np.uint8)
    words = (rng.choice(CAPTION_PREFIXES), rng.choice(SHAPE_CAPTIONS[style]).format(cls),
             rng.choice(CAPTION_SUFFIXES))
    return img, " ".join(w for w in words if w), c, d


def render_world(num_street: int, num_shapes: int, size: int = 112,
                 seed: int = WORLD_SEED) -> Tuple[np.ndarray, List[str], np.ndarray]:
    """Images (uint8 BGR [N, size, size, 3]), captions, and labels [N, 3] = (part, class,
    domain), part 0 = street scenes, 1 = shapes; the same arguments give the same world."""
    images, captions, labels = [], [], []
    for part, count, render in ((0, num_street, _street), (1, num_shapes, _shape)):
        for i in range(count):
            rng = np.random.default_rng([seed, part, i])
            img, caption, c, d = render(rng, size)
            if img.shape[0] != size:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
            captions.append(caption)
            labels.append((part, c, d))
    return np.stack(images), captions, np.array(labels, dtype=np.int64)
