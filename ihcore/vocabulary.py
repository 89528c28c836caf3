"""One induction circuit, three vocabularies: the map between the papers' names for its parts.

Each row of :data:`VOCABULARY` is one step of the circuit on ``x_1 y_1 ... x_N y_N x_q``
with the name each paper gives it, and the claims of this book's chapters that bear on
it (``(chapter slug, claim id)``). :func:`vocabulary_markdown` fills those claims'
measured values and verdicts in from the ledgers, so the evidence column is always the
book's latest numbers, never typed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ihcore.claims import Claim


@dataclass(frozen=True)
class Step:
    """A step of the induction circuit and its name in each paper (Markdown)."""

    step: str
    musat: str
    singh: str
    wang: str
    evidence: tuple[tuple[str, str], ...]


VOCABULARY = (
    Step(
        step="previous-token: each label takes in the item before it",
        musat="α₃: the M-block of W⁽¹⁾ (label i attends to item i, copies x_i into a1e)",
        singh="A = steps 1 + 2: a layer-0 previous-token head attends and copies",
        wang="layer-1 RPE head with slope p1 → ∞ (z_t = x_{t−1}); frozen at the ideal in the layer-wise protocol",
        evidence=(("musat", "slope-alpha3"), ("singh", "clamp-A-speeds-up"), ("singh", "many-to-many-wiring")),
    ),
    Step(
        step="matching: the query finds the label whose item is like it",
        musat="β₂: the (e, a1e) block of W⁽²⁾ (x_q · copy of x_i)",
        singh="B = steps 3qk + 4: the induction head's query–key match",
        wang="dot-product head B: logit w_Q·w_K·x_L·x_{s−1}, quadratic in the parameters",
        evidence=(("musat", "slope-beta2"), ("wang", "time-scales"), ("singh", "classes-slow-match")),
    ),
    Step(
        step="copying: the matched label is written to the output",
        musat="γ₃: the a2e block of W⁽³⁾ (reads the attended label out)",
        singh="C = steps 3v + 5: the induction head's value/output path copies the label",
        wang="value weight vB of head B (linear in the parameters)",
        evidence=(("musat", "slope-gamma3"), ("singh", "clamp-C-speeds-up"), ("singh", "labels-delay-copy")),
    ),
    Step(
        step="what the plateau computes",
        musat="γ₃ alone: the average of the context labels (C7)",
        singh="copy a label from the context without matching: accuracy ≈ 1/2",
        wang="the lazy solution: 4-gram (positional head A, vA x_{L−2}) plus the context mean",
        evidence=(("singh", "plateau-accuracy"), ("wang", "plateau"), ("wang", "ih-loss-in-phase-1")),
    ),
)


def evidence_markdown(claims: list[Claim], evidence: tuple[tuple[str, str], ...]) -> str:
    """``chapter/id: value (verdict)`` for each cited claim, "not run" for one missing from ``claims``."""
    by_key = {(c.chapter, c.id): c for c in claims}
    parts = []
    for chapter, claim_id in evidence:
        claim = by_key.get((chapter, claim_id))
        if claim is None:
            parts.append(f"{chapter} `{claim_id}`: not run")
        else:
            parts.append(f"{chapter} `{claim_id}`: {claim.measured:.3g} ({claim.verdict})")
    return "; ".join(parts)


def vocabulary_markdown(claims: list[Claim]) -> str:
    """The vocabulary map as a Markdown table, with this book's evidence for each step."""
    rows = ["| step | Musat et al. | Singh et al. | Wang et al. | this book's evidence |", "|---|---|---|---|---|"]
    for step in VOCABULARY:
        cells = [step.step, step.musat, step.singh, step.wang, evidence_markdown(claims, step.evidence)]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)
