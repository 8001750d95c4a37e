"""Merge semantics of the extension snippet with the user's document."""

import copy
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from flask_rock.merge import merge_document, merge_value

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("user", [None, [], {}, "", 0, False])
def test_user_without_value_takes_the_extension_value(user: Any):
    assert merge_value(user, {"a": 1}) == {"a": 1}


def test_absent_key_takes_the_extension_value():
    assert merge_document({"name": "x"}, {"run-user": "_daemon_"}) == {
        "name": "x",
        "run-user": "_daemon_",
    }


@pytest.mark.parametrize("user", ["root", 7, True, ["x"], {"k": "v"}])
def test_user_value_wins_over_a_different_kind(user: Any):
    assert merge_value(user, "_daemon_") == user


def test_user_scalar_wins_over_extension_scalar():
    assert merge_value("sync-please", "replace") == "sync-please"


def test_dicts_merge_recursively_keeping_user_keys():
    user = {"flask": {"command": "mine", "environment": {"A": "1"}}, "other": {"x": 1}}
    extension = {"flask": {"command": "theirs", "user": "_daemon_"}, "statsd": {"y": 2}}
    assert merge_value(user, extension) == {
        "flask": {"command": "mine", "environment": {"A": "1"}, "user": "_daemon_"},
        "other": {"x": 1},
        "statsd": {"y": 2},
    }


def test_dict_merge_keeps_user_key_order_then_appends_new_keys():
    merged = merge_value({"b": 1, "a": None}, {"a": 2, "c": 3})
    assert list(merged) == ["b", "a", "c"]
    assert merged == {"b": 1, "a": 2, "c": 3}


def test_string_lists_concatenate_extension_first_and_deduplicate():
    assert merge_value(["libpq-dev", "python3-venv", "libpq-dev"], ["python3-venv"]) == [
        "python3-venv",
        "libpq-dev",
    ]


def test_mixed_lists_concatenate_without_deduplication():
    extension = [{"owner": 1}]
    user = [{"owner": 1}, "x", "x"]
    assert merge_value(user, extension) == [{"owner": 1}, {"owner": 1}, "x", "x"]


def test_lists_of_only_dicts_are_not_deduplicated():
    assert merge_value([{"a": 1}], [{"a": 1}]) == [{"a": 1}, {"a": 1}]


def test_user_list_wins_over_extension_dict():
    assert merge_value(["a"], {"k": "v"}) == ["a"]


def test_inputs_are_not_modified():
    user = {"parts": {"p": {"stage-packages": ["a"]}}}
    extension = {"parts": {"p": {"stage-packages": ["b"], "plugin": "nil"}}}
    user_before, extension_before = copy.deepcopy(user), copy.deepcopy(extension)
    merged = merge_document(user, extension)
    merged["parts"]["p"]["stage-packages"].append("c")
    assert user == user_before
    assert extension == extension_before


@given(values)
def test_merging_with_nothing_gives_the_extension_value(extension: Any):
    assert merge_value(None, extension) == extension


@given(values, values)
def test_truthy_non_container_user_value_always_wins(user: Any, extension: Any):
    if user and not isinstance(user, (list, dict)):
        assert merge_value(user, extension) == user


@given(st.lists(st.text(max_size=3), min_size=1), st.lists(st.text(max_size=3)))
def test_string_list_merge_is_ordered_union(user: list[str], extension: list[str]):
    merged = merge_value(user, extension)
    assert len(merged) == len(set(merged))
    assert set(merged) == set(user) | set(extension)
    expected_order = list(dict.fromkeys(extension + user))
    assert merged == expected_order


@given(
    st.dictionaries(st.text(max_size=3), values, min_size=1),
    st.dictionaries(st.text(max_size=3), values),
)
def test_dict_merge_keeps_every_key(user: dict, extension: dict):
    merged = merge_value(user, extension)
    assert set(merged) == set(user) | set(extension)
    for key in set(extension) - set(user):
        assert merged[key] == extension[key]


@given(values, values)
def test_merge_is_idempotent(user: Any, extension: Any):
    # Our snippet's lists are duplicate-free; lists with non-strings are never de-duplicated,
    # so re-applying would grow them.
    assume(not _has_repeats(extension))
    once = merge_value(user, extension)
    assume(not _has_mixed_list(once))
    assert merge_value(once, extension) == once


def _has_repeats(value: Any) -> bool:
    if isinstance(value, list):
        strings = [i for i in value if isinstance(i, str)]
        return len(set(strings)) != len(strings) or any(_has_repeats(i) for i in value)
    if isinstance(value, dict):
        return any(_has_repeats(v) for v in value.values())
    return False


def _has_mixed_list(value: Any) -> bool:
    if isinstance(value, list):
        return not all(isinstance(i, str) for i in value) or any(_has_mixed_list(i) for i in value)
    if isinstance(value, dict):
        return any(_has_mixed_list(v) for v in value.values())
    return False
