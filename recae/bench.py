"""Benchmarks that report figures (``make bench`` runs ``python -m recae.bench``).

The tests assert correctness and stay fast; the numbers live here. Each
``bench_*`` function prints one block and returns its figures as a dict.
Data sets come from the cache (``$RECAE_DATA_DIR``; the Makefile points it at
``../shared/datasets`` when present).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _ml_latest_small() -> Any:
    from recae import data

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
    import mlflow
    import pandas as pd

    from recae.cli import main
    from recae.models import make_model
    from recae.recommend import item_popularity
    from recae.serving import log_model

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
            mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
            mlflow.set_experiment("bench")
            times = []
            with mlflow.start_run():
                for i in range(3):
                    t = time.perf_counter()
                    info = log_model(
                        model, inter.item_ids, item_popularity(inter.matrix), name=f"model-{i}",
                        user_ids=inter.user_ids, histories=inter.matrix,
                    )
                    times.append(time.perf_counter() - t)
            out["log_model_seconds"] = min(times)
            uri = info.model_uri
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


def main() -> None:
    bench_recommend()


if __name__ == "__main__":
    main()
