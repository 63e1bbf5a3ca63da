"""What a notebook shows of each result: decision first, the metrics table, the plots from the object itself."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES
from diabetes_mlops.deploy.release import ReleaseOutcome
from diabetes_mlops.deploy.targets import Endpoint
from diabetes_mlops.display import model_listing
from diabetes_mlops.monitoring.drift import drift_report
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.pipelines import retrain
from diabetes_mlops.registry import open_registry
from diabetes_mlops.runs import PLOTS
from tests.test_drift import builtin_features, log_rows

DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


class Page(HTMLParser):
    """The text, table cells and image sources of an HTML fragment, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._in_row = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
            self._in_row = True
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_row = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_row and data.strip():
            self.rows[-1].append(data.strip())


def png_bytes(uri: str) -> bytes:
    match = DATA_URI.fullmatch(uri)
    assert match, uri[:60]
    return base64.b64decode(match[1])


def test_a_retrain_shows_decision_metrics_and_its_plots(settings: Settings) -> None:
    outcome = retrain(settings)
    page = Page(outcome._repr_html_())
    assert "".join(page.text).startswith("registered diabetes:1 as champion: no champion yet")
    assert page.rows[0] == ["metric", "challenger", "champion"]
    r2 = next(row for row in page.rows if row[0] == "R2")
    assert r2 == ["R2", f"{outcome.evaluation.challenger['r2']:.4f}", "none"]
    assert [png_bytes(src) for src in page.images] == [(outcome.run_dir / name).read_bytes() for name in PLOTS]
    text = repr(outcome)
    assert text == f"<RetrainOutcome registered diabetes:1 as champion; run {outcome.run_dir.name}>"

    kept = retrain(settings)
    page = Page(kept._repr_html_())
    assert "".join(page.text).startswith("champion kept (version 1): challenger MSE")
    mse = next(row for row in page.rows if row[0] == "MSE")
    assert mse[2] == f"{kept.evaluation.champion['mse']:.4f}"
    assert repr(kept.evaluation).startswith("<Evaluation keep the champion")
    assert Page(kept.evaluation._repr_html_()).text[0] == "keep the champion"

    card = kept.model_card._repr_markdown_()
    assert not re.search(r"\]\([a-z_]+\.png\)", card)  # every plot link became the image itself
    inlined = [png_bytes(m[0]) for m in DATA_URI.finditer(card)]
    assert inlined == [(kept.run_dir / name).read_bytes() for name in PLOTS]

    listing = model_listing(open_registry(settings), settings.model_name)
    assert Page(listing._repr_html_()).rows[1][0] == "1" and "champion" in Page(listing._repr_html_()).rows[1]
    assert repr(listing) == "<ModelListing diabetes: 1 versions, aliases {'champion': 1}>"
    assert repr(listing.versions[0]).startswith("<ModelVersion diabetes:1 created ")


def test_a_drift_report_shows_its_verdict_and_the_drifting_plot(settings: Settings, tmp_path: Path) -> None:
    retrain(settings)
    rows = builtin_features(400, seed=3)
    rows[:, FEATURES.index("bmi")] += 8.0
    log_rows(settings, rows)
    report = drift_report(settings, LocalLogStore(settings.logs_dir), open_registry(settings), out_dir=tmp_path / "r")
    markdown = report._repr_markdown_()
    assert markdown.splitlines()[2].startswith("**drift**: drift in bmi")
    assert png_bytes(DATA_URI.search(markdown)[0]) == (tmp_path / "r" / "bmi.png").read_bytes()
    assert repr(report).startswith("<DriftReport drift: drift in bmi") and len(repr(report)) < 200


def test_a_release_says_what_it_did_and_where() -> None:
    qa, production = (
        Endpoint(env, "local", f"http://127.0.0.1:{port}", "diabetes", 2)
        for env, port in [("qa", 1), ("production", 2)]
    )
    done = ReleaseOutcome("all", "local", "diabetes", 2, True, "released", None, qa, production)
    assert repr(done) == "<ReleaseOutcome diabetes:2 released: released>"
    page = Page(done._repr_html_())
    assert page.text[0] == "diabetes:2 released"
    assert page.rows == [["QA", "http://127.0.0.1:1"], ["production", "http://127.0.0.1:2"]]
    nothing = ReleaseOutcome("production", "local", "diabetes", 2, False, "production already serves diabetes:2")
    assert Page(nothing._repr_html_()).rows == []
    assert repr(nothing) == "<ReleaseOutcome diabetes:2 not released: production already serves diabetes:2>"
