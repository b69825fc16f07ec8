"""Counts in sentences agree with their number."""

import pytest

from portl.plural import counted, plural


@pytest.mark.parametrize(("count", "noun", "text"), [
    (1, "committed batch", "1 committed batch"),
    (2, "committed batch", "2 committed batches"),
    (0, "row", "0 rows"),
    (1, "source row", "1 source row"),
    (25_000, "row", "25,000 rows"),
    (3, "attempt", "3 attempts"),
])
def test_a_count_and_its_noun_agree(count, noun, text):
    assert counted(count, noun) == text


def test_words_that_do_not_take_an_s_change_as_they_should():
    assert [plural(2, "entry"), plural(2, "is"), plural(2, "it"), plural(1, "is")] == ["entries", "are", "they", "is"]
