"""The classic autoencoder regularizers, for Mult-DAE: sparse (L1 or KL) and contractive.

- Sparse autoencoder (Ng 2011): the code's units should be mostly off. ``l1``:
  the batch mean of Σ_j |h_j|. ``kl``: Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch mean of
  the unit's activation mapped to (0, 1) (tanh: (h + 1)/2), ρ the target.
- Contractive autoencoder (Rifai et al. 2011): the squared Frobenius norm of
  the encoder's Jacobian, for a layer a = tanh(W x + b) in closed form
  ‖∂a/∂x‖²_F = Σ_j (1 − a_j²)² Σ_i W_ji², averaged over the batch.
"""

from __future__ import annotations

from typing import Any

import torch

from recae.checks import Constraint, Interval, Options

#: The values :class:`~recae.models.mult_dae.MultDAE` takes for its regularizer parameters.
REGULARIZER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "sparsity": [Options(("none", "l1", "kl"))],
    "sparsity_weight": [Interval(float, 0, None)],
    "sparsity_target": [Interval(float, 0, 1, closed="neither")],
    "contractive_weight": [Interval(float, 0, None)],
}


def sparsity_penalty(code: torch.Tensor, kind: str, target: float = 0.05) -> torch.Tensor:
    """The sparse autoencoder's penalty of a batch of tanh codes (batch, units)."""
    if kind == "l1":
        return code.abs().sum(dim=1).mean()
    rho_hat = ((code + 1.0) / 2.0).mean(dim=0).clamp(1e-6, 1 - 1e-6)
    rho = torch.as_tensor(target, dtype=code.dtype, device=code.device)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def contractive_penalty(activation: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Batch mean of ‖∂a/∂x‖²_F for a = tanh(W x + b): ``activation`` (batch, units),
    ``weight`` W as ``nn.Linear`` stores it, (units, inputs)."""
    per_unit = weight.pow(2).sum(dim=1)  # Σ_i W_ji²
    return ((1 - activation.pow(2)).pow(2) * per_unit).sum(dim=1).mean()


def regularizer_space(trial: Any) -> dict[str, Any]:
    """The regularizers' tuning ranges: a sparsity kind and weight, and a contractive weight
    (each drawn as off, or on a log scale)."""
    out: dict[str, Any] = {"sparsity": trial.suggest_categorical("sparsity", ["none", "l1", "kl"])}
    if out["sparsity"] != "none":
        out["sparsity_weight"] = trial.suggest_float("sparsity_weight", 1e-5, 1e-1, log=True)
    if trial.suggest_categorical("contractive", [False, True]):
        out["contractive_weight"] = trial.suggest_float("contractive_weight", 1e-6, 1e-2, log=True)
    return out


__all__ = ["REGULARIZER_CONSTRAINTS", "contractive_penalty", "regularizer_space", "sparsity_penalty"]
