"""Markdown tables: header, separator, one line per row, pipes escaped, ragged rows refused."""

import pytest

from ihcore.spine.markdown import markdown_table


def test_a_table_has_a_header_a_separator_and_escaped_cells():
    assert markdown_table(["a", "b"], [["1", "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"


def test_a_row_with_the_wrong_number_of_cells_is_refused():
    with pytest.raises(ValueError, match="1 cells, the header 2"):
        markdown_table(["a", "b"], [["1"]])
