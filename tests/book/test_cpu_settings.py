"""A training chapter gives the same checked outputs under another instruction-set setting.

The committed notebooks were executed with the math libraries pinned to their AVX2 paths
(:mod:`ihcore.spine.reproducibility`). Here the from-scratch chapter (five trained seeds)
is re-executed with ATen's own dispatch (``ATEN_CPU_CAPABILITY=default``: the best the CPU
has) and MKL's ``COMPATIBLE`` path (:mod:`ihcore.book.cross_cpu`): the trained weights then
differ from the committed run's in the 6th to 7th digit, as on another CPU, and every checked
output must still be identical, and every claim must keep its verdict with an interval meeting
the committed interval. ``make cross-cpu`` does the same for every chapter with seeds.
"""

from ihcore.book.chapters import FROM_SCRATCH
from ihcore.book.cross_cpu import check_chapter


def test_checked_outputs_and_verdicts_survive_another_instruction_set(tmp_path):
    report = check_chapter(FROM_SCRATCH, destination=tmp_path)
    assert report.claims_changed  # the setting did change the runs
    assert report.differing_cells == []
    assert report.claim_disagreements == []
