"""The GPU path's transfers and top-k against the numpy path they replace: on the CPU
everywhere, and on CUDA where a GPU is present (skipped with a reason elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import DataError
from recae.evaluation.ranking import topk
from recae.models import Recommender, make_model
from recae.models.device import device_topk
from recae.models.nn import SparseBatch
from tests.conftest import planted_blocks

#: Every device the path runs on: the CPU always, CUDA where present.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]),
]


@pytest.mark.parametrize("device", DEVICES)
def test_a_batch_sent_to_the_device_is_the_batch(device):
    X = sp.random(30, 50, density=0.1, format="csr", random_state=0, dtype=np.float32)
    batch = SparseBatch.from_scipy(X, device)
    assert batch.values.device.type == device and batch.indices.dtype == torch.int64
    np.testing.assert_array_equal(batch.to_dense().cpu().numpy(), X.toarray())
    np.testing.assert_array_equal(batch.rows.cpu().numpy(), X.tocoo().row)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ties", [False, True])
def test_device_topk_gives_the_numpy_lists_with_masks_ties_and_padding(ties, device):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (40, 25)).astype(np.float32) if ties else rng.standard_normal((40, 25)).astype(np.float32)
    exclude = sp.random(40, 25, density=0.5, format="lil", random_state=1)
    exclude[0] = 1.0  # a user who has seen everything: a list of padding only
    exclude = sp.csr_matrix(exclude)
    allowed = rng.random(25) < 0.8
    expected = topk(scores.copy(), 20, exclude=exclude, allowed=allowed)  # k beyond what most rows have left
    got = device_topk(torch.from_numpy(scores.copy()).to(device), 20, exclude=exclude, allowed=allowed)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert (got[0][0] == -1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 3, 7, 24, 25])
def test_device_topk_settles_ties_at_and_inside_the_cut_by_item_index(k, device):
    """Scores from a few values: most rows have ties at the k-th place and inside the list,
    some have none (the partial selection's fast path), some are padded."""
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 6, (60, 25)).astype(np.float32)
    scores[:20] += rng.standard_normal((20, 25)).astype(np.float32)  # rows without ties
    exclude = sp.csr_matrix(sp.random(60, 25, density=0.3, random_state=k))
    expected = topk(scores.copy(), k, exclude=exclude)
    got = device_topk(torch.from_numpy(scores.copy()).to(device), k, exclude=exclude)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("device", DEVICES)
def test_the_batch_on_the_device_masks_as_its_scipy_rows_do(device):
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((30, 40)).astype(np.float32)
    seen = sp.random(30, 40, density=0.3, format="csr", random_state=3, dtype=np.float32)
    seen.data[seen.indptr[5] : seen.indptr[6]] = 0.0  # stored zeros are stored: masked by both
    expected = device_topk(torch.from_numpy(scores.copy()).to(device), 12, exclude=seen)
    got = device_topk(torch.from_numpy(scores.copy()).to(device), 12, exclude=SparseBatch.from_scipy(seen, device))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert not np.isin(got[0][1], seen[1].indices).any()


@pytest.mark.parametrize("device", DEVICES)
def test_device_topk_names_the_rows_with_a_nan(device):
    scores = np.zeros((6, 10), dtype=np.float32)
    scores[4, 7] = np.nan
    with pytest.raises(DataError, match=r"NaN in 1 row\(s\) of the batch \(rows 4\)"):
        device_topk(torch.from_numpy(scores).to(device), 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["mult-vae", "recvae", "vasp"])
def test_a_model_ranked_on_the_device_lists_what_the_shared_path_lists(name, device):
    X, _ = planted_blocks()
    params = {"mult-vae": {"hidden_dims": [16], "latent_dim": 4},
              "recvae": {"hidden_dim": 16, "latent_dim": 4},
              "vasp": {"hidden_dim": 16, "latent_dim": 4, "encoder_layers": 1, "decoder_layers": 1}}[name]
    model = make_model(name, epochs=1, device=device, **params).fit(X)
    allowed = np.arange(X.shape[1]) % 5 != 0
    shared = Recommender.recommend(model, X, 10, allowed=allowed)  # scores to numpy, then the shared top-k
    on_device = model._recommend_on_device(X, 10, True, allowed, batch_size=37)
    np.testing.assert_array_equal(on_device[0], shared[0])
    np.testing.assert_allclose(on_device[1], shared[1], rtol=1e-6)
