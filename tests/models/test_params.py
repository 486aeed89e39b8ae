"""The parameter tables models declare, checked by ``recae.checks.check_params``."""

from __future__ import annotations

import numpy as np
import pytest

from recae.checks import Interval, ListOf, Options, check_params
from recae.errors import UsageError

TABLE = {
    "factors": [Interval(int, 1, None)],
    "l2": [Interval(float, 0, None, closed="neither")],
    "dropout": [Interval(float, 0, 1, closed="left")],
    "bm25_b": [Interval(float, 0, 1)],
    "random_state": [Interval(int, 0, None), None],
    "weighting": [Options(("cosine", "tfidf", "bm25"))],
    "hidden_dims": [ListOf(Interval(int, 1, None))],
    "device": [str, Interval(int, 0, None)],
}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"factors": 0}, "factors must be an integer ≥ 1, got 0"),
        ({"factors": 2.0}, "factors must be an integer ≥ 1, got 2.0"),
        ({"factors": True}, "factors must be an integer ≥ 1, got True"),
        ({"l2": 0.0}, "l2 must be a finite number > 0, got 0.0"),
        ({"l2": float("inf")}, "l2 must be a finite number > 0, got inf"),
        ({"dropout": 1}, "dropout must be a finite number ≥ 0 and < 1, got 1"),
        ({"bm25_b": 1.5}, "bm25_b must be a finite number ≥ 0 and ≤ 1, got 1.5"),
        ({"random_state": "x"}, "random_state must be an integer ≥ 0 or None, got 'x'"),
        ({"weighting": "foo"}, "weighting must be one of 'cosine', 'tfidf', 'bm25', got 'foo'"),
        ({"hidden_dims": [600, 0]}, "hidden_dims must be a list whose items are each an integer ≥ 1, got [600, 0]"),
        ({"device": 1.5}, "device must be a string or an integer ≥ 0, got 1.5"),
    ],
)
def test_a_value_outside_the_table_is_named_with_what_is_expected(params, message):
    with pytest.raises(UsageError) as err:
        check_params(params, TABLE, owner="m")
    assert str(err.value) == f"m: {message}"


@pytest.mark.parametrize(
    "params",
    [
        {"factors": np.int64(3), "l2": 5, "dropout": 0.0, "bm25_b": 1.0},
        {"random_state": None, "weighting": "bm25", "hidden_dims": (600,), "device": "cuda:0"},
        {"hidden_dims": [], "device": 0},
    ],
)
def test_values_inside_the_table_pass(params):
    check_params(params, TABLE)


def test_options_compare_by_type_and_keep_their_order():
    assert not Options((1, 2)).accepts(True)
    assert not Options(("a",)).accepts(np.array(["a", "a"]))
    assert str(Options({"tfidf", "bm25", "cosine"})) == "one of 'bm25', 'cosine', 'tfidf'"


def test_a_parameter_missing_from_the_table_is_a_programming_error():
    with pytest.raises(KeyError):
        check_params({"bogus": 1}, TABLE)


def test_an_interval_of_another_type_or_closure_is_refused():
    with pytest.raises(TypeError):
        Interval(str, 0, 1)
    with pytest.raises(ValueError):
        Interval(int, 0, 1, closed="open")
