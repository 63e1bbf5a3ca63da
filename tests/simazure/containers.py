"""Images and what runs them: ACR (token exchange, source upload, build runs), ACI container groups, and the
pods of an AKS cluster's Deployments.

A pushed image is its build context (the bundle directory). A container runs the image's ``CMD`` in a venv
built from the image's ``requirements.txt``, in a copy of the image, with the Dockerfile's ``ENV``, then the
container's environment, on a free loopback port; the gateway leads the container group's FQDN (or the
Service's load-balancer IP) there.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from diabetes_mlops.deploy.supervisor import _stop
from tests.simazure.runner import Dockerfile, Venvs, free_port, start_process, venv_env

START_TIMEOUT_SECONDS = 120


class ImageError(Exception):
    """The image cannot be pulled or started (ACI says ``InaccessibleImage``)."""


class Images:
    """Every registry's images by digest, and the tags naming them: ``<server>/<repository>:<tag>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tags: dict[str, str] = {}

    def push_context(self, image: str, tarball: Path) -> str:
        """Build ``image`` from a gzipped build context (here the context is the image); its digest."""
        digest = "sha256:" + hashlib.sha256(tarball.read_bytes()).hexdigest()
        target = self.root / digest.split(":")[1]
        if not target.is_dir():
            staging = target.with_name(f".{target.name}-{uuid.uuid4().hex[:6]}")
            with tarfile.open(tarball, "r:gz") as tar:
                tar.extractall(staging, filter="data")
            if not (staging / "Dockerfile").is_file():
                shutil.rmtree(staging)
                raise ImageError("the build context has no Dockerfile")
            staging.rename(target)
        self.tags[image] = digest
        return digest

    def digest(self, image: str) -> str | None:
        """The digest an image reference names (by digest or by tag); None when the registry has none."""
        if "@" in image:
            digest = image.split("@", 1)[1]
            return digest if (self.root / digest.split(":")[-1]).is_dir() else None
        return self.tags.get(image)

    def pull(self, image: str) -> Path:
        digest = self.digest(image)
        if digest is None:
            raise ImageError(f"image {image} not found")
        return self.root / digest.split(":")[1]


@dataclass
class Container:
    """One running container: its process and the loopback port it serves on."""

    image: str
    port: int
    process: subprocess.Popen[bytes]
    root: Path

    def stop(self) -> None:
        """As a container runtime stops it: SIGTERM, then SIGKILL if it hangs (the kit's own supervisor's way)."""
        _stop(self.process)

    def ready(self, path: str = "/ready") -> bool:
        if self.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


class Runtime:
    """Starts containers from images; venvs are shared between containers of the same requirements."""

    def __init__(self, images: Images, venvs: Venvs, root: Path, machine_env: dict[str, str]) -> None:
        self.images = images
        self.venvs = venvs
        self.root = root
        self.machine_env = machine_env

    def start(self, image: str, env: dict[str, str]) -> Container:
        """Pull, build the image's venv (cached), and start its CMD on a free loopback port."""
        source = self.images.pull(image)
        dockerfile = Dockerfile((source / "Dockerfile").read_text())
        requirements = source / "requirements.txt"
        pip_args = ["-r", str(requirements)] if requirements.is_file() else []
        key = self.venvs.key(b"image", requirements.read_bytes() if requirements.is_file() else b"")
        venv = self.venvs.get(key, pip_args, self.machine_env)
        root = self.root / f"c-{uuid.uuid4().hex[:10]}"
        shutil.copytree(source, root / "app")
        port = free_port()
        # Absolute paths of the image (its home, say) live under the container's own root here.
        image_env = {k: (str(root / v.lstrip("/")) if v.startswith("/") else v) for k, v in dockerfile.env.items()}
        # A container is on the cloud's network and has its identity endpoint, as a pod or container group has.
        machine = {**self.machine_env, **image_env, **env, "PORT": str(port), "DIABETES_MLOPS_HOST": "127.0.0.1"}
        full = venv_env(venv, machine)
        command = (
            [str(venv / "bin" / "python"), *dockerfile.cmd[1:]] if dockerfile.cmd[0] == "python" else dockerfile.cmd
        )
        process = start_process(command, root / "app", full, root / "container.log")
        return Container(image, port, process, root)


def wait_ready(container: Container, timeout: float = START_TIMEOUT_SECONDS) -> bool:
    """True once the container answers its readiness probe; False when it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.ready():
            return True
        if container.process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def in_background(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread
