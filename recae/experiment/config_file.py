"""Model parameters from a TOML file: ``recae benchmark --config FILE`` (and ``recae tune``).

The file holds one table per registered model, each holding that model's
constructor parameters::

    [ease]
    l2 = 500.0

    [mult-vae]
    hidden_dims = [600]
    latent_dim = 200

    [popularity]

Every table is checked when the file is read, before any data is: an unknown
model, an unknown parameter, a value of the wrong type or out of range, and a
TOML syntax error each end with one line naming the file, the table and the
key (or the line). A file may hold models a run does not train; only the
tables of the models run are used.

TOML has no null: leave a parameter out to keep its default (``--param
model.key=none`` sets ``None`` from the command line).

Where a parameter is set, the first of these wins: ``--param``, the file,
``--tuned`` (the best parameters of ``recae tune``), the model's default.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recae.checks import check_params
from recae.errors import UsageError
from recae.models import REGISTRY


@dataclass(frozen=True)
class ConfigFile:
    """A config file's tables, each checked against its model's parameter table.

    Attributes
    ----------
    path : str
        The file, as given.
    sha256 : str
        The SHA-256 of its bytes (hex), so that a run names the exact content it used.
    model_params : dict of model name → dict of parameter → value
        Every table of the file, in the file's order.
    """

    path: str
    sha256: str
    model_params: dict[str, dict[str, Any]]

    def params_for(self, models: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The tables of ``models`` the file holds (copies), in the file's order."""
        wanted = set(models)
        return {name: dict(params) for name, params in self.model_params.items() if name in wanted}


def read_config_file(path: str | os.PathLike[str]) -> ConfigFile:
    """Read and check the TOML file at ``path``.

    Raises
    ------
    UsageError
        The file is missing, a folder, unreadable, not UTF-8 or not valid TOML
        (naming the line); a top-level key is not a table; a table names an
        unknown model, a parameter the model does not take, or a value outside
        the model's declared table (naming the table and the key).
    """
    name = os.fspath(path)
    data = _read_bytes(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{name}: not UTF-8 text (byte {e.start + 1})") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{name}: not valid TOML: {e}") from None
    params = {model: check_table(name, model, table) for model, table in tables.items()}
    return ConfigFile(path=name, sha256=hashlib.sha256(data).hexdigest(), model_params=params)


def _read_bytes(name: str) -> bytes:
    """The file's bytes, or ``UsageError`` naming it when it cannot be read."""
    if os.path.isdir(name):
        raise UsageError(f"{name}: is a folder, not a config file")
    try:
        with open(name, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such config file") from None
    except OSError as e:
        raise UsageError(f"{name}: cannot be read ({e.strerror or e})") from None


def check_table(path: str, model: str, table: Any) -> dict[str, Any]:
    """``table`` as the parameters of ``model``, or ``UsageError`` naming ``path``, the table and the key."""
    if isinstance(table, list):
        raise UsageError(f"{path}: [[{model}]] is an array of tables; a model takes one table, [{model}]")
    if not isinstance(table, dict):
        raise UsageError(
            f"{path}: key {model!r} lies outside any table; a parameter goes under its model's table, e.g. [ease]"
        )
    if model not in REGISTRY:
        raise UsageError(f"{path}: table [{model}]: unknown model; known models: {', '.join(REGISTRY)}")
    cls = REGISTRY[model]
    known = cls.param_names()
    for key in table:
        if key not in known:
            takes = f"takes: {', '.join(known)}" if known else "takes no parameters"
            raise UsageError(f"{path}: table [{model}]: unknown parameter {key!r}; {model} {takes}")
    try:
        check_params(table, cls._parameter_constraints)
    except UsageError as e:
        raise UsageError(f"{path}: table [{model}]: {e}") from None
    return dict(table)


def merge_params(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Model parameters from ``layers``, parameter by parameter; a later layer wins.

    ``merge_params(from_file, from_command_line)`` keeps the file's other
    parameters of a model when the command line sets one of them.
    """
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for model, params in layer.items():
            out.setdefault(model, {}).update(params)
    return out


__all__ = ["ConfigFile", "check_table", "merge_params", "read_config_file"]
