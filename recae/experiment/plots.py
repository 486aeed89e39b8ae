"""Figures logged with runs: learning curves and the comparison chart.

Figures are built with matplotlib's object API (``Figure``, not ``pyplot``):
they are only ever saved to files, so no backend is chosen, no window is
opened and no figure outlives its caller's reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure


def learning_curve(history: Sequence[dict[str, float]], title: str = "") -> Figure:
    """Training loss (and KL, β when present) and validation NDCG@100 against the epoch."""
    epochs = [r["epoch"] for r in history]
    val_key = next((k for k in (history[0] if history else {}) if k.startswith("val/")), None)
    n_panels = 2 if val_key else 1
    fig = Figure(figsize=(5 * n_panels, 3.6))
    axes = fig.subplots(1, n_panels, squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [r["loss"] for r in history], label="loss")
    if "nll" in history[0] and "kl" in history[0]:
        ax.plot(epochs, [r["nll"] for r in history], label="−log-likelihood", alpha=0.7)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (per user)")
    ax.legend(loc="upper right")
    if "beta" in history[0]:
        twin = ax.twinx()
        twin.plot(epochs, [r["beta"] for r in history], color="gray", linestyle=":", label="β")
        twin.set_ylabel("β (KL weight)")
    if val_key:
        ax = axes[0, 1]
        values = [r.get(val_key, float("nan")) for r in history]
        ax.plot(epochs, values, color="tab:green")
        best = max(range(len(values)), key=lambda i: values[i])
        ax.axvline(epochs[best], color="tab:red", linestyle="--", linewidth=1, label=f"best epoch {epochs[best]}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(val_key)
        ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def comparison_chart(
    names: Sequence[str],
    means: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    metric: str,
    title: str = "",
) -> Figure:
    """Bar chart of one metric per model with its confidence interval as error bars."""
    fig = Figure(figsize=(max(4.0, 1.1 * len(names) + 1), 3.6))
    ax = fig.subplots()
    err = [[m - lo for m, lo in zip(means, lows)], [hi - m for m, hi in zip(means, highs)]]
    ax.bar(names, means, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", rotation=30)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
