"""The notebooks run top to bottom against the shared data sets and show what they say they show."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


class _TableRows(HTMLParser):
    """The rows of an HTML table (a DataFrame's notebook display), each a list of its cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _shown_table(cell) -> pd.DataFrame:  # noqa: ANN001
    """The DataFrame a code cell displays, read back from its HTML output (all cells as text)."""
    parser = _TableRows()
    parser.feed("".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", [])))
    header, *rows = parser.rows
    return pd.DataFrame([row[1:] for row in rows], columns=header[1:])  # the first cell is the index


def _titled(shown: str, title: str) -> bool:
    """``shown`` is ``title``, or pandas's cut of it (first characters, then "...")."""
    return shown == title or (shown.endswith("...") and len(shown) > 3 and title.startswith(shown[:-3]))


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list, object]:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, outputs, nb


@pytest.mark.slow
def test_quickstart_notebook_executes(shared_datasets, tmp_path, monkeypatch):
    text, _, _ = _execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert "fingerprint:" in text and "best epoch" in text and "learning_curve.png" in text


@pytest.mark.slow
def test_what_else_notebook_shows_the_map_neighbours_anomalies_and_a_synthetic_user(shared_datasets, tmp_path, monkeypatch):
    text, outputs, nb = _execute("what-else.ipynb", tmp_path, monkeypatch)
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the user map
    # Toy Story's ten neighbours, each with the title movies.csv gives its id
    neighbours = _shown_table(next(c for c in nb.cells if c.cell_type == "code" and "topn.similar(" in c.source))
    assert list(neighbours.columns) == ["item_id", "rank", "similar_item_id", "score", "title"]
    assert neighbours["item_id"].tolist() == ["1"] * 10 and neighbours["rank"].tolist() == [str(r) for r in range(1, 11)]
    titles = pd.read_csv(shared_datasets / "ml-latest-small" / "movies.csv").set_index("movieId")["title"]
    for item, title in zip(neighbours["similar_item_id"], neighbours["title"]):
        assert _titled(title, titles[int(item)]), (item, title)
    assert "JS divergence" in text and "synthetic-0 holds:" in text and "most anomalous real user" in text
