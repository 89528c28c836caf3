"""The claims ledger: each claim a chapter checks, its measured value and its verdict.

A chapter states its claims *before* it runs anything (:meth:`ClaimsLedger.expect`: the
claim as quoted from its source, and the acceptance rule), then records the measured
values (:meth:`ClaimsLedger.measure`). The verdict is computed from the rule, never
typed. :meth:`ClaimsLedger.write` saves ``<claims dir>/<chapter>.json`` atomically, and
the book's introduction tabulates every chapter's file (:func:`claims_markdown`).

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

from ihcore.spine.markdown import markdown_table

VERDICTS = ("reproduced", "partly", "not reproduced")


@dataclass(frozen=True)
class Rule:
    """Acceptance interval for a measured value: lower <= value <= upper (None: unbounded)."""

    lower: float | None = None
    upper: float | None = None

    def accepts(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.lower is None or value >= self.lower) and (self.upper is None or value <= self.upper)

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


@dataclass(frozen=True)
class Claim:
    """One checked claim.

    source: where the statement comes from, e.g. "Singh et al. 2024, §3 (secondary
    summary)" or "background"; provenance: "paper" (the paper states it), "secondary"
    (reviewers or summaries state it) or "reconstruction" (this book's own choice or
    derivation), as each chapter's provenance table explains. rule and partly describe the acceptance
    intervals; verdict is computed from them. figure is the book-wide label of the figure
    behind the verdict, prefixed by the chapter's slug (``from-scratch-phase-change``).
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
        partly: Rule | None = None,
        figure: str = "",
    ) -> None:
        """Declare a claim and its acceptance rule before any measurement.

        ``quantity`` says what is measured, e.g. "held-out-class accuracy after
        training". ``partly`` is an optional wider interval that earns "partly".
        """
        if claim_id in self._expected:
            raise ValueError(f"claim {claim_id!r} declared twice")
        if provenance not in self.PROVENANCES:
            raise ValueError(f"provenance must be one of {self.PROVENANCES}, got {provenance!r}")
        self._expected[claim_id] = dict(
            source=source, provenance=provenance, statement=statement, quantity=quantity,
            rule=rule, partly=partly, figure=figure,
        )

    def measure(self, claim_id: str, value: float) -> Claim:
        """Record the measured value of a declared claim; returns the claim with its verdict."""
        if claim_id not in self._expected:
            raise KeyError(f"claim {claim_id!r} was not declared with expect() before measuring")
        if claim_id in self._measured:
            raise ValueError(f"claim {claim_id!r} already measured")
        self._measured[claim_id] = float(value)
        return self.claim(claim_id)

    def claim(self, claim_id: str) -> Claim:
        spec, value = self._expected[claim_id], self._measured[claim_id]
        if spec["rule"].accepts(value):
            verdict = "reproduced"
        elif spec["partly"] is not None and spec["partly"].accepts(value):
            verdict = "partly"
        else:
            verdict = "not reproduced"
        return Claim(
            id=claim_id, chapter=self.chapter, source=spec["source"], provenance=spec["provenance"],
            statement=spec["statement"], quantity=spec["quantity"], rule=spec["rule"].describe(),
            partly=spec["partly"].describe() if spec["partly"] else None,
            measured=value, verdict=verdict, figure=spec["figure"],
        )

    def plan_markdown(self) -> str:
        """The declared claims and their acceptance rules, as a Markdown table."""
        rows = []
        for claim_id, spec in self._expected.items():
            rule = spec["rule"].describe() + (f" (partly: {spec['partly'].describe()})" if spec["partly"] else "")
            rows.append([claim_id, f"{spec['source']} ({spec['provenance']})", spec["statement"], spec["quantity"], rule])
        return markdown_table(["claim", "source", "statement checked", "measured quantity", "rule"], rows)

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


def claims_dir() -> Path:
    return Path(os.environ.get("IHCORE_CLAIMS_DIR", "../data/claims"))


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
    """``"n claims: a reproduced, b partly, c not reproduced"``."""
    counts = ", ".join(f"{sum(c.verdict == verdict for c in claims)} {verdict}" for verdict in VERDICTS)
    return f"{len(claims)} claim{'s' if len(claims) != 1 else ''}: {counts}"


def claims_markdown(claims: list[Claim], chapter_names: Mapping[str, str] | None = None) -> str:
    """The claims as Markdown: a summary line of verdict counts, then one table per chapter.

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
    sections = [f"{verdict_counts(claims)}."]
    for slug in chapters:
        own = [c for c in claims if c.chapter == slug]
        rows = []
        for c in own:
            # A MyST cross-reference: rendered as a link in the book, unresolved ones fail the build.
            verdict = f"**{c.verdict}**" + (f" ({{ref}}`figure <{c.figure}>`)" if c.figure else "")
            statement = f"`{c.id}`: {c.statement} *({c.source}; {c.provenance})*"
            measured = f"{c.quantity}: **{c.measured:.3g}** (rule {c.rule})"
            rows.append([statement, measured, verdict])
        table = markdown_table(["claim checked", "measured", "verdict"], rows)
        sections.append(f"**{names.get(slug, slug)}**: {verdict_counts(own)}.\n\n" + table)
    return "\n\n".join(sections)
