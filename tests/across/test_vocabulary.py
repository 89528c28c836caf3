"""The cross-paper tables cite real claims and show their measured values from the ledgers."""

import re
from pathlib import Path

from ihcore.across.vocabulary import POSITIONS, VOCABULARY, evidence_markdown, table_markdown
from ihcore.spine.claims import Claim, ClaimsLedger, at_least, load_claims

CLAIMS = Path(__file__).resolve().parents[2] / "data" / "claims"


def claim(chapter, claim_id, measured, verdict):
    return Claim(id=claim_id, chapter=chapter, source="s", provenance="paper", statement="st", quantity="q",
                 rule="≥ 1", partly=None, measured=measured, verdict=verdict, figure="", kind="reproduction")


def seeded_claim(values):
    ledger = ClaimsLedger("singh")
    ledger.expect("b", source="s", provenance="paper", statement="st", quantity="q", rule=at_least(0.5), kind="beyond")
    return ledger.measure("b", values)


def columns(line):
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_every_cited_claim_exists_in_the_committed_ledgers():
    committed = {(c.chapter, c.id) for c in load_claims(CLAIMS)}
    cited = {key for row in VOCABULARY + POSITIONS for key in row.evidence}
    assert cited <= committed, sorted(cited - committed)


def test_evidence_shows_the_measured_value_and_verdict_or_says_not_run():
    text = evidence_markdown([claim("musat", "a", 1.98765, "reproduced")], (("musat", "a"), ("singh", "b")))
    assert text == "musat `a`: 1.99 (reproduced); singh `b`: not run"


def test_evidence_of_a_claim_over_seeds_is_its_median_at_the_interval_precision():
    # median 0.4237, interval [0.31, 0.58]: width 0.27, so one decimal
    text = evidence_markdown([seeded_claim([0.31, 0.4237, 0.58, 0.40, 0.47])], (("singh", "b"),))
    assert text == "singh `b`: 0.4 (undecided, 5 seeds)"


def test_agreement_column_only_where_rows_have_one():
    vocabulary, positions = table_markdown(VOCABULARY, []).splitlines(), table_markdown(POSITIONS, [], "question").splitlines()
    assert len(vocabulary) == 2 + len(VOCABULARY) and len(positions) == 2 + len(POSITIONS)
    assert {columns(line) for line in vocabulary} == {5} and {columns(line) for line in positions} == {6}
    assert positions[0].startswith("| question |") and "agreement" not in vocabulary[0]
