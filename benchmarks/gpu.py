"""Figures on a GPU (``make bench BENCH_ARGS="--only gpu"`` on a machine with CUDA).

At ML-20M's size (the synthetic 136,677 × 20,108 of the scale table, ~10M
interactions; training on the 90% of users the split keeps, scoring every
user), one process:

- Mult-VAE and Mult-DAE (600-200-600): training users/s of one epoch, the
  second of two (the first pays for cuBLAS's start), in float32 and in
  bfloat16 (``amp=True``), at the paper's batch of 500 users and at a large
  batch (``LARGE_BATCH``), each with its ratio to the floor: the output
  layer's product (batch × hidden · hidden × items, forward + backward ≈ 3×)
  timed on this GPU in the same dtype, times the batches of an epoch;
- RecVAE (float32 and amp) and CDAE at their defaults: users/s of one epoch, as a
  multiple of Mult-VAE's float32 epoch at batch 500 in the same run;
- full-ranking scoring: users/s of ``recommend(X, 100)`` over every user
  (scores, seen items masked and top-100 on the device) and of ``evaluate`` on
  the held-out users, with the scoring floor (the forward product alone);
- ELSA with its committed parameters, the whole fit at gowalla's size and at
  a 100k-item catalogue;
- the peak device memory of each (``torch.cuda.max_memory_allocated``).

Every batch travels as its CSR arrays and stays sparse on the device (never
the whole matrix, never a dense input); only the top-k lists come back.
"""

from __future__ import annotations

import time
from typing import Any

import scipy.sparse as sp
import torch

#: The large training batch measured beside the paper's 500 users.
LARGE_BATCH = 20_000
#: Users scored at once.
EVAL_BATCH = 10_000
#: The other autoencoders timed at their defaults (VASP's paper widths, an items × items
#: layer and 4,096-wide deep layers, are left out: their epoch is minutes, not seconds).
OTHERS = (("recvae", False), ("recvae", True), ("cdae", False))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_seconds(rows: int, hidden: int, items: int, dtype: torch.dtype, device: str, repeat: int = 20) -> float:
    """Median seconds of one ``(rows × hidden) @ (hidden × items)`` on ``device`` in ``dtype``,
    after warm-up, in ``nn.Linear``'s layout (items × hidden, transposed)."""
    a = torch.randn(rows, hidden, device=device, dtype=dtype)
    b = torch.randn(items, hidden, device=device, dtype=dtype).t()
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else float("nan")


def train_case(X: sp.csr_matrix, model: str, batch: int, amp: bool, device: str) -> dict[str, Any]:
    """One timed training epoch of ``model`` (600-200-600) on the GPU; users/s and the floor ratio."""
    from recae.models import make_model

    _reset_peak(device)
    n_users, n_items = X.shape
    dtype = torch.bfloat16 if amp else torch.float32
    floor = -(-n_users // batch) * 3 * matmul_seconds(batch, 600, n_items, dtype, device)
    fitted = make_model(model, epochs=2, batch_size=batch, device=device, amp=amp).fit(X)
    seconds = fitted.history_[-1]["epoch_seconds"]
    return {"model": model, "batch": batch, "amp": amp, "users": n_users, "items": n_items,
            "epoch_s": seconds, "floor_s": floor, "epoch_ratio": seconds / floor,
            "train_users_per_s": n_users / seconds, "peak_gpu_gb": _peak_gb(device)}


def other_case(X: sp.csr_matrix, model: str, amp: bool, device: str) -> dict[str, Any]:
    """One timed epoch (the second of two) of another autoencoder at its defaults: RecVAE's
    outer epoch (3 encoder passes, the prior, 1 decoder pass), CDAE's epoch."""
    from recae.models import make_model

    _reset_peak(device)
    params = {"amp": amp} if amp else {}
    fitted = make_model(model, epochs=2, device=device, **params).fit(X)
    seconds = fitted.history_[-1]["epoch_seconds"]
    return {"model": model, "batch": fitted.batch_size, "amp": amp, "epoch_s": seconds,
            "train_users_per_s": X.shape[0] / seconds, "peak_gpu_gb": _peak_gb(device)}


def score_case(X: sp.csr_matrix, X_in: sp.csr_matrix, X_out: sp.csr_matrix, device: str) -> dict[str, Any]:
    """Full ranking with a Mult-VAE of the paper's shape (one step trained: the cost is the same)."""
    from recae.evaluation.metrics import evaluate
    from recae.models import make_model

    model = make_model("mult-vae", epochs=1, device=device, eval_batch_size=EVAL_BATCH).fit(X[:500])
    _reset_peak(device)
    floor = -(-X.shape[0] // EVAL_BATCH) * matmul_seconds(EVAL_BATCH, 600, X.shape[1], torch.float32, device)
    model.recommend(X[:EVAL_BATCH], 100, batch_size=EVAL_BATCH)  # warm-up
    start = time.perf_counter()
    model.recommend(X, 100, batch_size=EVAL_BATCH)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(model, X_in, X_out, ks=(20, 100), batch_size=EVAL_BATCH)
    eval_seconds = time.perf_counter() - start
    return {"scored_users": int(X.shape[0]), "score_s": seconds, "score_floor_s": floor,
            "score_ratio": seconds / floor, "score_users_per_s": X.shape[0] / seconds,
            "evaluate_users": int(X_in.shape[0]), "evaluate_users_per_s": X_in.shape[0] / eval_seconds,
            "peak_gpu_gb": _peak_gb(device)}


def elsa_case(X: sp.csr_matrix, label: str, params: dict[str, Any], device: str) -> dict[str, Any]:
    """ELSA's whole fit with ``params`` on ``device``."""
    from recae.models import make_model

    _reset_peak(device)
    start = time.perf_counter()
    model = make_model("elsa", **{**params, "device": device}).fit(X)
    return {"data": label, "users": int(X.shape[0]), "items": int(X.shape[1]), "epochs": model.epochs,
            "fit_s": time.perf_counter() - start, "epoch_s": [round(r["epoch_seconds"], 3) for r in model.history_],
            "peak_gpu_gb": _peak_gb(device)}


def measure(elsa_params: dict[str, Any], quick: bool = False, device: str = "cuda") -> dict[str, Any]:
    """Every GPU figure; ``quick`` takes the small synthetic size (a check that the path runs;
    with ``device="cpu"`` too, where the test suite runs it)."""
    import scale

    sizes = {**scale.QUICK_SIZES, **scale.SIZES}
    label = next(iter(scale.QUICK_SIZES)) if quick else "ml-20m-size"
    X, X_in, X_out = scale.load_matrix(label, sizes)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    out: dict[str, Any] = {"device": name, "torch": torch.__version__, "data": label}
    rows = []
    for model in ("mult-vae", "mult-dae"):
        for batch in (500, LARGE_BATCH):
            for amp in (False, True):
                rows.append(train_case(X, model, batch if not quick else batch // 10, amp, device))
                r = rows[-1]
                print(f"  {model} batch {batch} amp={amp}: {r['train_users_per_s']:,.0f} users/s, "
                      f"{r['epoch_ratio']:.2f} × floor, {r['peak_gpu_gb']:.2f} GB", flush=True)
    out["training"] = rows
    # the other autoencoders at their defaults, each against Mult-VAE's float32 epoch at
    # the paper's batch in this run (the first row)
    out["others"] = [other_case(X, model, amp, device) for model, amp in OTHERS]
    for r in out["others"]:
        r["x_mult_vae_epoch"] = r["epoch_s"] / rows[0]["epoch_s"]
        print(f"  {r['model']} batch {r['batch']} amp={r['amp']}: {r['train_users_per_s']:,.0f} users/s, "
              f"{r['x_mult_vae_epoch']:.2f} × Mult-VAE's epoch, {r['peak_gpu_gb']:.2f} GB", flush=True)
    out["scoring"] = score_case(X, X_in, X_out, device)
    print(f"  scoring: {out['scoring']['score_users_per_s']:,.0f} users/s, "
          f"{out['scoring']['score_ratio']:.2f} × floor", flush=True)
    out["elsa"] = []
    for elsa_label in ([label] if quick else ["gowalla-size", "100k-items"]):
        params = {**elsa_params, "epochs": 2} if quick else elsa_params
        out["elsa"].append(elsa_case(scale.load_matrix(elsa_label, sizes)[0], elsa_label, params, device))
        print(f"  elsa {elsa_label}: fit {out['elsa'][-1]['fit_s']:.1f} s", flush=True)
    return out


__all__ = ["LARGE_BATCH", "matmul_seconds", "measure"]
