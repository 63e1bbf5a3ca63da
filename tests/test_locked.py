"""The package's requirements pinned as installed: what a remote step's environment is built from."""

from __future__ import annotations

from importlib.metadata import distribution, version

from packaging.requirements import Requirement

from diabetes_mlops.locked import lock_digest, locked_requirements


def test_every_direct_requirement_is_pinned_to_the_installed_version_and_only_asked_extras_count() -> None:
    bare = locked_requirements()
    direct = [Requirement(line) for line in distribution("diabetes-mlops").requires or [] if "extra ==" not in line]
    assert {f"{r.name}=={version(r.name)}".lower() for r in direct} <= {pin.lower() for pin in bare}
    assert not [pin for pin in bare if pin.startswith(("azure-ai-ml==", "diabetes-mlops=="))]
    with_azure = locked_requirements(("azure-tracking",))
    assert f"azure-ai-ml=={version('azure-ai-ml')}" in with_azure and set(bare) < set(with_azure)
    # A dependency's own requirements come too: azure-ai-ml needs azure-core.
    assert f"azure-core=={version('azure-core')}" in with_azure
    names = [pin.split("==")[0] for pin in with_azure]
    assert names == sorted(set(names))  # one pin each, in name order


def test_the_digest_changes_with_any_pin_or_the_image() -> None:
    pins = locked_requirements()
    bumped = [pins[0] + ".post1", *pins[1:]]
    digests = {lock_digest(pins, "image:1"), lock_digest(bumped, "image:1"), lock_digest(pins, "image:2")}
    assert len(digests) == 3 and lock_digest(pins, "image:1") == lock_digest(list(pins), "image:1")
