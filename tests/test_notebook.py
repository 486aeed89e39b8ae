"""The quickstart notebook runs top to bottom against the shared data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list]:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, outputs


@pytest.mark.slow
def test_quickstart_notebook_executes(shared_datasets, tmp_path, monkeypatch):
    text, _ = _execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert "fingerprint:" in text and "best epoch" in text and "learning_curve.png" in text


@pytest.mark.slow
def test_what_else_notebook_shows_the_map_neighbours_anomalies_and_a_synthetic_user(shared_datasets, tmp_path, monkeypatch):
    text, outputs = _execute("what-else.ipynb", tmp_path, monkeypatch)
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the user map
    assert "Toy Story 2" in text or "similar_item_id" in text
    assert "JS divergence" in text and "synthetic-0 holds:" in text and "most anomalous real user" in text
