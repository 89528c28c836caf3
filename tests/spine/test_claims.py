"""The claims ledger: declared before measured, verdicts from rules, atomic JSON, Markdown tables."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ihcore.spine.claims import (
    ClaimsLedger,
    Rule,
    at_least,
    at_most,
    between,
    claims_dir,
    claims_markdown,
    disagreements,
    estimate_text,
    load_claims,
    median_interval,
    seeds_estimate,
    share_interval,
)


def declare(ledger, claim_id, rule=at_least(0.9), partly=None, statement="the network learns the task"):
    ledger.expect(claim_id, source="background", provenance="reconstruction", statement=statement,
                  quantity="held-out accuracy", rule=rule, partly=partly, figure="fig-curves", kind="reproduction")


def measured_ledger(values, chapter="toy"):
    """A ledger of claims "c0", "c1", ... (rule >= 0.9, partly >= 0.5) measured at ``values``."""
    ledger = ClaimsLedger(chapter)
    for i, value in enumerate(values):
        declare(ledger, f"c{i}", partly=at_least(0.5))
        ledger.measure(f"c{i}", value)
    return ledger


def test_measuring_an_undeclared_claim_raises():
    with pytest.raises(KeyError, match="expect"):
        ClaimsLedger("toy").measure("accuracy", 0.95)


@pytest.mark.parametrize(
    "rule, partly, value, verdict",
    [
        (at_least(0.9), at_least(0.5), 0.95, "reproduced"),
        (at_least(0.9), at_least(0.5), 0.9, "reproduced"),
        (at_least(0.9), at_least(0.5), 0.7, "partly"),
        (at_least(0.9), at_least(0.5), 0.5, "partly"),
        (at_least(0.9), at_least(0.5), 0.49, "not reproduced"),
        (at_least(0.9), None, 0.7, "not reproduced"),
        (between(0.4, 0.6), None, 0.4, "reproduced"),
        (between(0.4, 0.6), None, 0.6, "reproduced"),
        (between(0.4, 0.6), None, 0.61, "not reproduced"),
        (at_most(0.1), None, 0.1, "reproduced"),
        (at_most(0.1), None, 0.11, "not reproduced"),
        (at_least(0.9), at_least(0.5), math.nan, "not reproduced"),
        (Rule(), Rule(), math.nan, "not reproduced"),
    ],
)
def test_verdict_is_computed_from_the_rule(rule, partly, value, verdict):
    ledger = ClaimsLedger("toy")
    declare(ledger, "accuracy", rule, partly)
    assert ledger.measure("accuracy", value).verdict == verdict


def test_unmeasured_claim_blocks_claims_and_write(tmp_path):
    ledger = ClaimsLedger("toy")
    declare(ledger, "measured")
    declare(ledger, "forgotten")
    ledger.measure("measured", 0.95)
    with pytest.raises(ValueError, match="forgotten"):
        ledger.claims()
    with pytest.raises(ValueError, match="forgotten"):
        ledger.write({}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_written_claims_load_back_equal(tmp_path):
    ledger = ClaimsLedger("toy")
    declare(ledger, "accuracy", between(0.4, 0.6), statement="accuracy plateaus near 1/2 – the label is guessed")
    declare(ledger, "score", partly=at_least(0.3))
    ledger.measure("accuracy", 0.45)
    ledger.measure("score", 0.4)
    path = ledger.write({"steps": 10, "lr": 0.01}, tmp_path)
    assert path == tmp_path / "toy.json"
    assert load_claims(tmp_path) == ledger.claims()
    assert json.loads(path.read_text(encoding="utf-8"))["parameters"] == {"steps": 10, "lr": 0.01}


def dump_half_then_fail(document, file, **options):
    file.write(json.dumps(document, **options)[:20])
    raise OSError("disk full")


def replace_fails(source, destination):
    raise OSError("rename failed")


@pytest.mark.parametrize("module, name, failure", [(json, "dump", dump_half_then_fail), (os, "replace", replace_fails)])
def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch, module, name, failure):
    previous = measured_ledger([0.95]).write({}, tmp_path).read_bytes()
    monkeypatch.setattr(module, name, failure)
    with pytest.raises(OSError):
        measured_ledger([0.1]).write({}, tmp_path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["toy.json"]
    assert (tmp_path / "toy.json").read_bytes() == previous


def test_summary_counts_each_verdict():
    table = claims_markdown(measured_ledger([0.95, 0.99, 0.7, 0.1]).claims())
    assert table.startswith("4 claims: 2 reproduced, 1 partly, 0 undecided, 1 not reproduced.")
    assert "**toy**: 4 claims: 2 reproduced, 1 partly, 0 undecided, 1 not reproduced." in table
    assert len([line for line in table.splitlines() if line.startswith("| `c")]) == 4


def test_one_three_column_table_per_chapter_in_the_given_order():
    first, second = measured_ledger([0.95, 0.1]).claims(), measured_ledger([0.7], chapter="other").claims()
    table = claims_markdown(first + second, {"other": "[Other](other)", "toy": "Toy chapter"})
    assert table.startswith("3 claims: 1 reproduced, 1 partly, 0 undecided, 1 not reproduced.")
    assert table.index("**[Other](other)**: 1 claim: 0 reproduced, 1 partly") < table.index("**Toy chapter**: 2 claims")
    headers = [line for line in table.splitlines() if line.startswith("| claim checked |")]
    assert len(headers) == 2 and all(len(cells(header)) == 3 for header in headers)


def test_no_claims_give_a_sentence_not_a_table():
    assert "|" not in claims_markdown([])


def cells(row):
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_pipe_in_a_cell_is_escaped_so_columns_stay_aligned():
    ledger = ClaimsLedger("toy")
    declare(ledger, "norm", statement="|W| grows before |V|")
    ledger.measure("norm", 0.95)
    for table in (claims_markdown(ledger.claims()), ledger.plan_markdown()):
        header, _, row = table.splitlines()[-3:]
        assert len(cells(row)) == len(cells(header))
        assert r"\|W\| grows before \|V\|" in row


def test_claims_directory_honours_ihcore_claims_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IHCORE_CLAIMS_DIR", str(tmp_path / "claims"))
    ledger = measured_ledger([0.95])
    assert ledger.write({}) == tmp_path / "claims" / "toy.json"
    assert load_claims() == ledger.claims()


def test_claims_directory_defaults_to_data_claims_beside_the_chapters(monkeypatch):
    monkeypatch.delenv("IHCORE_CLAIMS_DIR", raising=False)
    assert claims_dir() == Path("../data/claims")


WRITE_AND_LOAD = """
from ihcore.spine.claims import ClaimsLedger, at_least, load_claims
ledger = ClaimsLedger("toy")
ledger.expect("c", source="s", provenance="paper", statement="s", quantity="q", rule=at_least(0.5), kind="check")
ledger.measure("c", 0.9)
ledger.write({}, ".")
assert load_claims(".") == ledger.claims()
"""


def test_claims_file_is_written_and_read_as_utf8_whatever_the_locale(tmp_path):
    ascii_locale = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    result = subprocess.run([sys.executable, "-c", WRITE_AND_LOAD], cwd=tmp_path, env=ascii_locale,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_claims_file_gets_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = measured_ledger([0.95]).write({}, tmp_path)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def seed_ledger(rule=None, partly=None, seeds_note=""):
    ledger = ClaimsLedger("toy")
    ledger.expect("c", source="s", provenance="paper", statement="s", quantity="q", rule=rule or at_least(0.5),
                  partly=partly,
                  kind="reproduction", seeds_note=seeds_note)
    return ledger


@pytest.mark.parametrize("values, verdict", [
    ([0.6, 0.7, 0.8, 0.9, 0.95], "reproduced"),  # the whole interval inside the rule
    ([0.4, 0.6, 0.7, 0.8, 0.9], "undecided"),  # one seed below: the range straddles 0.5
    ([0.1, 0.2, 0.3, 0.35, 0.45], "not reproduced"),
])
def test_verdict_over_seeds_judges_the_interval_of_the_median(values, verdict):
    claim = seed_ledger().measure("c", values)
    assert claim.verdict == verdict
    assert claim.per_seed == values and claim.n_seeds == 5
    assert claim.measured == sorted(values)[2] and claim.interval == [min(values), max(values)]
    assert claim.coverage == pytest.approx(1 - 2 / 32)


def test_partly_needs_the_whole_interval_in_partly_and_none_in_the_rule():
    assert seed_ledger(partly=at_least(0.3)).measure("c", [0.31, 0.35, 0.4, 0.45, 0.49]).verdict == "partly"
    assert seed_ledger(partly=at_least(0.3)).measure("c", [0.31, 0.35, 0.4, 0.45, 0.6]).verdict == "undecided"
    assert seed_ledger(partly=at_least(0.3)).measure("c", [0.2, 0.35, 0.4, 0.45, 0.49]).verdict == "undecided"


def test_an_interval_wider_than_a_two_sided_rule_is_undecided():
    claim = seed_ledger(rule=between(0.4, 0.6)).measure("c", [0.1, 0.2, 0.5, 0.7, 0.9])
    assert claim.verdict == "undecided"


@pytest.mark.parametrize("n, k, coverage", [(5, 1, 0.9375), (6, 1, 1 - 2 / 64), (9, 2, 1 - 2 * 10 / 512),
                                            (10, 2, 1 - 2 * 11 / 1024), (20, 6, 1 - 2 * sum(
                                                math.comb(20, i) for i in range(6)) / 2**20)])
def test_median_interval_is_the_widest_order_statistic_pair_with_95_percent(n, k, coverage):
    values = list(np.random.default_rng(0).permutation(n).astype(float))
    lower, upper, got = median_interval(values)
    assert (lower, upper) == (k - 1, n - k) and got == pytest.approx(coverage)
    assert got >= 0.95 or k == 1


def test_a_median_interval_covers_the_true_median_at_its_stated_rate():
    rng = np.random.default_rng(1)
    hits = [lower <= 0.0 <= upper for lower, upper, _ in (median_interval(rng.standard_normal(10)) for _ in range(4000))]
    assert abs(np.mean(hits) - (1 - 2 * 11 / 1024)) < 0.015


def test_fewer_than_five_seeds_need_a_note_and_nan_is_refused():
    with pytest.raises(ValueError, match="fewer than 5"):
        seed_ledger().measure("c", [0.6, 0.7, 0.8])
    assert seed_ledger(seeds_note="each run takes an hour").measure("c", [0.6, 0.7, 0.8]).verdict == "reproduced"
    with pytest.raises(ValueError, match="NaN"):
        seed_ledger().measure("c", [0.6, float("nan"), 0.7, 0.8, 0.9])


def test_kind_is_required_and_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        ClaimsLedger("toy").expect("c", source="s", provenance="paper", statement="s", quantity="q",
                                   rule=at_least(0.5), kind="proof")


def test_a_claim_cannot_be_declared_or_measured_twice():
    ledger = seed_ledger()
    with pytest.raises(ValueError, match="declared twice"):
        ledger.expect("c", source="s", provenance="paper", statement="s", quantity="q", rule=at_most(0.1),
                      kind="check")
    ledger.measure("c", [0.6, 0.7, 0.8, 0.9, 0.95])
    with pytest.raises(ValueError, match="already measured"):
        ledger.measure("c", 0.1)
    assert ledger.claims()[0].verdict == "reproduced"


@pytest.mark.parametrize("median, lower, upper, text", [
    (0.54, 0.505, 0.56, "0.5"), (23.2, 22.1, 25.1, "20"), (0.98, 0.96, 0.99, "1.0"),  # step: the power of ten >= width
    (0.004, 0.0, 0.03, "0"), (-0.069, -0.265, 0.069, "0"),  # an interval around 0 may print 0
    (8.75, 7.9, 11.25, "10"), (2.0, 1.0, 3.0, "2"),
    (0.1739, 0.12, 0.25, "0.2"), (25.3, 5.0, 40.0, "30"),  # rounded outside, below the leading digit: 1 digit
    (114.3, 113.5, 115.3, "114"), (127.1, 120.4, 131.9, "130"),  # farther than the width: finer
    (1.67, 1.46, 1.97, "2"),  # just outside: stays
    (7.0, 7.0, 7.0, "7"), (1.4348, None, None, "1.43"), (1234.5, None, None, "1230"),  # no spread: 3 digits
    (0.40000001, 0.4, 0.40000002, "0.4"),  # seeds that agree to rounding: 3 digits, not 8
    (math.inf, 3.0, math.inf, "inf"), (640.0, 400.0, math.inf, "600"),  # a seed at infinity: 1 digit
])
def test_estimate_is_printed_at_the_precision_of_its_interval(median, lower, upper, text):
    assert estimate_text(median, lower, upper) == text


def test_a_summary_over_seeds_depends_on_the_verdict_not_on_the_seeds_values():
    first, second = seed_ledger(), seed_ledger()
    first.measure("c", [0.6, 0.7, 0.8, 0.9, 0.95])
    second.measure("c", [0.55, 0.66, 0.85, 0.91, 0.99])
    assert first.claims()[0].summary() == second.claims()[0].summary()
    assert "reproduced" in first.claims()[0].summary() and "5 seeds" in first.claims()[0].summary()
    single = ClaimsLedger("toy")
    single.expect("d", source="s", provenance="paper", statement="s", quantity="q", rule=at_most(0.1), kind="check")
    single.measure("d", 0.01234)
    assert "≈ 0.0123" in single.claims()[0].summary()  # a claim measured once prints its value


def test_estimate_survives_a_rerun_whose_seeds_land_differently():
    """Pairs of ensembles with the medians and interval ends that the same runs had under two
    instruction-set settings in this book's Musat and Singh chapters: the printed estimate stays."""
    assert seeds_estimate([1.46, 1.52, 1.67, 1.80, 1.97]) == seeds_estimate([1.40, 1.55, 1.76, 1.90, 2.04]) == "2"
    assert seeds_estimate([1.125, 1.14, 1.17, 1.3, 1.5]) == seeds_estimate([1.125, 1.2, 1.29, 1.4, 1.5]) == "1"
    assert seeds_estimate([7.9, 8.4, 8.75, 9.5, 11.25]) == seeds_estimate([7.1, 8.0, 8.45, 9.5, 11.25]) == "10"


def write_ledger(directory, values, parameters=None):
    ledger = seed_ledger()
    ledger.measure("c", values)
    return ledger.write(parameters or {"seed": 0}, directory)


def test_disagreements_compare_verdict_and_interval_with_the_committed_ones(tmp_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    write_ledger(committed, [0.6, 0.7, 0.8, 0.9, 0.95])
    write_ledger(fresh, [0.61, 0.72, 0.79, 0.9, 0.97])
    assert disagreements(fresh, committed) == []
    write_ledger(fresh, [0.96, 0.97, 0.98, 0.99, 0.995])
    assert disagreements(fresh, committed) == ["toy/c: interval [0.96, 0.995] does not meet the committed interval [0.6, 0.95]"]
    write_ledger(fresh, [0.51, 0.52, 0.55, 0.6, 0.97])  # its median is outside, its interval meets: the same median
    assert disagreements(fresh, committed) == []
    write_ledger(fresh, [0.4, 0.7, 0.8, 0.9, 0.95])
    assert disagreements(fresh, committed) == ["toy/c: verdict 'undecided', committed 'reproduced'"]
    write_ledger(fresh, [0.4, 0.7, 0.8, 0.9, 0.95], parameters={"seed": 3})
    assert disagreements(fresh, committed) == []  # other parameters: not comparable


def test_seeds_estimate_is_the_median_at_its_intervals_precision():
    assert seeds_estimate([0.31, 0.4237, 0.58, 0.40, 0.47]) == "0.4"
    assert seeds_estimate(np.array([600.0, 550.0, 700.0, 650.0, 620.0])) == "600"


def test_share_interval_is_the_exact_clopper_pearson_interval():
    assert share_interval(4, 5) == pytest.approx((0.28358, 0.99495), abs=1e-5)
    assert share_interval(5, 5) == pytest.approx((0.47818, 1.0), abs=1e-5)  # all 5: not yet above 1/2 at 95%
    assert share_interval(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-5)


def share_ledger():
    ledger = ClaimsLedger("toy")
    ledger.expect("c", source="s", provenance="paper", statement="s", quantity="q", rule=at_least(0.5),
                  kind="reproduction", statistic="share")
    return ledger


def test_a_claim_that_counts_seeds_is_judged_on_the_share_and_keeps_its_verdict_when_one_seed_flips():
    four, five = share_ledger(), share_ledger()
    claim = four.measure("c", [1, 0, 1, 1, 1])
    assert claim.measured == 0.8 and claim.interval == pytest.approx([0.28358, 0.99495], abs=1e-5)
    assert claim.verdict == five.measure("c", [1, 1, 1, 1, 1]).verdict == "undecided"
    assert share_ledger().measure("c", [1] * 20).verdict == "reproduced"  # 20 of 20: [0.83, 1]
    assert share_ledger().measure("c", [0] * 10).verdict == "not reproduced"
    with pytest.raises(ValueError, match="every per-seed value must be 0 or 1"):
        share_ledger().measure("c", [1, 0, 0.5, 1, 1])
    with pytest.raises(ValueError, match="statistic must be one of"):
        ClaimsLedger("toy").expect("c", source="s", provenance="paper", statement="s", quantity="q",
                                   rule=at_least(0.5), kind="check", statistic="mean")
