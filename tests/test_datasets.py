"""The training data now and the data with a fingerprint: the latest snapshot, data_path, built-in, in that order."""

from __future__ import annotations

from pathlib import Path

from diabetes_mlops import datasets
from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import BUILTIN, fingerprint, load_builtin
from diabetes_mlops.monitoring.reference import champion_reference
from diabetes_mlops.snapshots import Snapshot, commit, lock, snapshot_path


def _snapshot(settings: Settings, rows: int) -> Snapshot:
    with lock(settings):
        batch = {"source": f"first {rows}", "sha256": str(rows), "n_added": rows}
        made = commit(settings, batch, load_builtin()[:rows])
    assert made is not None
    return made


def test_the_current_table_is_the_latest_snapshot_and_is_labelled_with_its_file(settings: Settings) -> None:
    assert datasets.current(settings).source == BUILTIN
    older, newer = _snapshot(settings, 300), _snapshot(settings, 442)
    current = datasets.current(settings)
    assert current.source == str(snapshot_path(settings, newer)) != str(snapshot_path(settings, older))
    assert current.fingerprint == newer.fingerprint and len(current.frame) == 442


def test_a_snapshot_the_champion_trained_on_is_its_reference_after_newer_data(settings: Settings) -> None:
    older = _snapshot(settings, 300)
    _snapshot(settings, 442)
    found = datasets.find(settings, older.fingerprint)
    assert found is not None and found.source == str(snapshot_path(settings, older)) and len(found.frame) == 300
    reference = champion_reference(settings, older.fingerprint)
    assert reference.is_champions and reference.source == found.source and reference.fingerprint == older.fingerprint
    assert reference.note is None


def test_data_path_and_builtin_are_found_by_fingerprint_and_nothing_else_is(home: Path, tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    load_builtin()[:200].to_csv(table, index=False)
    settings = load_settings(home=home, data_path=table)
    assert (found := datasets.find(settings, fingerprint(load_builtin()[:200]))) and found.source == str(table)
    assert (builtin := datasets.find(settings, fingerprint(load_builtin()))) and builtin.source == BUILTIN
    assert datasets.find(settings, "0" * 64) is None
    reference = champion_reference(settings, "0" * 64)
    assert not reference.is_champions and reference.fingerprint == fingerprint(load_builtin()[:200])
    assert reference.note is not None and "was not found" in reference.note
