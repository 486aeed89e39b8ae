"""Benchmarks that report figures (``make bench`` runs ``python benchmarks/bench.py``).

The tests assert correctness and stay fast; the numbers live here. Each
``bench_*`` function prints one block and returns its figures as a dict.
Data sets come from the cache (``$RECAE_DATA_DIR``; the Makefile points it at
``../shared/datasets`` when present).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recae import data
from recae.experiment.benchmark import BenchmarkConfig, run_benchmark
from recae.experiment.tracker import NullTracker
from recae.files import write_json
from recae.models import make_model
from recae.serving import Catalog, item_popularity


def _ml_latest_small() -> Any:
    ratings = data.load_ratings("ml-latest-small", progress=False)
    ratings = data.kcore(data.binarize(ratings, threshold=3.5), min_user=5)
    return data.to_interactions(ratings, source="ml-latest-small")


def bench_recommend(k: int = 100, epochs: int = 10) -> dict[str, float]:
    """``recae recommend`` for every user of ML-latest-small: users per second.

    Trains Mult-DAE on all users (the paper's preprocessing: ratings > 3.5,
    users with ≥ 5 items), logs it as an MLflow pyfunc model in a scratch store
    (reporting seconds per ``log_model`` call), then runs the command twice with
    ``--k 100``: once on the histories stored in the model (every known user),
    once folding in the raw ``ratings.csv`` (every user of the file, new-user
    path). Throughput counts scoring and writing, not start-up.
    """
    # MLflow (through recae.tracking and the command line) is imported here, not at the
    # top: the other benchmarks run in fresh processes whose peak memory must not include it.
    from recae.cli import main
    from recae.tracking import MlflowTracker

    inter = _ml_latest_small()
    start = time.perf_counter()
    model = make_model("mult-dae", epochs=epochs, device="cpu").fit(inter.matrix)
    fit_s = time.perf_counter() - start
    out: dict[str, float] = {"users": inter.n_users, "items": inter.n_items, "fit_seconds": fit_s}
    with tempfile.TemporaryDirectory(prefix="recae-bench-") as tmp:
        tmp_path = Path(tmp)
        cwd = os.getcwd()
        os.chdir(tmp_path)  # the scratch store keeps its artifacts here
        try:
            catalog = Catalog(inter.item_ids, item_popularity(inter.matrix), inter.user_ids, inter.matrix)
            times = []
            tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
            with tracker.run("bench", "recommend", tags={}) as run:
                for i in range(3):
                    t = time.perf_counter()
                    uri = run.log_model(model, catalog, name=f"model-{i}")
                    times.append(time.perf_counter() - t)
            out["log_model_seconds"] = min(times)
            runs = {
                "stored histories": ["--model", uri],
                "fold-in of ratings.csv": ["--model", uri, "--history", "ml-latest-small", "--min-rating", "3.5"],
            }
            for label, args in runs.items():
                dest = tmp_path / "top.parquet"
                t = time.perf_counter()
                code = main(["recommend", *args, "--k", str(k), "--out", str(dest), "--no-progress",
                             "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
                wall = time.perf_counter() - t
                if code != 0:
                    raise RuntimeError(f"recae recommend failed ({label}): exit {code}")
                top = pd.read_parquet(dest)
                n_users = top["user_id"].nunique()
                out[f"{label}: users"] = n_users
                out[f"{label}: seconds (whole command)"] = wall
                out[f"{label}: users/s (whole command)"] = n_users / wall
        finally:
            os.chdir(cwd)
    print(f"\nrecommend on ML-latest-small, k={k} (Mult-DAE, {epochs} epochs, fit {fit_s:.1f}s):")
    for key, value in out.items():
        print(f"  {key:45s} {value:,.3f}" if isinstance(value, float) else f"  {key:45s} {value}")
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _isolated(fn_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run ``fn_name(**kwargs)`` in a fresh process, so that its peak memory is its own."""
    with mp.get_context("spawn").Pool(1) as pool:
        out = pool.apply(_child, (fn_name, kwargs))
        pool.close()  # the child ends itself: see scale.isolated
        pool.join()
    return out


def _child(fn_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = globals()[fn_name](**kwargs)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _print(title: str, out: dict[str, Any]) -> None:
    print(f"\n{title}")
    for key, value in out.items():
        print(f"  {key:45s} {value:,.4f}" if isinstance(value, float) else f"  {key:45s} {value}")


def bench_mult_vae_ml1m(dataset: str = "ml-1m-lcfn") -> dict[str, Any]:
    """The paper's Mult-VAE on ML-1M's fixed split, as ``recae benchmark --dataset ml-1m-lcfn --models mult-vae``.

    Reports test Recall@20 / NDCG@20, seconds per epoch (training only, and
    with the per-epoch validation), the selected epoch and the whole fit time.
    """
    start = time.perf_counter()
    result = run_benchmark(
        BenchmarkConfig(dataset=dataset, models=("mult-vae",), track=False, progress=False),
        NullTracker(),
        echo=lambda _: None,
    )
    wall = time.perf_counter() - start
    r = result.models["mult-vae"]
    history = r.model.history_
    return {
        "test recall_at_20": r.test_means()["recall_at_20"],
        "test ndcg_at_20": r.test_means()["ndcg_at_20"],
        "best epoch (of 200)": r.best_epoch,
        "seconds per epoch (training)": float(sum(h["epoch_seconds"] for h in history) / len(history)),
        "fit seconds (selection + refit)": r.fit_seconds,
        "whole command seconds": wall,
    }


def write_ml25m_like(path: Path, rows: int, seed: int = 0) -> None:
    """A ``ratings.csv`` of ML-25M's shape: ``rows`` lines of userId,movieId,rating,timestamp."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    chunk = 5_000_000
    with pacsv.CSVWriter(str(path), pa.schema([("userId", pa.int64()), ("movieId", pa.int64()),
                                                  ("rating", pa.float64()), ("timestamp", pa.int64())])) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            writer.write_table(pa.table({
                "userId": np.sort(rng.integers(1, 162_542, n)),
                "movieId": (rng.pareto(1.2, n) * 50).astype(np.int64) % 209_172 + 1,
                "rating": rng.integers(1, 11, n) / 2.0,
                "timestamp": rng.integers(789_652_009, 1_574_327_703, n),
            }))


def read_csv_phase(path: str) -> dict[str, Any]:
    """Read ``path`` as the command line does and build the interaction matrix; seconds, peak memory."""
    start = time.perf_counter()
    raw = data.load(path)
    ratings = data.binarize(raw.ratings, threshold=3.5)
    inter = data.to_interactions(ratings, source=path)
    return {"rows": len(raw.ratings), "users": inter.n_users, "items": inter.n_items,
            "interactions": int(inter.matrix.nnz), "seconds": time.perf_counter() - start}


def bench_read_csv(quick: bool) -> dict[str, Any]:
    """A 25M-row ``ratings.csv`` (ML-25M's shape; 2.5M with ``--quick``) into the interaction matrix."""
    rows = 2_500_000 if quick else 25_000_095
    with tempfile.TemporaryDirectory(prefix="recae-bench-") as tmp:
        path = Path(tmp) / "ratings.csv"
        write_ml25m_like(path, rows)
        out = _isolated("read_csv_phase", {"path": str(path)})
        out["file_mb"] = path.stat().st_size / 2**20
    _print(f"Reading a {rows:,}-row ratings.csv (ML-25M's shape) into the interaction matrix", out)
    return out


def anomalies_phase(epochs: int) -> dict[str, Any]:
    """ml-1m-lcfn's training rows with 2% bots injected (three kinds), Mult-VAE with its
    defaults fitted on them all, and each kind's ROC AUC against the real users."""
    from scipy.stats import rankdata

    from recae.data.synthetic import BOT_KINDS, inject_bots
    from recae.evaluation.anomalies import anomaly_scores, popularity_nll

    raw = data.load("ml-1m-lcfn")
    X = data.to_interactions(raw.train, source="ml-1m-lcfn").matrix
    X, kinds = inject_bots(X, share=0.02, seed=0)
    start = time.perf_counter()
    model = make_model("mult-vae", epochs=epochs, device="cpu").fit(X)
    scores = anomaly_scores(model.reconstruction_nll(X), popularity_nll(X, X.getnnz(axis=0)))
    out: dict[str, Any] = {"users": int(X.shape[0]), "bots per kind": int((kinds == 1).sum()),
                           "fit and score seconds": time.perf_counter() - start}
    for k, kind in enumerate(BOT_KINDS, start=1):
        keep = (kinds == 0) | (kinds == k)
        ranks, positive = rankdata(scores[keep]), kinds[keep] == k
        n_pos, n_neg = positive.sum(), (~positive).sum()
        out[f"ROC AUC, {kind} bots"] = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return out


def bench_anomalies(quick: bool) -> dict[str, Any]:
    """Bots injected into ml-1m-lcfn and told from real users (``--quick``: 20 epochs, not 200)."""
    out = _isolated("anomalies_phase", {"epochs": 20 if quick else 200})
    _print("Anomalous users: 2% bots injected into ml-1m-lcfn's training rows, Mult-VAE defaults", out)
    return out


#: The committed parameters (tuned on ml-1m-lcfn), read for ELSA and EASE.
CONFIG_FILE = Path(__file__).resolve().parents[1] / "configs" / "ml-1m-lcfn.toml"


def _committed_params(model: str) -> dict[str, Any]:
    from recae.experiment.config_file import read_config_file

    return dict(read_config_file(CONFIG_FILE).model_params.get(model, {}))


def _synthetic_training_rows(label: str) -> Any:
    """The training rows of the synthetic size ``label``, with torch on 2 threads (a phase's preamble)."""
    import scale
    import torch

    torch.set_num_threads(2)
    X, _, _ = scale.load_matrix(label, {**scale.QUICK_SIZES, **scale.SIZES})
    return X


def linear_epoch_phase(label: str, amp: bool = False) -> dict[str, Any]:
    """One epoch of ELSA with its committed parameters (and ``amp``) on the training rows of
    size ``label``: seconds and peak memory (the whole fit repeats the epoch ``epochs``
    times), against the floor of its dense products: per batch of b users, Y = (x·A)·Aᵀ
    (b × r · r × items) and its two gradients (b × items · items × r, items × b · b × r),
    each timed here, in bfloat16 under ``amp``."""
    import scale
    import torch

    X = _synthetic_training_rows(label)
    params = _committed_params("elsa")
    epochs = int(params.pop("epochs", 5))
    before = _peak_rss_mb()
    model = make_model("elsa", **{**params, "epochs": 1, "device": "cpu", "amp": amp}).fit(X)
    seconds = model.history_[0]["epoch_seconds"]
    b, r, items = model.batch_size, model.factors, X.shape[1]
    dtype = torch.bfloat16 if amp else torch.float32
    floor = -(-X.shape[0] // b) * (scale.matmul_seconds(b, r, items, dtype=dtype)
                                   + scale.matmul_seconds(b, items, r, dtype=dtype)
                                   + scale.matmul_seconds(items, b, r, dtype=dtype))
    return {"data": label, "amp": amp, "users": int(X.shape[0]), "items": int(items), "interactions": int(X.nnz),
            "factors": r, "epoch_s": seconds, "floor_s": floor, "epoch_ratio": seconds / floor,
            "epochs": epochs, "fit_s_estimate": seconds * epochs, "fit_floor_s": floor * epochs,
            "peak_before_fit_mb": before}  # the whole process's peak is added by _child


def linear_quality_phase() -> dict[str, Any]:
    """ELSA and EASE with their committed parameters on ml-1m-lcfn, as ``recae benchmark
    --config configs/ml-1m-lcfn.toml --models elsa,ease --seed 7`` reports them."""
    params = {name: _committed_params(name) for name in ("elsa", "ease")}
    result = run_benchmark(
        BenchmarkConfig(dataset="ml-1m-lcfn", models=("elsa", "ease"), model_params=params,
                        seed=7, track=False, progress=False),
        NullTracker(),
        echo=lambda _: None,
    )
    out: dict[str, Any] = {"elsa params": params["elsa"]}
    for name in ("elsa", "ease"):
        means = result.models[name].test_means()
        out[f"{name} test recall_at_20"] = means["recall_at_20"]
        out[f"{name} test ndcg_at_20"] = means["ndcg_at_20"]
        out[f"{name} fit seconds"] = result.models[name].fit_seconds
    out["elsa ndcg_at_20 / ease"] = out["elsa test ndcg_at_20"] / out["ease test ndcg_at_20"]
    return out


def bench_linear(quick: bool) -> dict[str, Any]:
    """The linear autoencoder that scales (ELSA, ``elsarec``): its quality against EASE on
    ml-1m-lcfn, and one epoch's time and memory at gowalla's size and a 100k-item catalogue."""
    import scale

    out: dict[str, Any] = {}
    if not quick:
        out["ml-1m-lcfn"] = _isolated("linear_quality_phase", {})
        _print("ELSA against EASE on ml-1m-lcfn (given split, --seed 7; configs/ml-1m-lcfn.toml)", out["ml-1m-lcfn"])
    labels = list(scale.QUICK_SIZES) if quick else ["gowalla-size", "100k-items"]
    rows = [_isolated("linear_epoch_phase", {"label": label, "amp": amp}) for label in labels for amp in (False, True)]
    print("\nELSA (elsarec, the committed parameters; amp: the dense products in bfloat16, the floor too),"
          " one epoch on 2 threads")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    out["epochs"] = rows
    return out


def ease_fit_phase(label: str) -> dict[str, Any]:
    """EASE (float32, the Gram matrix inverted in place) fitted on the training rows of size
    ``label``: seconds, peak memory, and the estimate it checks against the memory budget."""
    from recae.models import EASE

    X = _synthetic_training_rows(label)
    before = _peak_rss_mb()
    start = time.perf_counter()
    EASE(l2=500.0).fit(X)
    return {"data": label, "items": int(X.shape[1]), "fit_s": time.perf_counter() - start,
            "estimate_gb": EASE.memory_estimate(X.shape[1]) / 1e9,
            "float64_three_matrices_gb": 3 * 8 * X.shape[1] ** 2 / 1e9, "peak_before_fit_mb": before}


def bench_ease(quick: bool) -> dict[str, Any]:
    """EASE on a gowalla-sized catalogue (~40k items), which the float64 fit refused."""
    import scale

    out = _isolated("ease_fit_phase", {"label": next(iter(scale.QUICK_SIZES)) if quick else "gowalla-size"})
    _print("EASE (float32, in place) on a gowalla-sized catalogue, 2 threads", out)
    return out


def bench_scale_table(quick: bool) -> list[dict[str, Any]]:
    """Mult-VAE's epoch and full-ranking pass at each size, as ratios to this machine's floor."""
    import scale

    labels = ["ml-1m-lcfn", *(scale.QUICK_SIZES if quick else scale.SIZES)]
    sizes = {**scale.QUICK_SIZES, **scale.SIZES}
    print("\nScale: Mult-VAE (600-200-600), one epoch and one full-ranking pass per size, 2 threads")
    rows = scale.measure(labels, sizes)
    table = pd.DataFrame(rows)[
        ["data", "users", "items", "interactions", "epoch_s", "floor_s", "epoch_ratio", "epoch_ratio_all_products",
         "train_users_per_s",
         "train_peak_over_start_mb", "train_needed_mb", "eval_users_per_s", "eval_ratio",
         "eval_peak_over_start_mb", "eval_needed_mb"]
    ]
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    print("\nThe same epoch with amp=true (bfloat16 products; the floor in bfloat16, and the float32 one beside it)")
    amp = pd.DataFrame(rows)[["data", *(f"amp_{key}" for key in scale.AMP_KEYS)]]
    print(amp.rename(columns=lambda c: c.removeprefix("amp_")).to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    return rows


def bench_mult_vae_paper(quick: bool) -> dict[str, Any]:
    """Mult-VAE with the paper's defaults on ml-1m-lcfn, in a fresh process."""
    out = _isolated("bench_mult_vae_ml1m", {})
    _print("Mult-VAE, paper defaults, on ml-1m-lcfn (given split)", out)
    return out


def recvae_epoch_phase(epochs: int) -> dict[str, Any]:
    """RecVAE with its defaults (float32, then ``amp=true``) on ml-1m-lcfn's training rows:
    seconds per outer epoch (training passes, the first outer epoch left out), and the floor
    of the dense products one outer epoch needs at this machine's measured matmul speed."""
    import statistics

    import scale
    import torch

    from recae.evaluation.protocols import given_split

    torch.set_num_threads(2)
    raw = data.load("ml-1m-lcfn")
    X = given_split(raw.train, raw.test, seed=7, source=raw.source).train
    m = make_model("recvae", device="cpu")
    users, B, E, H, L, items = X.shape[0], m.batch_size, m.eval_batch_size, m.hidden_dim, m.latent_dim, X.shape[1]
    # per training batch: the four hidden-to-hidden layers and the two heads, forward
    # and both backward products; the decoder forward and its input gradient (encoder
    # passes) or weight gradient (decoder passes). The first layer is sparse: not counted.
    encoder_step = 3 * (4 * scale.matmul_seconds(B, H, H) + 2 * scale.matmul_seconds(B, H, L))
    decoder_step = 2 * scale.matmul_seconds(B, L, items)
    prior_pass = (users / E) * (4 * scale.matmul_seconds(E, H, H) + 2 * scale.matmul_seconds(E, H, L))
    floor = (users / B) * (m.encoder_epochs * (encoder_step + decoder_step) + m.decoder_epochs * decoder_step) + prior_pass
    out: dict[str, Any] = {"users": users, "items": items, "outer epochs timed": epochs - 1, "floor_s": floor}
    for label, amp in (("float32", False), ("amp", True)):
        model = make_model("recvae", epochs=epochs, device="cpu", amp=amp, patience=None).fit(X)
        seconds = [h["epoch_seconds"] for h in model.history_[1:]]
        out[f"{label} median s per outer epoch"] = statistics.median(seconds)
        out[f"{label} min / max s"] = f"{min(seconds):.2f} / {max(seconds):.2f}"
        out[f"{label} ratio to floor"] = statistics.median(seconds) / floor
    return out


def bench_recvae(quick: bool) -> dict[str, Any]:
    """RecVAE's outer epoch at its defaults on ml-1m-lcfn (issue line: ≤ 3 s on 2 threads)."""
    out = _isolated("recvae_epoch_phase", {"epochs": 3 if quick else 9})
    _print("RecVAE, authors' defaults, one outer epoch (3 encoder + 1 decoder passes) on ml-1m-lcfn, 2 threads", out)
    return out


def bench_gpu(quick: bool) -> dict[str, Any]:
    """Training and scoring users/s at ML-20M's size, and ELSA's fit, on a GPU (benchmarks/gpu.py);
    skipped, and said so, where CUDA is absent."""
    import torch

    if not torch.cuda.is_available():
        print("\nGPU: skipped, no CUDA device here")
        return {"skipped": "no CUDA device"}
    import gpu

    print(f"\nGPU: {torch.cuda.get_device_name()}, ML-20M size (synthetic)")
    return gpu.measure(_committed_params("elsa"), quick)


#: ``--only`` name → (key in bench.json, benchmark taking ``quick``); each prints its own block.
BENCHES: dict[str, tuple[str, Any]] = {
    "scale": ("scale", bench_scale_table),
    "read-csv": ("read_csv", bench_read_csv),
    "anomalies": ("anomalies", bench_anomalies),
    "linear": ("linear", bench_linear),
    "ease": ("ease", bench_ease),
    "mult-vae-ml1m": ("mult-vae-ml1m", bench_mult_vae_paper),
    "recvae": ("recvae", bench_recvae),
    "recommend": ("recommend", lambda quick: bench_recommend()),
    "gpu": ("gpu", bench_gpu),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description="recae's benchmarks")
    parser.add_argument("--only", choices=list(BENCHES), action="append", help="run only these (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small sizes only (minutes, for CI)")
    parser.add_argument("--json", default="bench.json", metavar="PATH", help="where the figures go (default: %(default)s)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"quick": args.quick, "torch_threads": 2}
    for name in args.only or list(BENCHES):
        key, bench = BENCHES[name]
        figures[key] = bench(args.quick)
    write_json(args.json, figures)
    print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
