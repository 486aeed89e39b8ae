"""Tests of recae.evaluation.ranking.topk: masking, ordering, ties, padding, in-place semantics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recae.errors import DataError, UsageError
from recae.evaluation.ranking import topk

NEG = -np.inf


def reference_topk(
    scores: np.ndarray, k: int, exclude: np.ndarray | None = None, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: sort every eligible item by (-score, index), take k, pad with -1/-inf."""
    n, m = scores.shape
    items = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), NEG, dtype=np.float32)
    for u in range(n):
        eligible = [
            i
            for i in range(m)
            if scores[u, i] > NEG
            and (exclude is None or not exclude[u, i])
            and (allowed is None or allowed[i])
        ]
        ranked = sorted(eligible, key=lambda i: (-scores[u, i], i))[:k]
        items[u, : len(ranked)] = ranked
        vals[u, : len(ranked)] = scores[u, ranked]
    return items, vals


def test_best_first_with_scores():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    items, vals = topk(scores, 2)
    assert items.dtype == np.int64 and vals.dtype == np.float32
    np.testing.assert_array_equal(items, [[3, 1], [0, 1]])
    np.testing.assert_array_equal(vals, np.array([[0.9, 0.5], [4.0, 3.0]], dtype=np.float32))


def test_exclusion_never_recommends_excluded_items_and_masks_in_place():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 40)).astype(np.float32)
    original = scores.copy()
    exclude = sp.random(50, 40, density=0.3, format="csr", random_state=1)
    exclude.data[:] = 1.0
    dense_ex = exclude.toarray() > 0
    items, vals = topk(scores, 10, exclude=exclude)
    for u in range(50):
        assert not dense_ex[u, items[u]].any()
    np.testing.assert_array_equal(items, reference_topk(original, 10, dense_ex)[0])
    # Documented in-place semantics: excluded cells now hold -inf, the rest is untouched.
    assert np.isneginf(scores[dense_ex]).all()
    np.testing.assert_array_equal(scores[~dense_ex], original[~dense_ex])


def test_explicit_zeros_in_exclude_are_not_exclusions():
    scores = np.array([[3.0, 2.0, 1.0]])
    exclude = sp.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    items, _ = topk(scores, 2, exclude=exclude)
    # Item 0 is stored with value 0 (not an interaction); item 1 is excluded.
    np.testing.assert_array_equal(items, [[0, 2]])


def test_allowed_mask():
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0]], dtype=np.float32)
    allowed = np.array([False, True, False, True, True])
    items, _ = topk(scores, 2, allowed=allowed)
    np.testing.assert_array_equal(items, [[1, 3], [4, 3]])
    assert np.isneginf(scores[:, [0, 2]]).all()


def test_allowed_and_exclude_combine():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0]], dtype=np.float32))
    items, _ = topk(scores, 2, exclude=exclude, allowed=np.array([False, True, True, True]))
    np.testing.assert_array_equal(items, [[2, 3]])


def test_ties_broken_by_lower_index_inside_and_at_the_cut():
    # Items 1, 2 and 3 tie at 2.0; only two fit after item 4 (3.0): the lower indices win.
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 3.0, 0.0]], dtype=np.float32)
    items, vals = topk(scores, 3)
    np.testing.assert_array_equal(items, [[4, 1, 2]])
    np.testing.assert_array_equal(vals, [[3.0, 2.0, 2.0]])
    # All equal: the list is the first k indices in order.
    items, _ = topk(np.zeros((2, 7), dtype=np.float32), 4)
    np.testing.assert_array_equal(items, [[0, 1, 2, 3], [0, 1, 2, 3]])


def test_padding_when_fewer_eligible_items_than_k():
    scores = np.array([[0.3, 0.2, 0.1, 0.4], [0.3, 0.2, 0.1, 0.4]], dtype=np.float32)
    # Row 0 excludes items 0, 1, 3 → one eligible item; row 1 has a model -inf on item 3.
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    scores[1, 3] = NEG
    items, vals = topk(scores, 4, exclude=exclude)
    np.testing.assert_array_equal(items, [[2, -1, -1, -1], [0, 1, 2, -1]])
    np.testing.assert_array_equal(
        vals, np.array([[0.1, NEG, NEG, NEG], [0.3, 0.2, 0.1, NEG]], dtype=np.float32)
    )


def test_k_larger_than_catalogue_is_padded():
    items, vals = topk(np.array([[1.0, 3.0]]), 4)
    np.testing.assert_array_equal(items, [[1, 0, -1, -1]])
    np.testing.assert_array_equal(vals, np.array([[3.0, 1.0, NEG, NEG]], dtype=np.float32))


def test_positive_infinity_ranks_first():
    items, _ = topk(np.array([[1.0, np.inf, 2.0]]), 2)
    np.testing.assert_array_equal(items, [[1, 2]])


def test_batch_equals_single_rows_with_many_ties():
    rng = np.random.default_rng(3)
    # Integer-valued scores: ties everywhere, including at every cut.
    scores = rng.integers(0, 4, size=(30, 25)).astype(np.float32)
    exclude = sp.random(30, 25, density=0.2, format="csr", random_state=4)
    batch_items, batch_vals = topk(scores.copy(), 8, exclude=exclude)
    for u in range(30):
        row_items, row_vals = topk(scores[u : u + 1].copy(), 8, exclude=exclude[u])
        np.testing.assert_array_equal(batch_items[u : u + 1], row_items)
        np.testing.assert_array_equal(batch_vals[u : u + 1], row_vals)


def test_mixed_tied_and_untied_rows_match_reference():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((20, 30)).astype(np.float32)
    scores[::3] = np.round(scores[::3])  # every third row has ties
    expected = reference_topk(scores, 6)
    got = topk(scores.copy(), 6)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_nan_raises_naming_the_row():
    scores = np.zeros((3, 4), dtype=np.float32)
    scores[2, 1] = np.nan
    with pytest.raises(DataError, match=r"rows 2"):
        topk(scores, 2)


def test_nan_on_an_excluded_item_is_masked_not_reported():
    scores = np.array([[np.nan, 1.0, 2.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    items, _ = topk(scores, 2, exclude=exclude)
    np.testing.assert_array_equal(items, [[2, 1]])


def test_float64_input_gives_float32_scores_and_is_masked_in_place():
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float64)
    _, vals = topk(scores, 2, exclude=sp.csr_matrix(np.array([[0.0, 0.0, 1.0]])))
    assert vals.dtype == np.float32
    assert np.isneginf(scores[0, 2])


def test_integer_scores_are_ranked_from_a_copy_with_a_warning():
    scores = np.array([[1, 3, 2]])
    with pytest.warns(UserWarning, match="float64 copy"):
        items, _ = topk(scores, 2, exclude=sp.csr_matrix(np.array([[0, 1, 0]])))
    np.testing.assert_array_equal(items, [[2, 0]])
    np.testing.assert_array_equal(scores, [[1, 3, 2]])  # not modified


def test_empty_batch():
    items, vals = topk(np.zeros((0, 5), dtype=np.float32), 3)
    assert items.shape == (0, 3) and vals.shape == (0, 3)


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_bad_k(k):
    with pytest.raises(UsageError, match="k must be"):
        topk(np.zeros((1, 3)), k)


def test_an_integral_float_k_is_its_integer():
    items, _ = topk(np.array([[0.1, 0.3, 0.2]]), 2.0)
    assert items.tolist() == [[1, 2]]


def test_bad_shapes():
    with pytest.raises(DataError, match="2-D"):
        topk(np.zeros(3), 1)
    with pytest.raises(DataError, match=r"exclude has shape \(2, 3\).*\(1, 3\)"):
        topk(np.zeros((1, 3)), 1, exclude=sp.csr_matrix((2, 3)))
    with pytest.raises(DataError, match="sparse"):
        topk(np.zeros((1, 3)), 1, exclude=np.zeros((1, 3)))
    with pytest.raises(DataError, match="allowed has shape"):
        topk(np.zeros((1, 3)), 1, allowed=np.ones(4, dtype=bool))
    with pytest.raises(DataError, match="boolean"):
        topk(np.zeros((1, 3)), 1, allowed=np.ones(3))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 6),
    m=st.integers(1, 12),
    k=st.integers(1, 15),
)
def test_matches_brute_force(data, n, m, k):
    # Small integer scores (plus some -inf) make ties and padding frequent.
    values = data.draw(
        st.lists(st.sampled_from([NEG, 0.0, 1.0, 2.0, 3.0]), min_size=n * m, max_size=n * m)
    )
    scores = np.array(values, dtype=np.float32).reshape(n, m)
    ex = np.array(data.draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))).reshape(n, m)
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)))
    expected = reference_topk(scores, k, ex, allowed)
    got = topk(scores.copy(), k, exclude=sp.csr_matrix(ex.astype(np.float32)), allowed=allowed)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
