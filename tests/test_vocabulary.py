"""The vocabulary map cites real claims and shows their measured values from the ledgers."""

import re
from pathlib import Path

from ihcore.claims import Claim, load_claims
from ihcore.vocabulary import VOCABULARY, evidence_markdown, vocabulary_markdown

CLAIMS = Path(__file__).resolve().parent.parent / "data" / "claims"


def claim(chapter, claim_id, measured, verdict):
    return Claim(id=claim_id, chapter=chapter, source="s", provenance="paper", statement="st", quantity="q",
                 rule="≥ 1", partly=None, measured=measured, verdict=verdict, figure="")


def test_every_cited_claim_exists_in_the_committed_ledgers():
    committed = {(c.chapter, c.id) for c in load_claims(CLAIMS)}
    cited = {key for step in VOCABULARY for key in step.evidence}
    assert cited <= committed, sorted(cited - committed)


def test_evidence_shows_the_measured_value_and_verdict_or_says_not_run():
    text = evidence_markdown([claim("musat", "a", 1.98765, "reproduced")], (("musat", "a"), ("singh", "b")))
    assert text == "musat `a`: 1.99 (reproduced); singh `b`: not run"


def test_table_has_one_row_per_step_and_five_columns():
    lines = vocabulary_markdown([]).splitlines()
    assert len(lines) == 2 + len(VOCABULARY)
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 6 for line in lines)
