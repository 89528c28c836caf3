"""One induction circuit, three vocabularies: what each paper calls its parts and says of them.

Two tables of :class:`Row`: :data:`VOCABULARY` maps each step of the circuit on
``x_1 y_1 ... x_N y_N x_q`` to its name in each paper; :data:`POSITIONS` sets the papers'
answers to the same questions side by side, with whether they agree. Each row cites the
claims of this book's chapters that bear on it (``(chapter slug, claim id)``), and
:func:`table_markdown` fills their measured values and verdicts in from the ledgers, so
the evidence is always the book's latest numbers, never typed in. A claim over seeds shows
its median at the precision its interval supports (:meth:`ihcore.spine.claims.Claim.estimate`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ihcore.spine.claims import Claim
from ihcore.spine.markdown import markdown_table


@dataclass(frozen=True)
class Row:
    """A step of the circuit (or a question about it) and each paper's name for it (or answer), in Markdown."""

    topic: str
    musat: str
    singh: str
    wang: str
    evidence: tuple[tuple[str, str], ...]
    agreement: str = ""


VOCABULARY = (
    Row(
        topic="previous-token: each label takes in the item before it",
        musat="α₃: the M-block of W⁽¹⁾ (label i attends to item i, copies x_i into a1e)",
        singh="A = steps 1 + 2: a layer-0 previous-token head attends and copies",
        wang="layer-1 RPE head, slope p1 → ∞ (z_t = x_{t−1}); held at the ideal in the layer-wise protocol",
        evidence=(("musat", "slope-alpha3"), ("singh", "clamp-A-speeds-up"), ("singh", "many-to-many-wiring"),
                  ("across", "gap-match-previous-adam"), ("across", "gap-match-previous-sgd")),
    ),
    Row(
        topic="matching: the query finds the label whose item is like it",
        musat="β₂: the (e, a1e) block of W⁽²⁾ (x_q against the copy of x_i)",
        singh="B = steps 3qk + 4: the induction head's query–key match",
        wang="dot-product head B: logit w_Q·w_K·x_L·x_{s−1}, quadratic in the parameters",
        evidence=(("musat", "slope-beta2"), ("wang", "time-scales"), ("singh", "classes-slow-match"),
                  ("across", "gap-copy-match-adam"), ("across", "gap-copy-match-sgd")),
    ),
    Row(
        topic="copying: the matched label is written to the output",
        musat="γ₃: the a2e block of W⁽³⁾ (reads the attended label out)",
        singh="C = steps 3v + 5: the induction head's value/output path",
        wang="value weight vB of head B, linear in the parameters",
        evidence=(("musat", "slope-gamma3"), ("singh", "clamp-C-speeds-up"), ("singh", "labels-delay-copy")),
    ),
)

POSITIONS = (
    Row(
        topic="What does the plateau compute?",
        musat="γ₃ alone: the average of the context labels",
        singh="a label copied from the context without matching: accuracy ≈ 1/(labels in context)",
        wang="the lazy solution: the 4-gram (positional head A) plus the context mean",
        agreement="agree: copy from the context, no match yet",
        evidence=(("singh", "plateau-accuracy"), ("wang", "plateau"), ("wang", "ih-loss-in-phase-1")),
    ),
    Row(
        topic="What makes the plateau?",
        musat="each part's gradient waits on the part before it: Θ(1/N) for γ₃, then Θ(1/N²) for β₂ and α₃",
        singh="three subcircuits that only pay off together (a product, like the three-factor toy model)",
        wang="the match enters quadratically (w_Q·w_K) from a small initialisation, the positional path linearly",
        agreement="agree in kind: products of small factors; differ on which product",
        evidence=(("musat", "gradient-beta2"), ("singh", "toy-clamp-removes-plateau"), ("wang", "time-scales")),
    ),
    Row(
        topic="In what order do the parts form?",
        musat="copy first, then match, then previous-token: γ₃ → β₂ → α₃",
        singh="no fixed order claimed: each evolves smoothly; clamping A or C speeds the rest",
        wang="previous-token first by construction (layer-wise training); then positional before dot product",
        agreement="disagree: only Musat et al. claim an order",
        evidence=(("musat", "order-full"), ("across", "order-musat-lens"), ("across", "order-singh-lens"),
                  ("across", "order-adam"), ("across", "order-adam-small"), ("across", "order-sgd"),
                  ("across", "order-sgd-small")),
    ),
    Row(
        topic="How does the time grow with the context?",
        musat="Θ(N²) in N pairs (a theorem about the 3-parameter model)",
        singh="not studied; more labels or classes shift the phase change",
        wang="with an unnormalised target the plateau grows with L (the IH signal shrinks like 1/L)",
        agreement="Musat et al. alone make it a law",
        evidence=(("musat", "slope-full"), ("across", "n-squared-singh-task"), ("across", "n-squared-musat-task"),
                  ("across", "n-squared-adam"), ("across", "n-squared-adam-small"), ("across", "n-squared-sgd"),
                  ("across", "n-squared-long-adam"), ("across", "n-squared-long-adam-small"),
                  ("across", "n-squared-long-sgd")),
    ),
    Row(
        topic="Which training does each claim need?",
        musat="gradient flow from zero (plain gradient descent, both theorems); the order is also "
        "claimed for a standard model (v2), trained as the sources do not say",
        singh="Adam from the usual random initialisation (their runs); no claim about other optimisers",
        wang="layer-wise gradient flow from a small initialisation (the analysis); Adam in the v3 experiments",
        agreement="differ: the theories assume gradient descent from a small start, Singh et al.'s evidence "
        "is Adam; this book's recipe controls test both recipes on the same model",
        evidence=(("across", "order-adam"), ("across", "order-adam-small"), ("across", "order-sgd"),
                  ("across", "order-sgd-small"), ("across", "n-squared-adam"), ("across", "n-squared-adam-small"),
                  ("across", "n-squared-sgd"), ("across", "n-squared-long-adam"), ("across", "n-squared-long-adam-small"),
                  ("across", "n-squared-long-sgd")),
    ),
)


def evidence_markdown(claims: list[Claim], evidence: tuple[tuple[str, str], ...]) -> str:
    """``chapter `id`: value (verdict)`` for each cited claim, the value at the precision its
    interval supports and, for a claim over seeds, their number; "not run" for one missing
    from ``claims``."""
    by_key = {(c.chapter, c.id): c for c in claims}
    parts = []
    for chapter, claim_id in evidence:
        claim = by_key.get((chapter, claim_id))
        if claim is None:
            result = "not run"
        else:
            seeds = f", {claim.n_seeds} seeds" if claim.per_seed is not None else ""
            result = f"{claim.estimate()} ({claim.verdict}{seeds})"
        parts.append(f"{chapter} `{claim_id}`: {result}")
    return "; ".join(parts)


def table_markdown(rows: tuple[Row, ...], claims: list[Claim], topic: str = "step") -> str:
    """``rows`` as a Markdown table headed ``topic``, with an "agreement" column if any row has one,
    and this book's evidence for each row from ``claims``."""
    with_agreement = any(row.agreement for row in rows)
    header = [topic, "Musat et al.", "Singh et al.", "Wang et al."] + (["agreement"] if with_agreement else []) + ["this book's evidence"]
    cells = [[row.topic, row.musat, row.singh, row.wang] + ([row.agreement] if with_agreement else [])
             + [evidence_markdown(claims, row.evidence)] for row in rows]
    return markdown_table(header, cells)
