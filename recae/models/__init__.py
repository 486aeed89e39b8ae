"""The models: one module per model, all behind :class:`~recae.models.base.Recommender`.

::

    base.py          the interface: fit → _fit, score → _score, recommend, save/load
    registry.py      REGISTRY (name → class), get_model_class, make_model
    persistence.py   the saved-model folder (JSON parameters + arrays)
    nn.py            Mult-VAE / Mult-DAE networks and their loss functions
    recvae_nn.py     RecVAE's network, composite prior and loss terms
    vasp_nn.py       VASP's deep and shallow paths, focal loss and KL term
    cdae_nn.py       CDAE's network, loss, negative sampler and fold-in
    autoencoder.py   the training loop the neural autoencoders share
    mult_vae.py, mult_dae.py, recvae.py, cdae.py, vasp.py, ease.py, edlae.py, elsa.py, blend.py,
    als.py, bpr.py,
    item_knn.py, popularity.py
    _implicit.py     thread limits and the fit call of the models ``implicit`` fits
    memory.py        memory budgets for item × item models

Every model scores from a history alone (fold-in): a user never seen in
``fit`` is scored the same way as one that was. What each keeps from ``fit``
is plain arrays, so a model read back with ``np.load(..., allow_pickle=False)``
scores exactly like the one that was saved:

==============  ===========================================  ====================================
model           learned state                                score of a history ``x`` (1 × items)
==============  ===========================================  ====================================
``mult-vae``    encoder and decoder weights                  decoder logits of the mean code of x
``mult-dae``    encoder and decoder weights                  the network's logits for x
``recvae``      encoder and decoder weights                  decoder logits of the mean code of x
``vasp``        encoder, decoders, ``B`` (zero diagonal)     log of σ(decoders) · σ(``x @ B``)
                                                             at the mean code of x
``cdae``        item weights W, b, W′, b′                    output logits, its user node fitted to x
``popularity``  users per item                               the same count vector for everyone
``ease``        ``B`` (items × items, zero diagonal)         ``x @ B``
``edlae``       ``B``, or rank-r factors ``E``, ``F`` and a   ``x @ B``, or ``(x @ E) @ Fᵀ + x ⊙ d``
                diagonal ``d``
``elsa``        item embeddings ``A`` (rows of unit length)   ``(x @ A) @ Aᵀ − x``
``blend``       each member's state, the weights ``w``       Σ w_m · (member m's scores of x,
                                                             standardized over the catalogue)
``als``         item factors ``Y``                           ``x_u @ Yᵀ``, ``x_u`` solved from ``x``
``bpr``         item factors + item bias, item counts        ``[x_u, 1] @ Yᵀ``, ``x_u`` fitted to ``x``
``item-knn``    sparse item–item similarity ``S``            ``x @ S``
==============  ===========================================  ====================================

A model never imports pandas, optuna or mlflow; data arrive as CSR matrices.
Adding a model is one new module here (a ``Recommender`` subclass with its
``name`` and ``_parameter_constraints``) and one entry in
:data:`~recae.models.registry.REGISTRY`; its tests subclass the shared model
contract (``tests/models/contract.py``), which a registered model must have.
"""

from __future__ import annotations

from recae.models.als import ALS
from recae.models.base import Recommender
from recae.models.blend import Blend
from recae.models.bpr import BPR
from recae.models.cdae import CDAE
from recae.models.checkpoint import Checkpoint
from recae.models.ease import EASE
from recae.models.edlae import EDLAE
from recae.models.elsa import ELSA
from recae.models.item_knn import ItemKNN
from recae.models.mult_dae import MultDAE
from recae.models.mult_vae import MultVAE
from recae.models.popularity import Popularity
from recae.models.recvae import RecVAE
from recae.models.registry import REGISTRY, get_model_class, make_model
from recae.models.vasp import VASP

__all__ = [
    "Checkpoint",
    "ALS",
    "Blend",
    "BPR",
    "CDAE",
    "EASE",
    "EDLAE",
    "ELSA",
    "REGISTRY",
    "VASP",
    "ItemKNN",
    "MultDAE",
    "MultVAE",
    "Popularity",
    "RecVAE",
    "Recommender",
    "get_model_class",
    "make_model",
]
