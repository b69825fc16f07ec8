"""Answers given ahead of time: the answers file, and the short forms of flags."""

import os

import pytest

from portl.errors import ConfigError
from portl.wizard import answer_keys
from portl.wizard.answers import hook_value, names, pairs, read_answers_file, relative_to_answers, transform_list


def test_pairs_read_repeated_flags_a_mapping_and_one_joined_text_alike():
    expected = {"email": "Email", "id": "customer_id"}

    assert pairs(["email=Email", "id=customer_id"], "columns") == expected
    assert pairs({"email": "Email", "id": "customer_id"}, "columns") == expected
    assert pairs("email=Email; id=customer_id", "columns") == expected


def test_a_pair_without_equals_sign_says_what_is_expected():
    with pytest.raises(ValueError, match="'email': expected columns as KEY=VALUE"):
        pairs(["email"], "columns")


def test_names_split_on_commas_and_none_means_no_names():
    assert names("id, region") == ["id", "region"]
    assert names("none") == []


def test_transforms_in_short_form_become_job_language_transforms():
    assert transform_list("trim,lower") == ["trim", "lower"]


def test_a_date_format_with_a_comma_inside_parentheses_stays_one_format():
    assert transform_list("trim, date(%b %d, %Y|%Y-%m-%d)") == ["trim", {"date": ["%b %d, %Y", "%Y-%m-%d"]}]


def test_date_without_formats_is_left_for_the_sample_to_fill():
    assert transform_list("date") == [{"date": []}]


def test_none_means_no_transforms():
    assert transform_list("none") == []


def test_an_unknown_transform_names_the_closest_one():
    with pytest.raises(ValueError, match="unknown transform 'lowr'; did you mean 'lower'"):
        transform_list("trim,lowr")


@pytest.mark.parametrize(("text", "step"), [
    ("default(n/a)", {"default": "n/a"}),
    ("null_if(-|n/a)", {"null_if": ["-", "n/a"]}),
    ("concat(First|Last)", {"concat": ["First", "Last"]}),
    ("coalesce(Mobile|Phone)", {"coalesce": ["Mobile", "Phone"]}),
    ("replace(\\s+| )", {"replace": {"pattern": "\\s+", "with": " "}}),
])
def test_transforms_that_take_arguments_have_a_short_form(text, step):
    assert transform_list(text) == [step]


def test_a_transform_without_arguments_given_one_is_refused():
    with pytest.raises(ValueError, match="'trim\\(x\\)': trim takes no argument"):
        transform_list("trim(x)")


def test_transforms_written_in_the_job_language_are_accepted():
    assert transform_list(["trim", {"date": ["%d/%m/%Y"]}]) == ["trim", {"date": ["%d/%m/%Y"]}]


@pytest.mark.parametrize(("text", "hook"), [
    ("script:./notify.sh --quiet", {"type": "script", "command": "./notify.sh --quiet"}),
    ("python:hooks:clean_row", {"type": "python", "function": "hooks:clean_row"}),
    ("http:https://example.com/hook", {"type": "http", "url": "https://example.com/hook"}),
    ("https://example.com/hook", {"type": "http", "url": "https://example.com/hook"}),
])
def test_hooks_in_short_form(text, hook):
    assert hook_value(text) == hook


def test_none_is_no_hook():
    assert hook_value("none") is None


def test_a_python_hook_needs_module_and_function():
    with pytest.raises(ValueError, match="a python hook is module:function"):
        hook_value("python:hooks")


def test_an_unknown_hook_type_lists_the_types():
    with pytest.raises(ValueError, match="TYPE one of script, python, http"):
        hook_value("lambda:arn")


def test_a_hook_written_in_the_job_language_is_checked_by_its_model():
    with pytest.raises(ValueError, match="module:function"):
        hook_value({"type": "python", "function": "nocolon"})


def test_the_answers_file_accepts_keys_written_like_flags(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("source-type: csv\nbatch_size: 10\n")

    assert read_answers_file(str(path), answer_keys()) == {"source_type": "csv", "batch_size": 10}


def test_every_unknown_key_of_the_answers_file_is_reported_with_the_closest_key(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("source_typ: csv\nbatch: 10\nsource_path: a.csv\n")

    with pytest.raises(ConfigError) as info:
        read_answers_file(str(path), answer_keys())

    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2
    assert "unknown answer 'source_typ'; did you mean 'source_type'?" in messages[0]
    assert "unknown answer 'batch'" in messages[1]


def test_an_answers_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("- csv\n")

    with pytest.raises(ConfigError, match="a mapping of answers"):
        read_answers_file(str(path), answer_keys())


def test_paths_in_the_answers_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "answers").mkdir()

    fixed = relative_to_answers({"source_path": "data.csv", "output": "/abs/job.yaml", "name": "x"},
                                str(tmp_path / "answers" / "a.yaml"), ("source_path", "output"))

    assert fixed == {"source_path": os.path.join("answers", "data.csv"), "output": "/abs/job.yaml", "name": "x"}


def test_keys_of_flags_stored_under_another_name_are_accepted(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("column: [id=customer_id]\nappend: false\n")

    assert read_answers_file(str(path), answer_keys()) == {"columns": ["id=customer_id"], "if_exists": False}
