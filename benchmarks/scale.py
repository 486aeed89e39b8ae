"""Speed and memory at real sizes, as ratios to this machine's own floor (``make bench``).

These machines are shared and noisy, so every time is divided by a floor
measured in the same process a moment before:

- the epoch floor: a dense matmul of the output layer's shape
  (``batch × hidden · hidden × items``), timed, times 3 (forward + the two
  backward products), times the number of batches of one epoch; beside it,
  the floor of every product of the network (the sparse first layer and the
  middle layers added: :func:`other_products_seconds`);
- the scoring floor: the same matmul forward only (``eval_batch × hidden ·
  hidden × items``), times the number of scoring batches.

Each phase (one training epoch; one full-ranking pass over the held-out users)
runs in a fresh process, so that its peak resident memory is its own; it is
reported beside the bytes that phase cannot do without (the training matrix,
the network with its gradients and Adam's two moments, one dense batch).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import dataclass, replace
from typing import Any

import scipy.sparse as sp
import torch

#: Synthetic sizes measured: label → (users, items, mean items drawn per user). The
#: generator drops repeated draws, so the means are set to give the interactions named.
SIZES: dict[str, tuple[int, int, float]] = {
    "gowalla-size": (29_858, 40_981, 47.0),  # ~1.0M interactions
    "ml-20m-size": (136_677, 20_108, 127.0),  # ~10M interactions
    "100k-items": (50_000, 100_000, 40.0),  # ~1.4M interactions
}
QUICK_SIZES: dict[str, tuple[int, int, float]] = {"quick-synthetic": (5_000, 8_000, 30.0)}


@dataclass(frozen=True)
class Case:
    """One measurement: a data set (a name or a synthetic size) and a model's shape."""

    label: str
    model: str = "mult-vae"
    hidden: int = 600
    latent: int = 200
    batch: int = 500
    eval_batch: int = 2000
    amp: bool = False  # bfloat16 training products (the model's ``amp``); the floor then in bfloat16 too


def load_matrix(label: str, sizes: dict[str, tuple[int, int, float]]) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Training rows, held-out users' fold-in rows and their targets (80/20 per user)."""
    from recae import data
    from recae.data.synthetic import power_law_interactions
    from recae.evaluation.protocols import given_split, strong_generalization

    if label == "ml-1m-lcfn":
        raw = data.load("ml-1m-lcfn")
        split = given_split(raw.train, raw.test, val_prop=0.2, seed=7, source=raw.source)
        return split.refit_train, split.test_in, split.test_out
    n_users, n_items, mean = sizes[label]
    inter = power_law_interactions(n_users=n_users, n_items=n_items, mean_items_per_user=mean, seed=0)
    split = strong_generalization(inter, heldout_users=max(1, n_users // 10), seed=0)
    return split.train, split.test_in, split.test_out


def matmul_seconds(rows: int, hidden: int, items: int, repeat: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Best-of-``repeat`` seconds of one ``(rows × hidden) @ (hidden × items)`` in torch, in
    ``dtype``, the faster of the two layouts of the right-hand matrix (hidden × items as it
    lies, and the transpose of an items × hidden one, as ``nn.Linear`` holds it)."""
    a = torch.randn(rows, hidden, dtype=dtype)
    layouts = (torch.randn(hidden, items, dtype=dtype), torch.randn(items, hidden, dtype=dtype).t())
    return min(_best_seconds(lambda b=b: torch.mm(a, b), repeat) for b in layouts)


def _best_seconds(fn: Any, repeat: int = 5) -> float:
    """Best-of-``repeat`` seconds of ``fn()``, after one call to warm up (allocation, kernel choice)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def other_products_seconds(X: sp.csr_matrix, case: Case) -> float:
    """Best-of-5 seconds of one training step's products besides the output layer's: the
    sparse first layer (X·W forward, Xᵀ·g for its weight) on ``case.batch`` rows of ``X``,
    and the middle layers (hidden → 2·latent, latent → hidden), three products each
    (forward and both gradients). Added to the output layer's three, they are every
    matrix product of a step: a floor that counts the whole network, where the epoch
    floor counts the output layer alone (at a few thousand items the rest is a third).
    Under ``case.amp`` the middle layers are timed in bfloat16; the sparse first layer
    runs in float32 under amp too."""
    from recae.models.nn import SparseBatch, csr_tensor

    rows = sp.csr_matrix(X[: case.batch])
    as_csr = lambda b: csr_tensor(b.indptr, b.indices, b.values, b.shape)  # noqa: E731
    x, xt = (as_csr(SparseBatch.from_scipy(M)) for M in (rows, rows.T))
    weight, grad = torch.randn(X.shape[1], case.hidden), torch.randn(rows.shape[0], case.hidden)
    first = _best_seconds(lambda: torch.sparse.mm(x, weight)) + _best_seconds(lambda: torch.sparse.mm(xt, grad))
    dtype = torch.bfloat16 if case.amp else torch.float32
    middle = 3 * (matmul_seconds(case.batch, case.hidden, 2 * case.latent, dtype=dtype)
                  + matmul_seconds(case.batch, case.latent, case.hidden, dtype=dtype))
    return first + middle


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _csr_bytes(X: sp.csr_matrix) -> int:
    return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)


def train_phase(case: Case, sizes: dict[str, tuple[int, int, float]]) -> dict[str, Any]:
    """One training epoch of ``case.model`` (no validation), its floor, its memory.

    Two epochs run and the second is timed: the first also pays for one-time
    costs (the thread pool, the first allocations of each buffer). Under
    ``case.amp`` the floor is the bfloat16 product's, and the float32 floor is
    given beside it (what amp gains over the best a float32 epoch could do)."""
    from recae.models import make_model

    X, _, _ = load_matrix(case.label, sizes)
    n_users, n_items = X.shape
    base = _rss_now_mb()
    steps = -(-n_users // case.batch)
    floor = steps * 3 * matmul_seconds(case.batch, case.hidden, n_items,
                                       dtype=torch.bfloat16 if case.amp else torch.float32)
    float32_floor = floor if not case.amp else steps * 3 * matmul_seconds(case.batch, case.hidden, n_items)
    all_products = floor + steps * other_products_seconds(X, case)
    model = make_model(case.model, epochs=2, hidden_dims=[case.hidden], latent_dim=case.latent,
                       batch_size=case.batch, device="cpu", amp=case.amp)
    start = time.perf_counter()
    model.fit(X)
    seconds = model.history_[-1]["epoch_seconds"]
    params = sum(p.numel() for p in model.module_.parameters())
    needed = _csr_bytes(X) + params * 4 * 4 + case.batch * n_items * 4 * 3  # weights, grads, 2 moments; batch
    return {
        "users": n_users, "items": n_items, "interactions": int(X.nnz),
        "epoch_s": seconds, "floor_s": floor, "epoch_ratio": seconds / floor,
        "epoch_ratio_float32_floor": seconds / float32_floor,
        "all_products_floor_s": all_products, "epoch_ratio_all_products": seconds / all_products,
        "train_users_per_s": n_users / seconds, "fit_wall_s": time.perf_counter() - start,
        "train_peak_mb": _peak_mb(), "train_peak_over_start_mb": _peak_mb() - base,
        "train_needed_mb": needed / 2**20,
    }


def score_phase(case: Case, sizes: dict[str, tuple[int, int, float]]) -> dict[str, Any]:
    """Full-ranking evaluation of the held-out users (untrained weights: the cost is the same)."""
    from recae.evaluation.metrics import evaluate
    from recae.models import make_model

    X, X_in, X_out = load_matrix(case.label, sizes)
    n_items = X.shape[1]
    model = make_model(case.model, epochs=1, hidden_dims=[case.hidden], latent_dim=case.latent, device="cpu",
                       eval_batch_size=case.eval_batch)
    model.fit(X[: case.batch])  # one step: a fitted network of the right shape
    base = _rss_now_mb()
    floor = -(-X_in.shape[0] // case.eval_batch) * matmul_seconds(case.eval_batch, case.hidden, n_items)
    start = time.perf_counter()
    evaluate(model, X_in, X_out, ks=(20, 100), batch_size=case.eval_batch)
    seconds = time.perf_counter() - start
    return {
        "eval_users": int(X_in.shape[0]), "eval_s": seconds, "eval_floor_s": floor, "eval_ratio": seconds / floor,
        "eval_users_per_s": X_in.shape[0] / seconds,
        "eval_peak_over_start_mb": _peak_mb() - base,
        "eval_needed_mb": (case.eval_batch * n_items * 4 * 3) / 2**20,
    }


def isolated(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a fresh process (its own peak memory), with torch on 2 threads."""
    with mp.get_context("spawn").Pool(1, initializer=torch.set_num_threads, initargs=(2,)) as pool:
        out = pool.apply(fn, args)
        # a child ended by the pool's exit (terminate) leaves the semaphores it made
        # (tqdm's lock) to the resource tracker, which warns at shutdown: let it end itself
        pool.close()
        pool.join()
    return out


#: The figures of the amp epoch kept in a row, each as ``amp_<key>``.
AMP_KEYS = ("epoch_s", "floor_s", "epoch_ratio", "epoch_ratio_float32_floor", "epoch_ratio_all_products",
            "train_users_per_s", "train_peak_over_start_mb")


def measure(labels: list[str], sizes: dict[str, tuple[int, int, float]]) -> list[dict[str, Any]]:
    """Both phases of Mult-VAE (paper's shape: 600-200-600) for each of ``labels``, and the
    training epoch again in bfloat16 (``amp_*`` keys; scoring is float32 either way)."""
    rows = []
    for label in labels:
        case = Case(label)
        row: dict[str, Any] = {"data": label, "model": case.model}
        row.update(isolated(train_phase, case, sizes))
        row.update(isolated(score_phase, case, sizes))
        print(f"  {label}: epoch {row['epoch_s']:.2f} s = {row['epoch_ratio']:.2f} × floor; "
              f"scoring {row['eval_users_per_s']:,.0f} users/s = {row['eval_ratio']:.2f} × floor", flush=True)
        bf16 = isolated(train_phase, replace(case, amp=True), sizes)
        row.update({f"amp_{key}": bf16[key] for key in AMP_KEYS})
        print(f"  {label}, amp: epoch {bf16['epoch_s']:.2f} s = {bf16['epoch_ratio']:.2f} × the bfloat16 floor, "
              f"{bf16['epoch_ratio_float32_floor']:.2f} × the float32 one", flush=True)
        rows.append(row)
    return rows


__all__ = ["AMP_KEYS", "QUICK_SIZES", "SIZES", "Case", "matmul_seconds", "measure"]
