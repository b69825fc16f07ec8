"""The /metrics text, as Prometheus' exposition format 0.0.4 writes it: HELP and TYPE before the
samples, label values and help escaped, cumulative histogram buckets ending at +Inf, whole numbers
without a decimal point; a family written twice or a bad name is refused."""

from __future__ import annotations

import pytest

from portl.service.api.prometheus import Exposition, escape_label, number


def test_a_gauge_is_its_help_its_type_and_one_line_per_sample():
    out = Exposition()
    out.family("portl_jobs", "gauge", "Jobs per status.", [({"tenant": "acme", "status": "failed"}, 2),
                                                          ({"tenant": "acme", "status": "queued"}, 0)])
    assert str(out) == ('# HELP portl_jobs Jobs per status.\n# TYPE portl_jobs gauge\n'
                        'portl_jobs{tenant="acme",status="failed"} 2\nportl_jobs{tenant="acme",status="queued"} 0\n')


def test_label_values_escape_backslash_quote_and_newline():
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    out = Exposition()
    out.family("portl_workers", "gauge", "Line one\nline two, C:\\path", [({"worker": 'say "hi"'}, 1)])
    assert str(out).splitlines() == ['# HELP portl_workers Line one\\nline two, C:\\\\path',
                                     '# TYPE portl_workers gauge', 'portl_workers{worker="say \\"hi\\""} 1']


def test_a_histogram_has_cumulative_buckets_ending_at_inf_then_sum_and_count():
    out = Exposition()
    out.histogram("portl_batch_duration_seconds", "Durations.", (0.5, 2.5),
                  [({"tenant": "acme"}, [1, 3], 4.75, 5)])
    assert str(out).splitlines()[2:] == [
        'portl_batch_duration_seconds_bucket{tenant="acme",le="0.5"} 1',
        'portl_batch_duration_seconds_bucket{tenant="acme",le="2.5"} 3',
        'portl_batch_duration_seconds_bucket{tenant="acme",le="+Inf"} 5',
        'portl_batch_duration_seconds_sum{tenant="acme"} 4.75',
        'portl_batch_duration_seconds_count{tenant="acme"} 5']


def test_numbers_are_written_as_the_format_reads_them():
    assert [number(v) for v in (3, 3.0, 0.25, float("inf"), float("-inf"), float("nan"), True)] == [
        "3", "3", "0.25", "+Inf", "-Inf", "NaN", "1"]


@pytest.mark.parametrize("name, kind, message", [
    ("portl-jobs", "gauge", "a name like portl_jobs"),
    ("portl_jobs", "enum", "one of gauge, counter, histogram"),
])
def test_a_bad_name_or_type_is_refused(name, kind, message):
    with pytest.raises(ValueError, match=message):
        Exposition().family(name, kind, "help")


def test_a_family_written_twice_is_refused():
    out = Exposition()
    out.family("portl_workers", "gauge", "Workers.", [({}, 1)])
    with pytest.raises(ValueError, match="written twice"):
        out.family("portl_workers", "gauge", "Workers.", [({}, 2)])


def test_a_bad_label_name_is_refused():
    with pytest.raises(ValueError, match="'le-x' is not a label name"):
        Exposition().family("portl_workers", "gauge", "Workers.", [({"le-x": "1"}, 1)])
