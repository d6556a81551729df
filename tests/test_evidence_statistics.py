"""The pre-registered analysis against known values: the t distribution, paired tests, Holm,
verdicts, sample-size planning and the markdown table."""
import dataclasses
import math

import pytest

from domaingen.miniature.evidence.statistics import (
    EQUIVALENT,
    HOLDS,
    INCONCLUSIVE,
    SMALLER,
    analyse,
    holm,
    markdown_table,
    minimum_detectable_effect,
    paired_test,
    replicates_needed,
    t_cdf,
    t_quantile,
    verdict,
)

# Student-t values from tables / 30-digit arithmetic.
CDF_VALUES = [(2.0, 5, 0.949030260585071), (-3.0, 30, 0.002694982032825973),
              (1.5, 2.5, 0.8760817734568519), (-4.0, 1e6, 3.167351700502405e-05)]
QUANTILES = [(0.975, 10, 2.228138851986274), (0.95, 3, 2.353363434801823),
             (0.975, 1e6, 1.959966356814107), (0.995, 4, 4.604094871349992)]


@pytest.mark.parametrize("t, df, expected", CDF_VALUES)
def test_t_cdf_known_values(t, df, expected):
    assert t_cdf(t, df) == pytest.approx(expected, rel=1e-10, abs=1e-13)


def test_t_cdf_closed_forms_symmetry_and_limits():
    assert t_cdf(0, 7) == 0.5
    for t in (-40.0, -2.5, -0.3, 0.7, 3.0, 1e8):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)  # Cauchy
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
        assert t_cdf(t, 4.5) + t_cdf(-t, 4.5) == pytest.approx(1.0, abs=1e-14)
    assert t_cdf(math.inf, 3) == 1.0 and t_cdf(-math.inf, 3) == 0.0
    assert t_cdf(1.959963984540054, math.inf) == pytest.approx(0.975, abs=1e-14)  # normal
    # The continued fraction and the large-df expansion meet at 1e5 degrees of freedom.
    assert t_cdf(2.0, 1e5) == pytest.approx(t_cdf(2.0, 1e5 * (1 + 1e-12)), abs=1e-13)
    with pytest.raises(ValueError):
        t_cdf(1.0, 0)


@pytest.mark.parametrize("p, df, expected", QUANTILES)
def test_t_quantile_known_values(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-9)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-9)


def test_t_quantile_inverts_t_cdf():
    assert t_quantile(0.5, 3) == 0.0
    for df in (1, 2.5, 9, 120, 3e5):
        for p in (1e-9, 0.01, 0.3, 0.8, 0.999):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, rel=1e-9)
    assert t_quantile(1e-10, 1) == pytest.approx(-1 / (math.pi * 1e-10), rel=1e-9)  # Cauchy
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)


def test_paired_test_by_hand():
    result = paired_test("a beats b", [1, 2, 3, 4], delta=1.0)
    se = 1.2909944487358056 / 2
    assert (result.claim, result.n, result.delta) == ("a beats b", 4, 1.0)
    assert result.mean == pytest.approx(2.5)
    assert result.sd == pytest.approx(1.2909944487358056)
    assert result.ci_low == pytest.approx(2.5 - 3.182446305284263 * se, abs=1e-9)
    assert result.ci_high == pytest.approx(2.5 + 3.182446305284263 * se, abs=1e-9)
    assert result.p_superiority == pytest.approx(0.01523314583108550, rel=1e-9)
    assert result.p_tost == pytest.approx(0.9486359605708005, rel=1e-9)  # upper bound fails
    assert result.p_holm is None and result.verdict is None
    narrow = paired_test("a beats b", [1, 2, 3, 4], delta=1.0, level=0.5)
    assert narrow.ci_low > result.ci_low and narrow.level == 0.5


def test_paired_test_without_spread_and_too_few_replicates():
    flat = paired_test("flat", [0.5, 0.5, 0.5], delta=1.0)
    assert (flat.sd, flat.ci_low, flat.ci_high) == (0.0, 0.5, 0.5)
    assert (flat.p_superiority, flat.p_tost) == (0.0, 0.0)
    big = paired_test("big", [-2.0, -2.0], delta=1.0)
    assert (big.p_superiority, big.p_tost) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"'lonely'.*1 replicate"):
        paired_test("lonely", [3.0], delta=1.0)


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001, 0.2, 0.9]) == pytest.approx([1.0, 0.004, 0.6, 1.0])
    assert holm([]) == []


FAMILY = {
    "clear": ([5.1, 4.9, 5.2, 4.8, 5.0], 1.0),
    "zero": ([0.01, -0.01, 0.02, -0.02, 0.0], 1.0),
    "noisy": ([10.0, -8.0, 3.0, -6.0, 1.0], 1.0),
    "small": ([0.30, 0.31, 0.29, 0.30, 0.32], 1.0),
}


def test_analyse_holm_adjusts_and_gives_verdicts_in_order():
    results = analyse(FAMILY)
    assert [r.claim for r in results] == list(FAMILY)
    assert [r.verdict for r in results] == [HOLDS, EQUIVALENT, INCONCLUSIVE, SMALLER]
    assert (HOLDS, EQUIVALENT, INCONCLUSIVE, SMALLER) == (
        "holds", "equivalent", "inconclusive", "smaller than δ")
    assert [r.p_holm for r in results] == pytest.approx(holm([r.p_superiority for r in results]))
    assert all(r.p_holm >= r.p_superiority for r in results)


def test_verdict_needs_p_holm_and_respects_alpha():
    result = paired_test("x", [0.8, 1.9, 1.0, 1.4], delta=0.5)
    with pytest.raises(ValueError, match="p_holm"):
        verdict(result)
    assert result.ci_low > 0 and result.mean >= result.delta and result.p_tost > 0.5
    adjusted = dataclasses.replace(result, p_holm=0.03)
    assert verdict(adjusted) == HOLDS
    assert verdict(adjusted, alpha=0.01) == INCONCLUSIVE


def test_replicates_needed_and_minimum_detectable_effect():
    assert replicates_needed(1.0, 1.0) == 8  # one-sided paired t, d = 1, power 0.8
    needed = [replicates_needed(sd, 1.0) for sd in (0.5, 1.0, 2.0)]
    assert needed == sorted(needed) and needed[0] < needed[-1]
    assert replicates_needed(1.0, 1.0, family_size=4) > replicates_needed(1.0, 1.0)
    assert replicates_needed(0.0, 1.0) == 2
    assert replicates_needed(10.0, 0.01, n_max=50) == 50
    for sd, delta, family in ((1.0, 1.0, 1), (2.0, 0.7, 3), (0.3, 0.1, 2)):
        n = replicates_needed(sd, delta, family_size=family)
        assert minimum_detectable_effect(sd, n, family_size=family) <= delta
        assert minimum_detectable_effect(sd, n - 1, family_size=family) > delta
    assert minimum_detectable_effect(1.0, 8) == pytest.approx(
        (1.894578605 + 0.8960296443) / math.sqrt(8), abs=1e-8)


def test_markdown_table():
    results = analyse(FAMILY)
    table = markdown_table(results, unit={"clear": "pp"}).splitlines()
    assert table[0] == ("| claim | n | mean difference | 95 % CI | p (one-sided) | p (Holm) "
                        "| p (TOST ±δ) | δ | verdict |")
    assert table[1] == "|---|---|---|---|---|---|---|---|---|"
    assert len(table) == 2 + len(results)
    clear = table[2].split(" | ")
    assert clear[:3] == ["| clear", "5", "5.00 pp"] and clear[4] == "<0.001"
    assert clear[-1] == "holds |" and clear[-2] == "1.00 pp"
    assert "[-" in table[4] and "smaller than δ" in table[5]
    assert "–" in markdown_table([paired_test("p|q", [1, 2], 1.0)])
