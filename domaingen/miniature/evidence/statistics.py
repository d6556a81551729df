"""The pre-registered analysis: paired differences between methods over replicates.

Each claim is a set of paired differences (method minus baseline, one per replicate) and a
smallest effect of interest δ. A claim gets a one-sided t-test of superiority, a two-sided t
interval, a TOST test of equivalence within ±δ, Holm's adjustment over the family of claims and
a verdict. Sample sizes are planned with :func:`replicates_needed`. Everything is numpy and the
standard library: the Student-t distribution is computed here.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "t_cdf", "t_quantile", "PairedResult", "paired_test", "holm", "verdict", "analyse",
    "replicates_needed", "minimum_detectable_effect", "markdown_table",
    "HOLDS", "SMALLER", "EQUIVALENT", "INCONCLUSIVE",
]

HOLDS = "holds"
SMALLER = "smaller than δ"
EQUIVALENT = "equivalent"
INCONCLUSIVE = "inconclusive"

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITERATIONS = 100_000
_NORMAL_DF = 1e5  # beyond this, t_cdf is the normal CDF plus its 1/df and 1/df² terms


def _log_beta(a: float, b: float) -> float:
    """log B(a, b); with a large argument, Stirling's series avoids lgamma's cancellation."""
    small, large = sorted((a, b))
    if large < 50:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    total = large + small

    def series(x: float) -> float:  # lgamma(x) - ((x - 1/2) log x - x + log(2π) / 2)
        return 1 / (12 * x) - 1 / (360 * x ** 3) + 1 / (1260 * x ** 5)

    # lgamma(large) - lgamma(total), term by term
    difference = (-(large - 0.5) * math.log1p(small / large) - small * math.log(total) + small
                  + series(large) - series(total))
    return math.lgamma(small) + difference


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, _MAX_ITERATIONS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1.0) < _EPS:
            return fraction
    raise ArithmeticError(f"incomplete beta I_x({a}, {b}) at x={x} did not converge")


def _incomplete_beta(a: float, b: float, log_x: float, log_y: float) -> float:
    """Regularized incomplete beta I_x(a, b), given log x and log y with y = 1 - x."""
    x, y = math.exp(log_x), math.exp(log_y)
    if x == 0.0 or y == 0.0:
        return 0.0 if x == 0.0 else 1.0
    front = math.exp(a * log_x + b * log_y - _log_beta(a, b))
    if x < (a + 1) / (a + b + 2):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, y) / b


def _normal_cdf(t: float) -> float:
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


def _normal_density(t: float) -> float:
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (``df`` may be inf).

    The tail is I_x(df/2, 1/2) / 2 with x = df / (df + t²). Above 1e5 degrees of freedom, where
    that continued fraction loses digits, the normal CDF with its expansion to 1/df² is used
    (absolute error below 1e-15).
    """
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if t == 0.0:
        return 0.5
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if df > _NORMAL_DF:
        if abs(t) > 40:  # the density, and with it the correction, underflows
            return _normal_cdf(t)
        t2 = t * t
        terms = t * (t2 + 1) / (4 * df) + t * (t2 * (t2 * (3 * t2 - 7) - 5) - 3) / (96 * df * df)
        return _normal_cdf(t) - _normal_density(t) * terms
    r = abs(t) / math.sqrt(df)
    if r <= 1.0:  # log x and log(1 - x) without overflow for any t
        log_x, log_y = -math.log1p(r * r), 2 * math.log(r) - math.log1p(r * r)
    else:
        log_x, log_y = -2 * math.log(r) - math.log1p(1 / (r * r)), -math.log1p(1 / (r * r))
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, log_x, log_y)
    return 1.0 - tail if t > 0 else tail


def _t_density(t: float, df: float) -> float:
    if df > _NORMAL_DF:
        return _normal_density(t)
    log_density = (-(df + 1) / 2 * math.log1p(t * t / df) - _log_beta(df / 2, 0.5)
                   - 0.5 * math.log(df))
    return math.exp(log_density)


def t_quantile(p: float, df: float) -> float:
    """The t with ``t_cdf(t, df) == p`` for 0 < p < 1 (Newton's method, to 1e-12 relative).

    Solved in the lower tail, where the CDF is convex: Newton's steps from 0 then approach the
    root monotonically from the right, and stop once they no longer shrink t (converged, or at
    the CDF's rounding noise).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    if p == 0.5:
        return 0.0
    lower = min(p, 1.0 - p)  # exact for p >= 0.5
    t = 0.0
    for _ in range(_MAX_ITERATIONS):
        density = _t_density(t, df)
        if density == 0.0:  # the quantile lies beyond the floats
            t = -math.inf
            break
        step = (t_cdf(t, df) - lower) / density
        t -= step
        if step <= 1e-12 * max(1.0, abs(t)):
            break
    return t if p < 0.5 else -t


@dataclass(frozen=True)
class PairedResult:
    """One claim's paired differences, tested; ``p_holm`` and ``verdict`` are set by analyse."""
    claim: str
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    p_superiority: float  # one-sided, H0: mean <= 0
    p_tost: float  # equivalence within ±delta: the larger of the two one-sided p's
    delta: float  # smallest effect of interest
    level: float  # confidence level of [ci_low, ci_high]
    p_holm: Optional[float] = None
    verdict: Optional[str] = None


def paired_test(claim: str, differences: Sequence[float], delta: float,
                level: float = 0.95) -> PairedResult:
    """t-test, two-sided ``level`` t interval and TOST (±``delta``) of paired ``differences``.

    With no spread (all differences equal) the interval is [mean, mean], ``p_superiority`` is
    0 if the mean is positive and 1 otherwise, and ``p_tost`` is 0 if |mean| < delta and 1
    otherwise. Fewer than two differences raise ValueError.
    """
    values = np.asarray(differences, dtype=float).ravel()
    n = values.size
    if n < 2:
        raise ValueError(f"claim {claim!r}: {n} replicate(s), a paired test needs at least 2")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"claim {claim!r}: the differences are not all finite")
    if not delta >= 0:
        raise ValueError(f"claim {claim!r}: delta must be non-negative, got {delta}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie strictly between 0 and 1, got {level}")
    fields = dict(claim=claim, n=n, delta=float(delta), level=float(level))
    if np.all(values == values[0]):
        mean = float(values[0])
        return PairedResult(mean=mean, sd=0.0, ci_low=mean, ci_high=mean,
                            p_superiority=0.0 if mean > 0 else 1.0,
                            p_tost=0.0 if abs(mean) < delta else 1.0, **fields)
    mean, sd, df = float(values.mean()), float(values.std(ddof=1)), n - 1
    se = sd / math.sqrt(n)
    half_width = t_quantile(1 - (1 - level) / 2, df) * se
    p_tost = max(t_cdf(-(mean + delta) / se, df),  # H0: mean <= -delta
                 t_cdf((mean - delta) / se, df))  # H0: mean >= delta
    return PairedResult(mean=mean, sd=sd, ci_low=mean - half_width, ci_high=mean + half_width,
                        p_superiority=t_cdf(-mean / se, df), p_tost=p_tost, **fields)


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, at most 1), in input order."""
    p = [float(v) for v in pvalues]
    if any(not 0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"p-values must lie in [0, 1], got {p}")
    m, adjusted, running = len(p), [0.0] * len(p), 0.0
    for rank, index in enumerate(sorted(range(m), key=p.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def verdict(result: PairedResult, alpha: float = 0.05) -> str:
    """The claim's verdict at family-wise level ``alpha``; ``result.p_holm`` must be set.

    "holds": p_holm < alpha, interval above 0 and mean >= δ. "smaller than δ": p_holm < alpha
    and interval above 0 but mean < δ, a real effect smaller than the one of interest.
    "equivalent": otherwise, TOST p < alpha (within ±δ). Else "inconclusive".
    """
    if result.p_holm is None:
        raise ValueError(f"claim {result.claim!r}: p_holm is not set (see analyse)")
    if result.p_holm < alpha and result.ci_low > 0:
        return HOLDS if result.mean >= result.delta else SMALLER
    return EQUIVALENT if result.p_tost < alpha else INCONCLUSIVE


def analyse(family: Mapping[str, Tuple[Sequence[float], float]],
            alpha: float = 0.05) -> List[PairedResult]:
    """Test each claim ``name -> (differences, delta)``, Holm-adjust the one-sided p's over the
    family, and give every result its ``p_holm`` and verdict, in input order."""
    results = [paired_test(claim, differences, delta)
               for claim, (differences, delta) in family.items()]
    adjusted = holm([r.p_superiority for r in results])
    results = [dataclasses.replace(r, p_holm=p) for r, p in zip(results, adjusted)]
    return [dataclasses.replace(r, verdict=verdict(r, alpha)) for r in results]


def _check_design(alpha: float, power: float, family_size: int) -> None:
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0 and family_size >= 1):
        raise ValueError(f"need 0 < alpha < 1, 0 < power < 1 and family_size >= 1, got "
                         f"{alpha}, {power}, {family_size}")


def replicates_needed(sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                      family_size: int = 1, n_max: int = 1000) -> int:
    """Smallest n >= 2 at which a one-sided paired t-test at alpha / family_size (Bonferroni,
    conservative for Holm) detects a true mean difference ``delta`` with ``power``.

    Power is approximated by 1 - t_cdf(t_crit - delta·√n / sd, n - 1); ``n_max`` if never
    reached.
    """
    _check_design(alpha, power, family_size)
    if not (delta > 0 and sd >= 0):
        raise ValueError(f"need delta > 0 and sd >= 0, got delta={delta}, sd={sd}")
    if sd == 0:
        return 2
    for n in range(2, n_max + 1):
        t_crit = t_quantile(1 - alpha / family_size, n - 1)
        if t_cdf(delta * math.sqrt(n) / sd - t_crit, n - 1) >= power:
            return n
    return n_max


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8,
                              family_size: int = 1) -> float:
    """The true mean difference that :func:`replicates_needed`'s test detects with ``power``
    from ``n`` replicates: (t_crit + t_quantile(power, n - 1)) · sd / √n."""
    _check_design(alpha, power, family_size)
    if n < 2:
        raise ValueError(f"need at least 2 replicates, got {n}")
    t_crit = t_quantile(1 - alpha / family_size, n - 1)
    return (t_crit + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def _p_text(p: Optional[float]) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def markdown_table(results: Sequence[PairedResult],
                   unit: Optional[Mapping[str, str]] = None) -> str:
    """A markdown pipe table of ``results``; ``unit`` maps a claim to its differences' unit."""
    levels = {r.level for r in results}
    if len(levels) > 1:
        raise ValueError(f"results mix confidence levels {sorted(levels)}")
    level = levels.pop() if levels else 0.95
    header = ["claim", "n", "mean difference", f"{100 * level:g} % CI", "p (one-sided)",
              "p (Holm)", "p (TOST ±δ)", "δ", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        suffix = f" {unit[r.claim]}" if unit and unit.get(r.claim) else ""
        cells = [r.claim.replace("|", "\\|"), str(r.n), f"{r.mean:.2f}{suffix}",
                 f"[{r.ci_low:.2f}, {r.ci_high:.2f}]{suffix}", _p_text(r.p_superiority),
                 _p_text(r.p_holm), _p_text(r.p_tost), f"{r.delta:.2f}{suffix}",
                 r.verdict or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
