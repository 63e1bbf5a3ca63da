"""The local registry: concurrent writers, crashes mid-write, tampering, aliases and their history."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from diabetes_mlops.artifacts import verify_version_files
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.errors import IntegrityError, RegistryError
from diabetes_mlops.files import sha256_file
from diabetes_mlops.registry.base import parse_model_ref, unresolved
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.train import make_pipeline

NAME = "diabetes"

REGISTER_SCRIPT = textwrap.dedent(
    """
    import sys
    from diabetes_mlops.data import FEATURES, load_builtin
    from diabetes_mlops.registry.local import LocalRegistry
    from diabetes_mlops.train import make_pipeline

    root, alpha, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    frame = load_builtin()
    model = make_pipeline(alpha).fit(frame.loc[:, list(FEATURES)], frame["target"])
    registry = LocalRegistry(root)
    print("ready", flush=True)
    for i in range(count):
        entry = registry.register("diabetes", model, {"params": {"alpha": alpha}, "tags": {"writer": sys.argv[2]}})
        print(entry.version, flush=True)
    """
)


def fitted(alpha: float = 1.0):
    frame = load_builtin()
    return make_pipeline(alpha).fit(frame.loc[:, list(FEATURES)], frame["target"])


def start_writer(root: Path, alpha: float, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", REGISTER_SCRIPT, str(root), str(alpha), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )


def assert_every_version_whole(registry: LocalRegistry) -> list[int]:
    """Each listed version has metadata, its affine map as registered, and a model that loads and predicts."""
    rows = load_builtin().loc[:3, list(FEATURES)]
    versions = [v.version for v in registry.list_versions(NAME)]
    for version in versions:
        verify_version_files(registry.version_dir(NAME, version), registry.get(NAME, version))
        assert np.isfinite(registry.load(NAME, version).predict(rows)).all()
    return versions


def three_versions(root: Path) -> LocalRegistry:
    """A registry holding versions 1, 2 and 3 of ``NAME``, no alias set."""
    registry = LocalRegistry(root)
    for alpha in (1.0, 2.0, 3.0):
        registry.register(NAME, fitted(alpha), {})
    return registry


def test_eight_processes_register_eight_distinct_loadable_versions(tmp_path: Path) -> None:
    writers = [start_writer(tmp_path, 1.0 + i, 1) for i in range(8)]
    outputs = [w.communicate(timeout=120)[0].split() for w in writers]
    assert all(w.returncode == 0 for w in writers)
    versions = sorted(int(out[-1]) for out in outputs)
    assert versions == list(range(1, 9))
    registry = LocalRegistry(tmp_path)
    assert assert_every_version_whole(registry) == versions
    alphas = {registry.get(NAME, v).params["alpha"] for v in versions}
    assert alphas == {1.0 + i for i in range(8)}


def test_sigkill_mid_register_leaves_no_partial_version(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    for delay in (0.01, 0.05, 0.1, 0.2, 0.3):
        writer = start_writer(tmp_path, 1.0, 1000)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        assert_every_version_whole(registry)
    leftovers = [p for p in (tmp_path / NAME).iterdir() if p.name.startswith(".incoming-")]
    # The kills landed mid-write at least once, and those half-written versions stayed invisible.
    assert leftovers
    entry = registry.register(NAME, fitted(), {})
    assert entry.version == max(v.version for v in registry.list_versions(NAME))
    assert_every_version_whole(registry)


def test_a_staged_version_is_invisible(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    registry.register(NAME, fitted(), {})
    staged = tmp_path / NAME / ".incoming-crashed"
    staged.mkdir()
    (staged / "model.skops").write_bytes(b"half a model")
    assert [v.version for v in registry.list_versions(NAME)] == [1]
    assert registry.register(NAME, fitted(), {}).version == 2


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    entry = registry.register(NAME, fitted(), {"metrics": {"r2": 0.5}})
    path = registry.version_dir(NAME, entry.version) / "model.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        registry.load(NAME, entry.version)


def test_metadata_records_lineage(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    entry = registry.register(
        NAME,
        fitted(),
        {"metrics": {"r2": 0.45}, "data_fingerprint": "abc", "git_commit": "deadbeef", "replaced": None},
    )
    stored = json.loads((tmp_path / NAME / "1" / "metadata.json").read_text())
    assert stored["sha256"] == entry.sha256 and len(entry.sha256) == 64
    assert stored["metrics"] == {"r2": 0.45}
    assert stored["data_fingerprint"] == "abc" and stored["git_commit"] == "deadbeef"
    assert stored["created"].endswith("+00:00")
    affine = tmp_path / NAME / "1" / "affine.json"
    assert stored["affine_sha256"] == entry.affine_sha256 == sha256_file(affine)
    folded = json.loads(affine.read_text())
    rows = load_builtin().loc[:, list(FEATURES)]
    np.testing.assert_allclose(
        rows.to_numpy() @ folded["weights"] + folded["bias"], registry.load(NAME, 1).predict(rows), rtol=1e-9
    )


def test_a_version_recorded_by_a_newer_kit_is_read_without_its_new_fields(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    registry.register(NAME, fitted(), {"metrics": {"r2": 0.45}})
    path = tmp_path / NAME / "1" / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "a_field_from_the_future": [1, 2]}))
    entry = registry.get(NAME, 1)
    assert entry.version == 1 and entry.metrics == {"r2": 0.45}
    assert "a_field_from_the_future" not in entry.to_dict()


def test_a_model_that_is_not_affine_gets_no_affine_map(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    frame = load_builtin()
    model = Pipeline([("ridge", Ridge())]).fit(frame.loc[:, list(FEATURES)], frame["target"])
    entry = LocalRegistry(tmp_path).register(NAME, model, {})
    assert entry.affine_sha256 is None
    assert sorted(p.name for p in (tmp_path / NAME / "1").iterdir()) == ["metadata.json", "model.skops"]


def test_promote_and_rollback_are_recorded(tmp_path: Path) -> None:
    registry = three_versions(tmp_path)
    registry.set_alias(NAME, "production", 1)
    registry.set_alias(NAME, "production", 2)
    registry.set_alias(NAME, "production", 3)
    assert registry.rollback(NAME, "production").version == 2
    assert registry.rollback(NAME, "production").version == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(NAME, "production")
    assert registry.aliases(NAME) == {"production": 1}
    moves = [(h["action"], h["previous"], h["version"]) for h in registry.history(NAME)]
    assert moves == [
        ("promote", None, 1),
        ("promote", 1, 2),
        ("promote", 2, 3),
        ("rollback", 3, 2),
        ("rollback", 2, 1),
    ]
    assert registry.load(NAME, "production").named_steps["ridge"].alpha == 1.0
    times = [datetime.fromisoformat(str(h["time"])) for h in registry.history(NAME)]
    assert times == sorted(times) and all(t.tzinfo == UTC for t in times)


def test_unknown_version_and_alias_are_clear_errors(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    registry.register(NAME, fitted(), {})
    with pytest.raises(RegistryError, match="no version 7"):
        registry.get(NAME, 7)
    with pytest.raises(RegistryError, match="no 'production' alias"):
        registry.get(NAME, "production")
    with pytest.raises(RegistryError, match="unknown alias"):
        registry.set_alias(NAME, "staging", 1)
    with pytest.raises(RegistryError, match="no version 5"):
        registry.set_alias(NAME, "champion", 5)


def test_the_registry_refuses_pickle_style_untrusted_types(tmp_path: Path) -> None:
    import skops.io as sio

    registry = LocalRegistry(tmp_path)
    entry = registry.register(NAME, fitted(), {})
    path = registry.version_dir(NAME, entry.version) / "model.skops"
    sio.dump({"payload": Fraction(1, 3)}, path)
    metadata_path = path.parent / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["sha256"] = sha256_file(path)
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(IntegrityError, match="not trusted"):
        registry.load(NAME, entry.version)


@pytest.mark.parametrize("name", ["", "a/b", ".x", "../x", ".."])
def test_a_model_name_that_is_not_one_directory_is_refused(tmp_path: Path, name: str) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register(name, fitted(), {})
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.list_versions(name)
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_promotions_back_to_an_earlier_version_roll_back_through_each_move(tmp_path: Path) -> None:
    """Promotions 1, 2, 1: the previous version is 2, then 1; `previous` names what a rollback moves to."""
    registry = LocalRegistry(tmp_path)
    for alpha in (1.0, 2.0):
        registry.register(NAME, fitted(alpha), {})
    assert registry.previous(NAME, "production") is None
    for version in (1, 2, 1):
        registry.set_alias(NAME, "production", version)
    assert registry.previous(NAME, "production") == 2
    assert registry.rollback(NAME, "production").version == 2
    assert registry.previous(NAME, "production") == 1
    assert registry.rollback(NAME, "production").version == 1
    assert registry.previous(NAME, "production") is None
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(NAME, "production")


def test_a_registry_whose_directory_is_not_there_yet_starts_empty_and_at_version_1(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "new" / "registry")
    assert registry.list_versions(NAME) == [] and registry.aliases(NAME) == {} and registry.history(NAME) == []
    with pytest.raises(RegistryError, match="no registered version"):
        registry.get(NAME, "latest")
    assert registry.register(NAME, fitted(), {}).version == 1
    assert registry.get(NAME, "latest").version == 1
    with pytest.raises(RegistryError, match="no version 1"):
        LocalRegistry(tmp_path / "other" / "registry").set_alias(NAME, "champion", 1)


def test_each_alias_rolls_back_through_its_own_moves_only(tmp_path: Path) -> None:
    registry = three_versions(tmp_path)
    registry.set_alias(NAME, "production", 1)
    registry.set_alias(NAME, "champion", 2)
    registry.set_alias(NAME, "champion", 3)
    assert registry.previous(NAME, "production") is None and registry.previous(NAME, "champion") == 2
    registry.set_alias(NAME, "production", 3)
    assert registry.rollback(NAME, "production").version == 1
    assert registry.aliases(NAME) == {"champion": 3, "production": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", (NAME, 3)),
        (" champion ", (NAME, "champion")),
        ("production", (NAME, "production")),
        ("other:latest", ("other", "latest")),
        ("a:b:2", ("a:b", 2)),
        (":production", (NAME, "production")),
    ],
)
def test_a_model_reference_is_a_name_and_a_version_alias_or_latest(text: str, expected: tuple[str, object]) -> None:
    assert parse_model_ref(text, NAME) == expected


@pytest.mark.parametrize("text", ["staging", "-1", "", "other:", "v2"])
def test_anything_else_is_not_a_model_reference(text: str) -> None:
    with pytest.raises(RegistryError, match="neither a version number nor one of champion, production, latest"):
        parse_model_ref(text, NAME)


@pytest.mark.parametrize(
    ("ref", "verb"),
    [
        ("champion", "diabetes-mlops retrain"),
        ("production", "diabetes-mlops release"),
        ("latest", "diabetes-mlops retrain"),
    ],
)
def test_an_unset_alias_names_the_command_that_sets_it(ref: str, verb: str) -> None:
    assert f"run `{verb}` first" in str(unresolved(NAME, ref))
