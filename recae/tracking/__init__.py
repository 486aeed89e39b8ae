"""MLflow: the only package of recae that imports ``mlflow``.

:mod:`recae.tracking.tracker` logs runs, :mod:`recae.tracking.pyfunc` logs and
loads recae models as MLflow pyfunc models and registers them.
"""
