"""The claims ledger: each claim a chapter checks, its measured value and its verdict.

A chapter states its claims *before* it runs anything (:meth:`ClaimsLedger.expect`: the
claim as quoted from its source, its kind, and the acceptance rule), then records the
measured values (:meth:`ClaimsLedger.measure`). The verdict is computed from the rule,
never typed.

**Kinds** (:data:`KINDS`): a *reproduction* of a paper's empirical statement; a *check* of a
derivation or a hand construction (true by design if the code is right, still worth
running); a test *beyond* the paper (reviewers' doubts, cross-paper questions).

**Claims over seeds.** A claim on trained models is measured once per seed (``measure(id,
[v_1, ..., v_S])``). Its estimate is the median over seeds, and its interval the
distribution-free confidence interval for the median from order statistics,
``[v_(k), v_(S+1-k)]`` with the largest k whose coverage ``1 - 2 P(Bin(S, 1/2) <= k - 1)`` is
at least 95%; below 6 seeds no k reaches 95% and the interval is the range (93.75% at 5
seeds, 87.5% at 4). The coverage is recorded with the interval. The verdict judges the
interval, not one seed: every value in it accepted by the rule -> "reproduced"; every
value in the wider ``partly`` rule but none in the rule -> "partly"; none accepted by
either -> "not reproduced"; otherwise the interval straddles a threshold -> "undecided"
(at S seeds: more seeds may decide it). A claim measured by one number (a closed form, a
construction, a deterministic flow) is judged on that number.

**Claims that count seeds** (``expect(..., statistic="share")``): per seed 1 or 0 (the order
held, or not); the estimate is the share of seeds with 1 and its interval the exact
(Clopper–Pearson) 95% interval of that share (:func:`share_interval`). The median's interval of
0/1 values is the range at 5 seeds, so one seed that flips (as one did in the cross-paper chapter
under another instruction-set setting, 4 of 5 -> 5 of 5) flips the verdict; 5 of 5 does not show
a share above one half at 95% either, and the share's interval says so.

:meth:`ClaimsLedger.write` saves ``<claims dir>/<chapter>.json`` atomically, and the book's
introduction tabulates every chapter's file (:func:`claims_markdown`).

The claims directory is ``$IHCORE_CLAIMS_DIR`` if set, else ``../data/claims`` relative to
the working directory (chapters run in ``chapters/``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median

import numpy as np

from ihcore.spine.markdown import markdown_table

VERDICTS = ("reproduced", "partly", "undecided", "not reproduced")
STATISTICS = ("median", "share")  # what a claim over seeds estimates (see the module docstring)
KINDS = ("reproduction", "check", "beyond")
KIND_NAMES = {"reproduction": "reproductions of a paper's empirical statement",
              "check": "checks of a derivation or construction", "beyond": "tests beyond the papers"}
MIN_SEEDS = 5  # a claim on trained models uses at least this many seeds at a chapter's defaults
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rule:
    """Acceptance interval for a measured value: lower <= value <= upper (None: unbounded)."""

    lower: float | None = None
    upper: float | None = None

    def accepts(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.lower is None or value >= self.lower) and (self.upper is None or value <= self.upper)

    def contains(self, lower: float, upper: float) -> bool:
        """Whether every value in [lower, upper] is accepted."""
        return self.accepts(lower) and self.accepts(upper)

    def meets(self, lower: float, upper: float) -> bool:
        """Whether some value in [lower, upper] is accepted."""
        return (self.upper is None or lower <= self.upper) and (self.lower is None or upper >= self.lower)

    def describe(self) -> str:
        if self.lower is not None and self.upper is not None:
            return f"in [{self.lower:g}, {self.upper:g}]"
        if self.lower is not None:
            return f"≥ {self.lower:g}"
        if self.upper is not None:
            return f"≤ {self.upper:g}"
        return "any value"


def at_least(value: float) -> Rule:
    return Rule(lower=value)


def at_most(value: float) -> Rule:
    return Rule(upper=value)


def between(lower: float, upper: float) -> Rule:
    return Rule(lower=lower, upper=upper)


def median_interval(values) -> tuple[float, float, float]:
    """``(lower, upper, coverage)``: the order-statistic confidence interval for the median of
    ``values`` (see the module docstring; the widest-coverage one, the range, below 6 values)."""
    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n
    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= CONFIDENCE:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


def share_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided ``confidence`` interval of a share: ``successes``
    of ``n`` seeds. ``(0, ·)`` when none, ``(·, 1)`` when all."""
    from scipy.stats import beta

    tail = (1 - confidence) / 2
    lower = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    upper = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return lower, upper


def printed_decimals(median: float, lower: float | None = None, upper: float | None = None) -> int | None:
    """The decimals ``median`` is printed with, given its interval ``[lower, upper]``.

    Those of the smallest power of ten at or above the interval's width, so that no printed
    digit is finer than the spread of the seeds: a rerun whose seeds land differently (as on
    another CPU) then prints the same value unless its median moves across a rounding boundary.
    Where the value so rounded falls outside the interval: rounded away below its leading digit
    (``0`` for 0.17 in [0.12, 0.25]) it gets one significant digit (``0.2``); farther from the
    interval than the interval is wide (``110`` for 114.3 in [113.5, 115.3]) it is rounded finer
    until it is not (``114``); just outside it stays (``2`` for 1.67 in [1.46, 1.97]: a finer
    digit would move with the seeds). ``None`` means 3 significant digits: no interval, an
    interval of width 0, or seeds that agree to more than 3 digits. An unbounded interval (a
    seed at infinity, an event that never happened) supports 1 significant digit."""
    width = (upper - lower) if lower is not None and upper is not None else 0.0
    leading = math.floor(math.log10(abs(median))) if median != 0 else None
    if math.isinf(width):
        return -leading if leading is not None else 0
    if not width > 0:
        return None
    decimals = -math.ceil(math.log10(width))
    if leading is None:
        return decimals

    def distance(d: int) -> float:  # from the value rounded to d decimals to the interval (0 inside)
        value = round(median, d)
        return max(lower - value, value - upper, 0.0)

    if distance(decimals) > 0:
        decimals = max(decimals, -leading)
        while distance(decimals) > width and decimals < 2 - leading:
            decimals += 1
    return None if decimals > 2 - leading else decimals


def estimate_text(median: float, lower: float | None = None, upper: float | None = None) -> str:
    """``median`` at the precision its interval supports (:func:`printed_decimals`); ``"inf"``
    for infinite values."""
    if not math.isfinite(median):
        return str(median)
    decimals = printed_decimals(median, lower, upper)
    return significant(median, 3) if decimals is None else rounded_text(median, decimals)


def rounded_text(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals`` (negative: to tens, hundreds, ...), ``"0"`` if that is 0."""
    value = round(value, decimals)
    return f"{value:.{max(decimals, 0)}f}" if value != 0 else "0"


def significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, positional (``600``, not ``6e+02``)."""
    return np.format_float_positional(value, precision=digits, unique=True, fractional=False, trim="-")


def seeds_estimate(values) -> str:
    """The median of per-seed ``values`` at the precision its interval supports: what a checked
    cell may print of a quantity over seeds (:func:`median_interval`, :func:`estimate_text`)."""
    values = [float(v) for v in values]
    lower, upper, _ = median_interval(values)
    return estimate_text(float(median(values)), lower, upper)


@dataclass(frozen=True)
class Claim:
    """One checked claim.

    source: where the statement comes from, e.g. "Singh et al. 2024, §3 (secondary
    summary)" or "background"; provenance: "paper" (the paper states it), "secondary"
    (reviewers or summaries state it) or "reconstruction" (this book's own choice or
    derivation), as each chapter's provenance table explains. rule and partly describe the acceptance
    intervals; verdict is computed from them. figure is the book-wide label of the figure
    behind the verdict, prefixed by the chapter's slug (``from-scratch-phase-change``).
    kind: one of :data:`KINDS`. measured: the value judged (the median over seeds for a
    claim over seeds). per_seed: the per-seed values (None for a single measurement);
    interval: ``[lower, upper]`` of the median's confidence interval and coverage its
    coverage (None without seeds). seeds_note: why a claim on a trained model has fewer
    than :data:`MIN_SEEDS` seeds (or none), when it does. statistic: ``"median"``, or
    ``"share"`` for a claim that counts seeds (measured: the share of seeds with 1; interval:
    :func:`share_interval`).
    """

    id: str
    chapter: str
    source: str
    provenance: str
    statement: str
    quantity: str
    rule: str
    partly: str | None
    measured: float
    verdict: str
    figure: str
    kind: str
    per_seed: list[float] | None = None
    interval: list[float] | None = None
    coverage: float | None = None
    seeds_note: str = ""
    statistic: str = "median"

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed) if self.per_seed is not None else 0

    def estimate(self) -> str:
        """The measured value at the precision its interval supports (see :func:`estimate_text`)."""
        return estimate_text(self.measured, *(self.interval or (None, None)))

    def interval_text(self) -> str:
        """``"0.17 [0.12, 0.25], 5 seeds, 93.8% CI"``, or the single value."""
        if self.interval is None:
            return f"{self.measured:.3g}"
        lower, upper = self.interval
        return f"{self.measured:.3g} [{lower:.3g}, {upper:.3g}], {self.n_seeds} seeds, {100 * self.coverage:.1f}% CI"

    def summary(self) -> str:
        """One line stable across machines, what a checked cell prints: id, kind, verdict, the
        quantity and the rule, and for a claim measured once its value (:meth:`estimate`). A claim
        over seeds prints no value: even at its interval's precision a median of a few trained
        seeds can move across a rounding boundary when the seeds land differently (another CPU),
        while its verdict does not unless its interval meets the rule's threshold; its median and
        interval are in :func:`intervals_markdown`, which chapters show unchecked."""
        if self.per_seed is not None:
            return f"{self.id} ({self.kind}): {self.verdict} — {self.quantity}, over {self.n_seeds} seeds (rule {self.rule})"
        return f"{self.id} ({self.kind}): {self.verdict} — {self.quantity} ≈ {self.estimate()} (rule {self.rule})"


class ClaimsLedger:
    """Claims of one chapter, declared up front, measured, then written atomically."""

    PROVENANCES = ("paper", "secondary", "reconstruction")

    def __init__(self, chapter: str) -> None:
        self.chapter = chapter
        self._expected: dict[str, dict] = {}
        self._measured: dict[str, float] = {}

    def expect(
        self,
        claim_id: str,
        *,
        source: str,
        provenance: str,
        statement: str,
        quantity: str,
        rule: Rule,
        kind: str,
        partly: Rule | None = None,
        figure: str = "",
        seeds_note: str = "",
        statistic: str = "median",
    ) -> None:
        """Declare a claim, its kind and its acceptance rule before any measurement.

        ``quantity`` says what is measured, e.g. "held-out-class accuracy after
        training". ``kind`` is one of :data:`KINDS`. ``partly`` is an optional wider
        interval that earns "partly". ``seeds_note`` says why a claim on trained models is
        measured with fewer than :data:`MIN_SEEDS` seeds, or without seeds (e.g. "gradient
        flow from zero initialisation on the population loss: no randomness"). ``statistic``:
        ``"median"`` (a value per seed), or ``"share"`` (1 or 0 per seed: the claim counts seeds).
        """
        if claim_id in self._expected:
            raise ValueError(f"claim {claim_id!r} declared twice")
        if provenance not in self.PROVENANCES:
            raise ValueError(f"provenance must be one of {self.PROVENANCES}, got {provenance!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
        self._expected[claim_id] = dict(
            source=source, provenance=provenance, statement=statement, quantity=quantity,
            rule=rule, partly=partly, figure=figure, kind=kind, seeds_note=seeds_note, statistic=statistic,
        )

    def measure(self, claim_id: str, value) -> Claim:
        """Record the measured value of a declared claim: one number, or one per seed (a
        sequence, judged on its median's interval); returns the claim with its verdict.

        Per-seed values must not be NaN (a run that never reached a level is ``inf``, not
        NaN); fewer than :data:`MIN_SEEDS` of them need the claim's ``seeds_note``.
        """
        if claim_id not in self._expected:
            raise KeyError(f"claim {claim_id!r} was not declared with expect() before measuring")
        if claim_id in self._measured:
            raise ValueError(f"claim {claim_id!r} already measured")
        if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:
            values = [float(v) for v in value]
            if any(math.isnan(v) for v in values):
                raise ValueError(f"claim {claim_id!r}: a per-seed value is NaN: {values}")
            if self._expected[claim_id]["statistic"] == "share" and not set(values) <= {0.0, 1.0}:
                raise ValueError(f"claim {claim_id!r} counts seeds: every per-seed value must be 0 or 1, got {values}")
            if len(values) < MIN_SEEDS and not self._expected[claim_id]["seeds_note"]:
                raise ValueError(f"claim {claim_id!r} has {len(values)} seeds, fewer than {MIN_SEEDS}, "
                                 "and no seeds_note saying why")
            self._measured[claim_id] = values
        else:
            self._measured[claim_id] = float(value)
        return self.claim(claim_id)

    def claim(self, claim_id: str) -> Claim:
        spec, value = self._expected[claim_id], self._measured[claim_id]
        rule, partly = spec["rule"], spec["partly"]
        if isinstance(value, list) and spec["statistic"] == "share":
            (lower, upper), coverage = share_interval(int(sum(value)), len(value)), CONFIDENCE
            measured, per_seed, interval = sum(value) / len(value), value, [lower, upper]
        elif isinstance(value, list):
            lower, upper, coverage = median_interval(value)
            measured, per_seed, interval = float(median(value)), value, [lower, upper]
        else:
            lower = upper = measured = value
            per_seed = interval = coverage = None
        if math.isnan(measured) or not (rule.meets(lower, upper) or (partly and partly.meets(lower, upper))):
            verdict = "not reproduced"
        elif rule.contains(lower, upper):
            verdict = "reproduced"
        elif partly is not None and partly.contains(lower, upper) and not rule.meets(lower, upper):
            verdict = "partly"
        else:
            verdict = "undecided"
        return Claim(
            id=claim_id, chapter=self.chapter, source=spec["source"], provenance=spec["provenance"],
            statement=spec["statement"], quantity=spec["quantity"], rule=rule.describe(),
            partly=partly.describe() if partly else None, measured=measured, verdict=verdict,
            figure=spec["figure"], kind=spec["kind"], per_seed=per_seed, interval=interval,
            coverage=coverage, seeds_note=spec["seeds_note"], statistic=spec["statistic"],
        )

    def plan_markdown(self) -> str:
        """The declared claims and their acceptance rules, as a Markdown table."""
        rows = []
        for claim_id, spec in self._expected.items():
            rule = spec["rule"].describe() + (f" (partly: {spec['partly'].describe()})" if spec["partly"] else "")
            rows.append([claim_id, spec["kind"], f"{spec['source']} ({spec['provenance']})", spec["statement"],
                         spec["quantity"], rule])
        return markdown_table(["claim", "kind", "source", "statement checked", "measured quantity", "rule"], rows)

    def claims(self) -> list[Claim]:
        missing = sorted(set(self._expected) - set(self._measured))
        if missing:
            raise ValueError(f"claims declared but never measured: {missing}")
        return [self.claim(claim_id) for claim_id in self._expected]

    def write(self, parameters: dict, directory: Path | str | None = None) -> Path:
        """Write ``<directory>/<chapter>.json`` atomically; returns its path.

        ``parameters`` are the chapter's parameter values the claims were measured with.
        """
        document = {
            "chapter": self.chapter,
            "parameters": parameters,
            "claims": [asdict(claim) for claim in self.claims()],
        }
        path = Path(directory or claims_dir()) / f"{self.chapter}.json"
        write_json_atomic(path, document)
        return path


CLAIMS_ENV = "IHCORE_CLAIMS_DIR"


def claims_dir() -> Path:
    return Path(os.environ.get(CLAIMS_ENV, "../data/claims"))


def write_json_atomic(path: Path, document: dict) -> None:
    """Write JSON to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; a results file is for every reader
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=1, ensure_ascii=False)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_claims(directory: Path | str | None = None) -> list[Claim]:
    """Every claim in ``<directory>/*.json``, ordered by chapter file name."""
    claims = []
    for path in sorted(Path(directory or claims_dir()).glob("*.json")):
        claims += [Claim(**claim) for claim in json.loads(path.read_text(encoding="utf-8"))["claims"]]
    return claims


def verdict_counts(claims: list[Claim]) -> str:
    """``"n claims: a reproduced, b partly, c undecided, d not reproduced"``."""
    counts = ", ".join(f"{sum(c.verdict == verdict for c in claims)} {verdict}" for verdict in VERDICTS)
    return f"{len(claims)} claim{'s' if len(claims) != 1 else ''}: {counts}"


def kind_counts(claims: list[Claim]) -> str:
    """The verdict counts of each kind apart, one line per kind (so "reproduced" among
    reproductions counts empirical reproductions only)."""
    lines = []
    for kind in KINDS:
        own = [c for c in claims if c.kind == kind]
        if own:
            lines.append(f"- {KIND_NAMES[kind]}: {verdict_counts(own)}")
    return "\n".join(lines)


def kind_table(claims: list[Claim]) -> str:
    """A Markdown table of claim counts: one row per kind, one column per verdict, and totals."""
    rows = [[KIND_NAMES[kind], *(sum(c.kind == kind and c.verdict == v for c in claims) for v in VERDICTS),
             sum(c.kind == kind for c in claims)] for kind in KINDS]
    rows.append(["all", *(sum(c.verdict == v for c in claims) for v in VERDICTS), len(claims)])
    return markdown_table(["kind", *VERDICTS, "total"], rows)


def disagreements(fresh_dir: Path | str, committed_dir: Path | str) -> list[str]:
    """What a re-execution changed against the committed ledgers: one line per disagreement.

    For each chapter ledger in ``fresh_dir`` whose parameters equal the committed ledger's
    (others are not comparable and are skipped), every claim must keep its verdict, and a
    claim over seeds an interval that meets the committed one (two estimates of one median
    agree when their confidence intervals overlap: on the same machine the reruns are
    bit-identical, on another CPU the seeds land differently and the fresh median itself
    may fall outside the committed interval, as Singh's ten ablation drops did under another
    instruction-set setting); a claim measured once must keep its value to 1% (or 1e-6
    absolute), since it may be computed differently on another CPU. Empty when everything agrees.
    """
    problems = []
    for path in sorted(Path(fresh_dir).glob("*.json")):
        committed_path = Path(committed_dir) / path.name
        if not committed_path.exists():
            continue
        fresh, committed = (json.loads(f.read_text(encoding="utf-8")) for f in (path, committed_path))
        comparable = {k: v for k, v in fresh["parameters"].items() if k != "results_dir"}
        if comparable != {k: v for k, v in committed["parameters"].items() if k != "results_dir"}:
            continue
        before = {c["id"]: Claim(**c) for c in committed["claims"]}
        for claim in (Claim(**c) for c in fresh["claims"]):
            old = before.get(claim.id)
            where = f"{fresh['chapter']}/{claim.id}"
            if old is None:
                problems.append(f"{where}: not in the committed ledger")
            elif claim.verdict != old.verdict:
                problems.append(f"{where}: verdict {claim.verdict!r}, committed {old.verdict!r}")
            elif old.interval is not None and not (claim.interval[0] <= old.interval[1] and old.interval[0] <= claim.interval[1]):
                problems.append(f"{where}: interval [{claim.interval[0]:.4g}, {claim.interval[1]:.4g}] does not meet "
                                f"the committed interval [{old.interval[0]:.4g}, {old.interval[1]:.4g}]")
            elif old.interval is None and not math.isclose(claim.measured, old.measured, rel_tol=1e-2, abs_tol=1e-6):
                problems.append(f"{where}: value {claim.measured:.6g}, committed {old.measured:.6g}")
    return problems


def intervals_markdown(claims: list[Claim]) -> str:
    """What a chapter's checked summary rounds, as a Markdown table: per claim its id, kind,
    verdict, the median with its interval and coverage (:meth:`Claim.interval_text`) and the rule
    (and the ``partly`` rule). Chapters show it unchecked, beside the checked summary: the
    intervals' ends are single seeds' values, which move on another CPU."""
    return markdown_table(
        ["claim", "kind", "verdict", "measured: median [interval], seeds, coverage", "rule (partly)"],
        [[f"`{c.id}`", c.kind, f"**{c.verdict}**", c.interval_text(), c.rule + (f" ({c.partly})" if c.partly else "")]
         for c in claims])


def claims_markdown(claims: list[Claim], chapter_names: Mapping[str, str] | None = None) -> str:
    """The claims as Markdown: a table of counts by kind and verdict, then one table per chapter.

    Each chapter's table starts with its own counts and has three columns (the claim: its
    id, the statement checked and its source; the measured value against the rule; the
    verdict with a link to the figure behind it), narrow enough for the book's page.
    ``chapter_names`` maps a chapter slug to the Markdown that names it (e.g. a link);
    chapters come in its order, then any others in the order of ``claims``.
    """
    if not claims:
        return "*No chapter has recorded claims yet.*"
    names = dict(chapter_names or {})
    chapters = [slug for slug in names if any(c.chapter == slug for c in claims)]
    chapters += [slug for slug in dict.fromkeys(c.chapter for c in claims) if slug not in chapters]
    sections = [f"{verdict_counts(claims)}.", kind_table(claims)]
    for slug in chapters:
        own = [c for c in claims if c.chapter == slug]
        rows = []
        for c in own:
            # A MyST cross-reference: rendered as a link in the book, unresolved ones fail the build.
            verdict = f"**{c.verdict}**" + (f" ({{ref}}`figure <{c.figure}>`)" if c.figure else "")
            statement = f"`{c.id}` ({c.kind}): {c.statement} *({c.source}; {c.provenance})*"
            measured = f"{c.quantity}: **{c.interval_text()}** (rule {c.rule})"
            rows.append([statement, measured, verdict])
        table = markdown_table(["claim checked", "measured", "verdict"], rows)
        sections.append(f"**{names.get(slug, slug)}**: {verdict_counts(own)}.\n\n" + table)
    return "\n\n".join(sections)
