"""Experiments: a benchmark (data → split → models → metrics → report) and tuning.

``config`` (what determines a result), ``runs`` (the steps every model goes
through), ``benchmark`` and ``tuning`` (the two experiments), ``results``
(what they return), ``tuned`` (reusing a search's best parameters), ``plots``.
Tracking is reached only through the protocol in ``tracker``; the caller
passes in an implementation (``recae.tracking``'s, or the no-op one).
"""
