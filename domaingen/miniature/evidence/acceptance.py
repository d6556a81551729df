"""Method-free acceptance checks of the stand-in CLIPs, with thresholds fixed in the protocol
before any compared method ran: whether the world leaves each claim room to show up or fail.

Classification (the ViT stand-in on each style's validation split of the synthetic domains):
style-matched zero-shot ("a sketch of a {}") high; the photo template ("a photo of a {}")
leaving room up and down on every other style; a linear probe on the frozen image features,
trained with the style's own labels, well above zero-shot on most styles (the headroom a prompt
method could reach); a probe on colour statistics alone near chance; zero-shot stable when the
class word moves to a later token. Detection (the RN stand-in's report on a fresh draw of the
pretraining world): zero-shot on day-clear street scenes, and each day -> target text direction
aligned with the image shift.
"""
from typing import Dict, List, Mapping, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog

from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS, SYNTHETIC_DOMAINS_CLASSES
from domaingen.miniature.standin import DOMAIN_TEXT, _encode_text, _image_size, _to_input

__all__ = ["THRESHOLDS", "LATE_TEMPLATE", "classification_checks", "classification_verdicts",
           "detection_checks", "acceptance_markdown"]

# Fixed with the protocol (docs/miniature_world.md), before any compared method's numbers.
THRESHOLDS = {
    "style_zero_shot_min": 60.0,  # every style, its own template
    "photo_template_range": (30.0, 85.0),  # every non-photo style
    "probe_gain_min": 10.0,  # linear probe - photo-template zero-shot ...
    "probe_gain_styles": 3,  # ... on at least this many of the 4 non-photo styles
    "colour_probe_max": 30.0,  # chance is 20
    "late_token_drop_max": 10.0,  # mean over styles, plain - late template
    "street_zero_shot_min": 80.0,  # day-clear street scenes
    "alignment_min": 0.5,  # cos(day -> target text direction, image shift), each target
}
LATE_TEMPLATE = "what you are looking at here in the very centre of the frame is a photo of a {}"


def _split(name: str) -> Tuple[np.ndarray, np.ndarray]:
    dicts = DatasetCatalog.get(name)
    images = np.stack([cv2.imread(d["file_name"], cv2.IMREAD_COLOR) for d in dicts])
    return images, np.array([d["label"] for d in dicts])


@torch.no_grad()
def _image_features(model, images: np.ndarray) -> torch.Tensor:
    size = _image_size(model)
    return torch.cat([F.normalize(model.encode_image(_to_input(images[i:i + 256], size)), dim=-1)
                      for i in range(0, len(images), 256)])


@torch.no_grad()
def _zero_shot(model, model_name: str, features: torch.Tensor, labels: np.ndarray,
               template: str) -> float:
    text = _encode_text(model, model_name, [template.format(c) for c in SYNTHETIC_DOMAINS_CLASSES])
    predicted = (features @ text.t()).argmax(1).numpy()
    return 100.0 * float((predicted == labels).mean())


def _probe(train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor,
           test_y: np.ndarray, steps: int = 300, weight_decay: float = 1e-3) -> float:
    """Top-1 of a multinomial logistic regression (full-batch Adam on standardised features)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    x, t = (train_x - mean) / std, (test_x - mean) / std
    y = torch.from_numpy(train_y)
    torch.manual_seed(0)
    layer = torch.nn.Linear(x.shape[1], len(SYNTHETIC_DOMAINS_CLASSES))
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(layer(x), y).backward()
            optimizer.step()
    with torch.no_grad():
        return 100.0 * float((layer(t).argmax(1).numpy() == test_y).mean())


def _colour_statistics(images: np.ndarray) -> torch.Tensor:
    """Per image: mean and standard deviation of each HSV channel and a 12-bin hue histogram."""
    rows = []
    for img in images:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
        hist = np.histogram(hsv[:, 0], bins=12, range=(0, 180))[0] / len(hsv)
        rows.append(np.concatenate([hsv.mean(0), hsv.std(0), hist]))
    return torch.from_numpy(np.stack(rows)).float()


def classification_checks(model, model_name: str,
                          dataset: str = "synthetic_domains") -> Dict[str, object]:
    """Per style: zero-shot with its own template, the photo template and the late template, and
    the linear probe (train split -> validation split); the colour-only probe over all styles;
    each check with its threshold and whether it passed."""
    styles, colour_train, colour_val = {}, [], []
    for style in SYNTHETIC_DOMAINS:
        train_images, train_y = _split(f"{dataset}_{style}_train")
        val_images, val_y = _split(f"{dataset}_{style}_val")
        train_x, val_x = _image_features(model, train_images), _image_features(model, val_images)
        own = DOMAIN_TEXT[1][style]
        styles[style] = {
            "own_template": _zero_shot(model, model_name, val_x, val_y, own),
            "photo_template": _zero_shot(model, model_name, val_x, val_y, "a photo of a {}"),
            "late_template": _zero_shot(model, model_name, val_x, val_y, LATE_TEMPLATE),
            "linear_probe": _probe(train_x, train_y, val_x, val_y),
        }
        colour_train.append((_colour_statistics(train_images), train_y))
        colour_val.append((_colour_statistics(val_images), val_y))
    colour = _probe(torch.cat([x for x, _ in colour_train]),
                    np.concatenate([y for _, y in colour_train]),
                    torch.cat([x for x, _ in colour_val]),
                    np.concatenate([y for _, y in colour_val]))
    return {"styles": styles, "colour_probe": colour,
            "checks": classification_verdicts(styles, colour)}


def classification_verdicts(styles: Mapping[str, Mapping[str, float]],
                            colour: float) -> List[tuple]:
    """``(name, value, threshold, passed)`` of each classification check, from the per-style
    top-1s (own / photo / late template, linear probe) and the colour-only probe's top-1."""
    t = THRESHOLDS
    others = [s for s in SYNTHETIC_DOMAINS if s != "photo"]
    low, high = t["photo_template_range"]
    gains = [styles[s]["linear_probe"] - styles[s]["photo_template"] for s in others]
    late_drop = float(np.mean([r["photo_template"] - r["late_template"]
                               for r in styles.values()]))
    return [
        ("style-matched zero-shot, every style", min(r["own_template"] for r in styles.values()),
         f">= {t['style_zero_shot_min']:g}",
         min(r["own_template"] for r in styles.values()) >= t["style_zero_shot_min"]),
        ("photo template on non-photo styles, min / max",
         (min(styles[s]["photo_template"] for s in others),
          max(styles[s]["photo_template"] for s in others)), f"within [{low:g}, {high:g}]",
         all(low <= styles[s]["photo_template"] <= high for s in others)),
        ("linear probe - photo template, styles >= gain",
         sum(g >= t["probe_gain_min"] for g in gains),
         f">= {t['probe_gain_styles']} of {len(others)} styles gain >= {t['probe_gain_min']:g}",
         sum(g >= t["probe_gain_min"] for g in gains) >= t["probe_gain_styles"]),
        ("colour-only probe (chance 20)", colour, f"<= {t['colour_probe_max']:g}",
         colour <= t["colour_probe_max"]),
        ("photo - late template, mean over styles", late_drop,
         f"<= {t['late_token_drop_max']:g}", late_drop <= t["late_token_drop_max"]),
    ]


def detection_checks(report: Mapping) -> Dict[str, object]:
    """The RN stand-in's checks from its report (``evaluate_standin``)."""
    t = THRESHOLDS
    day = report["zero_shot_top1"]["daytime_clear"]
    targets = [d for d in DOMAIN_TEXT[0] if d != "daytime_clear"]
    alignment = [report["alignment"][f"daytime_clear->{d}"] for d in targets]
    checks = [
        ("zero-shot on day-clear street scenes", day, f">= {t['street_zero_shot_min']:g}",
         day >= t["street_zero_shot_min"]),
        ("day -> target alignment, min over targets", min(alignment),
         f">= {t['alignment_min']:g}", min(alignment) >= t["alignment_min"]),
    ]
    return {"alignment": dict(zip(targets, alignment)), "checks": checks}


def _value(v) -> str:
    if isinstance(v, tuple):
        return " / ".join(f"{x:.1f}" for x in v)
    return f"{v:.3f}" if isinstance(v, float) and abs(v) <= 1 else f"{v:.1f}" \
        if isinstance(v, float) else str(v)


def acceptance_markdown(results: Mapping[int, Mapping[str, Mapping]]) -> str:
    """Tables of ``{standin_seed: {"classification": ..., "detection": ...}}``."""
    lines = ["| stand-in seed | check | value | threshold | passed |", "|---:|---|---:|---|---|"]
    for seed, parts in results.items():
        for part in ("classification", "detection"):
            for name, value, threshold, passed in parts[part]["checks"]:
                lines.append(f"| {seed} | {name} | {_value(value)} | {threshold} | "
                             f"{'yes' if passed else '**no**'} |")
    lines += ["", "| stand-in seed | style | own template | photo template | late template | "
              "linear probe |", "|---:|---|---:|---:|---:|---:|"]
    for seed, parts in results.items():
        for style, r in parts["classification"]["styles"].items():
            lines.append(f"| {seed} | {style} | {r['own_template']:.1f} | "
                         f"{r['photo_template']:.1f} | {r['late_template']:.1f} | "
                         f"{r['linear_probe']:.1f} |")
    return "\n".join(lines) + "\n"


def all_passed(checks: Sequence[tuple]) -> bool:
    """Whether every ``(name, value, threshold, passed)`` check passed."""
    return all(passed for *_, passed in checks)


def failed(results: Mapping[int, Mapping[str, Mapping]]) -> List[str]:
    """``"<part> (stand-in seed k): <check>"`` for every failed check."""
    return [f"{part} (stand-in seed {seed}): {name}" for seed, parts in results.items()
            for part in ("classification", "detection")
            for name, _, _, passed in parts[part]["checks"] if not passed]
