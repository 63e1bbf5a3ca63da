"""Images and what runs them: ACR (token exchange, source upload, build runs), ACI container groups, and the
pods of an AKS cluster's Deployments.

An ACR build executes the context's Dockerfile step by step, as docker's classic builder does, and logs each
step (``Step N/M : INSTRUCTION ...`` then its output). The image is a root directory and a config:

- ``FROM python:X.Y[-variant]`` stands for a venv of that Python (one on this machine; any other is refused
  as docker refuses an image it cannot resolve), with the base image's users (root, nobody);
- ``WORKDIR`` and ``COPY`` (``--chown``, ``.dockerignore``) write under the image's root; ``RUN`` runs its
  shell command there with the image's venv first on ``PATH``, its ``ARG``/``ENV`` (absolute paths mapped
  under the image's root). ``pip install`` leading a ``RUN`` (or after ``&&``) installs from the wheelhouse
  only, into a venv cached by what went into it (the Python, every requirement file's content): the same
  requirements build once per state directory, a requirement the wheelhouse lacks fails the step with pip's
  message. ``useradd``/``groupadd`` record the user (no system user is made); ``USER`` must name one;
- ownership (``COPY --chown``, a created home, ``WORKDIR`` dirs) is recorded per path in the config.

A container runs the image's ``CMD`` in the image's venv, in a copy of the image's root, as its ``USER``,
with its ``ENV`` (then the container's environment), on a free loopback port; the gateway leads the container
group's FQDN (or the Service's load-balancer IP) there. Not enforced (the simulator runs as one OS user, and
on a shared filesystem): file permissions at run time (``Container.denied_writes`` reports writes the
``USER`` could not have made, from the recorded ownership), and absolute paths inside ``RUN`` commands
(only ``ENV`` values are mapped). ``RUN`` refuses system package managers, and ``pip install`` or user
management anywhere but at the head of a command chain.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from diabetes_mlops.deploy.supervisor import _stop
from tests.simazure.runner import (
    BuildFailed,
    Dockerfile,
    DockerfileError,
    Instruction,
    Venvs,
    env_pairs,
    free_port,
    requirement_digest,
    start_process,
    substitute,
    venv_env,
)

START_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 900
PYTHON_IMAGES = ("python", "library/python", "docker.io/library/python")
PYTHON_TAG = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?:-[a-z0-9-]+)?")
BASE_USERS = {"root": (0, 0, "/root"), "nobody": (65534, 65534, "/nonexistent")}
BASE_GROUPS = {"root": 0, "nogroup": 65534}
# What a build's RUN may not do here: the simulated slim image has no system package manager.
PACKAGE_MANAGERS = ("apt-get", "apt", "apk", "yum", "dnf", "microdnf", "zypper")
USER_TOOLS = ("useradd", "groupadd", "adduser", "addgroup", "usermod", "chown")
PIP_FLAGS_DROPPED = ("--no-cache-dir", "--quiet", "-q", "--disable-pip-version-check", "--no-warn-script-location")
PIP_REFUSED = ("--user", "--index-url", "-i", "--extra-index-url", "--target", "-t", "--prefix", "--root")


class ImageError(Exception):
    """The image cannot be pulled or started (ACI says ``InaccessibleImage``)."""


class ImageBuildError(Exception):
    """A build failed: ``str()`` is the short reason (a run's ``runErrorMessage``); ``log`` the build's log."""

    def __init__(self, reason: str, log: str) -> None:
        super().__init__(reason)
        self.log = log


class StepFailed(Exception):
    """One step failed; the message is docker's last line about it."""


@dataclass
class ImageConfig:
    """What a built image is besides its files: its Python and venv, environment, user, command, ownership."""

    python: str
    venv: str
    env: dict[str, str]
    workdir: str
    user: str
    users: dict[str, list[Any]]  # name: [uid, gid, home]
    groups: dict[str, int]
    owners: dict[str, str]  # an image path: "uid:gid" of it and what is under it (unless recorded itself)
    cmd: list[str]
    exposed: list[str] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    rootfs: str = ""
    venv_path: str = ""  # where the venv is here: not part of the image's digest

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def digest(self) -> str:
        content = {k: v for k, v in self.to_dict().items() if k != "venv_path"}
        return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def uid_gid(self, user: str | None = None) -> tuple[int, int]:
        """The uid and gid of ``user`` (``name``, ``uid``, ``name:group``); the image's USER by default."""
        name, _, group = (user if user is not None else self.user).partition(":")
        if name.isdigit():
            uid, gid = int(name), int(name)
        elif name in self.users:
            uid, gid = int(self.users[name][0]), int(self.users[name][1])
        else:
            raise KeyError(name)
        if group:
            if group.isdigit():
                gid = int(group)
            elif group in self.groups:
                gid = self.groups[group]
            else:
                raise KeyError(group)
        return uid, gid

    def home(self) -> str:
        name = self.user.partition(":")[0]
        if name in self.users:
            return str(self.users[name][2])
        return "/root" if name in ("", "0", "root") else "/"

    def owner(self, path: str) -> tuple[int, int]:
        """The recorded owner of an image path: its own record, else its nearest recorded ancestor's."""
        current = PurePosixPath(path)
        for candidate in (current, *current.parents):
            found = self.owners.get(str(candidate))
            if found is not None:
                uid, _, gid = found.partition(":")
                return int(uid), int(gid)
        return 0, 0

    def writable(self, path: str, user: str | None = None) -> bool:
        """Whether ``user`` (the image's USER by default) may write ``path`` (docker's default modes: owner only)."""
        uid, _ = self.uid_gid(user)
        return uid == 0 or self.owner(path)[0] == uid


def _tree_digest(root: Path) -> str:
    """The digest of a directory's content: every entry's path, kind, mode and bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\n".encode())
        elif path.is_dir():
            digest.update(f"D {relative}\n".encode())
        else:
            digest.update(f"F {relative} {path.stat().st_mode & 0o777:o} ".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _ignore_patterns(context: Path) -> list[tuple[bool, str]]:
    """The context's ``.dockerignore``: (is an exception ``!``, pattern), in order."""
    found = context / ".dockerignore"
    patterns = []
    for line in found.read_text().splitlines() if found.is_file() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").strip().strip("/")))
    return patterns


def _ignored(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path, or one of its parent directories, decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in patterns:
        for candidate in candidates:
            if pattern.startswith("**/"):
                tail = pattern[3:]
                names = candidate.split("/")
                hit = any(fnmatch.fnmatchcase("/".join(names[i:]), tail) for i in range(len(names)))
            else:
                hit = fnmatch.fnmatchcase(candidate, pattern)
            if hit:
                ignored = not negated
                break
    return ignored


def _host(root: Path, image_path: str) -> Path:
    return root / image_path.lstrip("/")


def host_env(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """An image's environment as a process here sees it: absolute paths live under the image's (container's) root."""
    return {k: (str(_host(root, v)) if v.startswith("/") else v) for k, v in env.items()}


class _Build:
    """One build: the Dockerfile's steps executed in order on an image root, with the build's log."""

    def __init__(self, images: Images, context: Path, rootfs: Path, build_args: Mapping[str, str]) -> None:
        self.images = images
        self.context = context
        self.rootfs = rootfs
        self.build_args = dict(build_args)
        self.ignore: list[tuple[bool, str]] = []  # the context's .dockerignore, once it is unpacked
        self.lines: list[str] = []
        self.args: dict[str, str] = {}
        self.global_args: dict[str, str] = {}
        self.venvs: Venvs | None = None
        self.pip_args: list[str] = []
        self.pip_parts: list[bytes] = []
        self.config: ImageConfig | None = None

    def log(self, text: str) -> None:
        self.lines.extend(text.rstrip("\n").splitlines() if text.strip() else [])

    @property
    def image(self) -> ImageConfig:
        if self.config is None:
            raise StepFailed("no build stage in current context: the Dockerfile must start with FROM")
        return self.config

    def scope(self) -> dict[str, str]:
        """What ``$NAME`` means in an instruction: the build's ARGs, then the image's ENV."""
        return {**self.args, **(self.image.env if self.config else {})}

    def run(self, dockerfile: Dockerfile) -> ImageConfig:
        steps = dockerfile.instructions
        for number, ins in enumerate(steps, 1):
            self.log(f"Step {number}/{len(steps)} : {ins.text}")
            getattr(self, f"_{ins.keyword.lower()}")(ins)
            self.log(f" ---> {hashlib.sha256(f'{number}{ins.text}'.encode()).hexdigest()[:12]}")
        return self.image

    # --- instructions -------------------------------------------------------------------------------

    def _from(self, ins: Instruction) -> None:
        if self.config is not None:
            raise StepFailed("multi-stage builds (a second FROM) are not supported by the simulated ACR build")
        platform_args = {"BUILDPLATFORM": "linux/amd64", "TARGETPLATFORM": "linux/amd64", **self.args}
        platform = substitute(ins.flags.get("platform", "linux/amd64"), platform_args)
        reference = substitute(ins.args.split()[0] if ins.args else "", self.args)
        # An ARG before FROM is FROM's only; after it, an ARG of the same name without a default takes its value.
        self.global_args, self.args = self.args, {}
        name, _, tag = reference.partition(":")
        tag = tag or "latest"
        matched = PYTHON_TAG.fullmatch(tag)
        if platform != "linux/amd64" or name not in PYTHON_IMAGES or not matched or "@" in reference:
            raise StepFailed(
                f"failed to resolve source metadata for docker.io/library/{reference}: the simulated registry "
                "stands for python:X.Y[-variant] images (linux/amd64) only"
            )
        wanted = f"{matched['major']}.{matched['minor']}"
        python = self.images.python(wanted)
        if python is None:
            raise StepFailed(
                f"failed to resolve source metadata for docker.io/library/{reference}: "
                f"docker.io/library/{reference}: not found (no Python {wanted} on the machine the simulator runs on)"
            )
        self.venvs = self.images.venvs_for(wanted, python)
        key = self.venvs.key(b"python-image", wanted.encode())
        venv = self.venvs.get(key, [], self.images.build_env)
        version = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for directory in ("root", "tmp", "home", "usr/local/bin"):
            (self.rootfs / directory).mkdir(parents=True, exist_ok=True)
        self.config = ImageConfig(
            python=version,
            venv=key,
            env={"LANG": "C.UTF-8", "PYTHON_VERSION": version},
            workdir="/",
            user="root",
            users={n: list(v) for n, v in BASE_USERS.items()},
            groups=dict(BASE_GROUPS),
            owners={"/": "0:0"},
            cmd=["python3"],
            venv_path=str(venv),
        )
        self.log(f" ---> python:{tag} stands for Python {version} (a venv)")

    def _arg(self, ins: Instruction) -> None:
        for name, eq, default in (w.partition("=") for w in shlex.split(ins.args)):
            value = substitute(default, self.scope()) if eq else self.global_args.get(name, "")
            self.args[name] = self.build_args.get(name, value)

    def _env(self, ins: Instruction) -> None:
        for name, value in env_pairs(ins.args):
            self.image.env[name] = substitute(value, self.scope())

    def _label(self, ins: Instruction) -> None:
        for name, value in env_pairs(ins.args):
            self.image.labels[name] = substitute(value, self.scope())

    def _workdir(self, ins: Instruction) -> None:
        path = substitute(ins.args.strip(), self.scope())
        target = PurePosixPath(self.image.workdir) / path  # an absolute path replaces it
        self._mkdirs(str(target), self.image.user)
        self.image.workdir = str(target)

    def _user(self, ins: Instruction) -> None:
        user = substitute(ins.args.strip(), self.scope())
        try:
            self.image.uid_gid(user)
        except KeyError as missing:
            raise StepFailed(
                f"unable to find user {missing.args[0]}: no matching entries in passwd file"
                if missing.args[0] == user.partition(":")[0]
                else f"unable to find group {missing.args[0]}: no matching entries in group file"
            ) from None
        self.image.user = user

    def _expose(self, ins: Instruction) -> None:
        for port in substitute(ins.args, self.scope()).split():
            self.image.exposed.append(port if "/" in port else f"{port}/tcp")

    def _cmd(self, ins: Instruction) -> None:
        self.image.cmd = ins.exec_form() or ["/bin/sh", "-c", ins.args]

    def _healthcheck(self, ins: Instruction) -> None:
        if ins.args.strip().upper() == "NONE":
            self.image.healthcheck = None
            return
        word, _, rest = ins.args.partition(" ")
        if word.upper() != "CMD":
            raise StepFailed("HEALTHCHECK must be NONE or CMD ...")
        test = Instruction("CMD", {}, rest.strip(), "", ins.line).exec_form() or ["/bin/sh", "-c", rest.strip()]
        self.image.healthcheck = {"test": test, **ins.flags}

    def _copy(self, ins: Instruction) -> None:
        unsupported = set(ins.flags) - {"chown", "chmod"}
        if unsupported:
            raise StepFailed(f"COPY --{sorted(unsupported)[0]} is not supported by the simulated ACR build")
        words = ins.exec_form() or shlex.split(ins.args)
        words = [substitute(w, self.scope()) for w in words]
        if len(words) < 2:
            raise StepFailed("COPY requires at least two arguments")
        *sources, dest = words
        owner = "0:0"
        if "chown" in ins.flags:
            chown = substitute(ins.flags["chown"], self.scope())
            try:
                owner = "{}:{}".format(*self.image.uid_gid(chown))
            except KeyError as missing:
                raise StepFailed(
                    f"unable to convert uid/gid chown string to host mapping: can't find uid for user "
                    f"{missing.args[0]}: no such user: {missing.args[0]}"
                ) from None
        mode = int(ins.flags["chmod"], 8) if "chmod" in ins.flags else None
        dest_path = PurePosixPath(self.image.workdir) / dest
        into_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
        if len(sources) > 1 and not dest.endswith("/"):
            raise StepFailed("When using COPY with more than one source file, the destination must end with a /")
        if _host(self.rootfs, str(dest_path)).is_dir():
            into_dir = True
        matched: list[Path] = []
        for source in sources:
            found = self._context_paths(source)
            if not found:
                raise StepFailed(
                    f"COPY failed: file not found in build context or excluded by .dockerignore: "
                    f"stat {source}: file does not exist"
                )
            matched += found
        if into_dir:
            self._mkdirs(str(dest_path), owner)
        for path in matched:
            if path.is_dir():
                self._mkdirs(str(dest_path), owner)
                for child in sorted(path.iterdir()):
                    self._copy_one(child, dest_path / child.name, owner, mode)
            else:
                target = dest_path / path.name if into_dir else dest_path
                self._mkdirs(str(target.parent), owner)
                self._copy_one(path, target, owner, mode)

    def _context_paths(self, source: str) -> list[Path]:
        """The context's paths a COPY source names (wildcards too), less what .dockerignore excludes."""
        normal = os.path.normpath(source.lstrip("/")) if source not in (".", "./", "/") else "."
        if normal.startswith(".."):
            raise StepFailed(f"COPY failed: forbidden path outside the build context: {source}")
        if normal == ".":
            return [self.context]
        hits = sorted(glob.glob(glob.escape(str(self.context)) + "/" + normal)) if glob.has_magic(normal) else []
        paths = [Path(h) for h in hits] if hits else [self.context / normal]
        return [p for p in paths if p.exists() and not _ignored(p.relative_to(self.context).as_posix(), self.ignore)]

    def _copy_one(self, source: Path, image_path: PurePosixPath, owner: str, mode: int | None) -> None:
        relative = source.relative_to(self.context).as_posix()
        if _ignored(relative, self.ignore):
            return
        target = _host(self.rootfs, str(image_path))
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
            for child in sorted(source.iterdir()):
                self._copy_one(child, image_path / child.name, owner, mode)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            shutil.copy2(source, target, follow_symlinks=False)
            if mode is not None:
                target.chmod(mode)
        self._own(str(image_path), owner)

    def _mkdirs(self, image_path: str, owner_or_user: str) -> None:
        """Create an image directory and its missing parents, owned by ``owner_or_user``."""
        owner = (
            owner_or_user
            if re.fullmatch(r"\d+:\d+", owner_or_user)
            else "{}:{}".format(*self.image.uid_gid(owner_or_user))
        )
        path = PurePosixPath(image_path)
        for directory in [*reversed(path.parents), path]:
            host = _host(self.rootfs, str(directory))
            if not host.exists():
                host.mkdir()
                self._own(str(directory), owner)
            elif not host.is_dir():
                raise StepFailed(f"mkdir {directory}: not a directory")

    def _own(self, image_path: str, owner: str) -> None:
        """Record ``owner`` for a path and all under it (what was recorded under it is replaced)."""
        prefix = image_path.rstrip("/") + "/"
        for recorded in [p for p in self.image.owners if p.startswith(prefix)]:
            del self.image.owners[recorded]
        self.image.owners[image_path] = owner

    def _run(self, ins: Instruction) -> None:
        if ins.flags:
            raise StepFailed(f"RUN --{next(iter(ins.flags))} is not supported by the simulated ACR build")
        exec_form = ins.exec_form()
        shown = json.dumps(exec_form) if exec_form else f"/bin/sh -c {ins.args}"
        failed = f"The command '{shown}' returned a non-zero code: {{}}"
        if exec_form:
            self._shell(exec_form, failed)
            return
        rest = ins.args
        while rest:
            first, sep, after = rest.partition(" && ")
            try:
                words = shlex.split(first)
            except ValueError:
                words = []
            if words[:2] in (["pip", "install"], ["pip3", "install"]):
                self._pip(words[2:], failed)
            elif words[:4] == ["python", "-m", "pip", "install"]:
                self._pip(words[4:], failed)
            elif words[:1] == ["useradd"]:
                self._useradd(words[1:], failed)
            elif words[:1] == ["groupadd"]:
                self._groupadd(words[1:], failed)
            else:
                self._shell(["/bin/sh", "-c", rest], failed)
                return
            rest = after if sep else ""

    def _process_env(self) -> dict[str, str]:
        image = self.image
        env = {
            **self.images.build_env,
            "HOME": str(_host(self.rootfs, image.home())),
            **self.args,
            **host_env(image.env, self.rootfs),
        }
        return venv_env(Path(image.venv_path), env)

    def _shell(self, command: list[str], failed: str) -> None:
        words = set(re.findall(r"[A-Za-z0-9_.+-]+", " ".join(command)))
        for tool in PACKAGE_MANAGERS:
            if tool in words:
                self.log(f"/bin/sh: 1: {tool}: not found (the simulated python image has no system package manager)")
                raise StepFailed(failed.format(127))
        for tool in USER_TOOLS:
            if tool in words:
                raise StepFailed(
                    f"{tool}: the simulated ACR build runs useradd and groupadd only at the head of a RUN's "
                    "`&&` chain (and has no chown: use COPY --chown)"
                )
        if re.search(r"\bpip3?\s+install\b|-m\s+pip\s+install\b", " ".join(command)):
            raise StepFailed("pip install: the simulated ACR build runs it only at the head of a RUN's `&&` chain")
        cwd = _host(self.rootfs, self.image.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=self._process_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=RUN_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.log(str(exc))
            raise StepFailed(failed.format(1)) from None
        self.log(done.stdout)
        if done.returncode != 0:
            raise StepFailed(failed.format(done.returncode))

    def _pip(self, words: list[str], failed: str) -> None:
        """``pip install`` from the wheelhouse into the image's venv: one cached venv per Python and requirements."""
        assert self.venvs is not None
        cwd = _host(self.rootfs, self.image.workdir)
        args: list[str] = []
        for word in words:
            flag = word.partition("=")[0]
            if flag in PIP_REFUSED:
                self.log(f"ERROR: pip {flag}: the simulated build installs from the wheelhouse into the image only")
                raise StepFailed(failed.format(2))
            if word in PIP_FLAGS_DROPPED:
                continue
            local = cwd / word
            args.append(str(local) if not word.startswith("-") and local.exists() else word)
        parts = [*self.pip_parts, *requirement_digest(args)]
        key = self.venvs.key(b"python-image", self.image.python.encode(), *parts)
        cached = (self.venvs.root / key / ".ready").is_file()
        try:
            venv = self.venvs.get(key, [*self.pip_args, *args], self.images.build_env)
        except BuildFailed as exc:
            self.log(str(exc))
            raise StepFailed(failed.format(1)) from None
        self.pip_args += args
        self.pip_parts = parts
        self.image.venv, self.image.venv_path = key, str(venv)
        listed = subprocess.run(
            [find_uv(), "pip", "list", "--python", str(venv / "bin" / "python")],
            capture_output=True,
            text=True,
            check=False,
        )
        count = max(len(listed.stdout.splitlines()) - 2, 0)
        self.log(f"{' ---> Using cache' if cached else 'Installed from the wheelhouse'}: {count} packages in the image")

    def _useradd(self, words: list[str], failed: str) -> None:
        """``useradd``: the user (and its group) recorded in the image; its home made with ``-m``."""
        options = {
            "-u": "--uid",
            "-g": "--gid",
            "-d": "--home-dir",
            "-s": "--shell",
            "-c": "--comment",
            "-G": "--groups",
        }
        values: dict[str, str] = {}
        switches: set[str] = set()
        names: list[str] = []
        it = iter(words)
        for word in it:
            flag, eq, inline = word.partition("=")
            flag = options.get(flag, flag)
            if flag in options.values():
                values[flag] = inline if eq else next(it, "")
            elif word.startswith("-"):
                switches.add({"-m": "--create-home", "-r": "--system", "-M": "--no-create-home"}.get(word, word))
            else:
                names.append(word)
        image = self.image
        if len(names) != 1:
            self.log("Usage: useradd [options] LOGIN")
            raise StepFailed(failed.format(2))
        name = names[0]
        if name in image.users:
            self.log(f"useradd: user '{name}' already exists")
            raise StepFailed(failed.format(9))
        taken = {int(u[0]) for u in image.users.values()}
        if "--uid" in values:
            uid = int(values["--uid"])
            if uid in taken:
                self.log(f"useradd: UID {uid} is not unique")
                raise StepFailed(failed.format(4))
        else:
            system = "--system" in switches
            uid = max([u for u in taken if (u < 1000 if system else 1000 <= u < 60000)] or [100 if system else 999]) + 1
        if "--gid" in values:
            group = values["--gid"]
            gid = int(group) if group.isdigit() else image.groups.get(group, -1)
            if gid < 0:
                self.log(f"useradd: group '{group}' does not exist")
                raise StepFailed(failed.format(6))
        else:
            gid = uid if uid not in image.groups.values() else max(image.groups.values()) + 1
            image.groups[name] = gid
        home = values.get("--home-dir", f"/home/{name}")
        image.users[name] = [uid, gid, home]
        if "--create-home" in switches and "--no-create-home" not in switches:
            self._mkdirs(str(PurePosixPath(home).parent), "0:0")
            _host(self.rootfs, home).mkdir(exist_ok=True)
            self._own(home, f"{uid}:{gid}")

    def _groupadd(self, words: list[str], failed: str) -> None:
        names = [w for w in words if not w.startswith("-")]
        gid_flag = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-g", "--gid")), None)
        names = [n for n in names if n != gid_flag]
        if len(names) != 1:
            self.log("Usage: groupadd [options] GROUP")
            raise StepFailed(failed.format(2))
        if names[0] in self.image.groups:
            self.log(f"groupadd: group '{names[0]}' already exists")
            raise StepFailed(failed.format(9))
        gid = int(gid_flag) if gid_flag else max(g for g in self.image.groups.values() if g < 60000) + 1
        self.image.groups[names[0]] = max(gid, 1000) if not gid_flag else gid


def find_uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


class Images:
    """Every registry's images by digest, and the tags naming them: ``<server>/<repository>:<tag>``.

    An image is ``<root>/<digest>/``: ``rootfs/`` and ``config.json``. ``venvs`` (the runtime's, by default)
    stand for the base images' Pythons; ``build_env`` is what a build's RUN sees of the machine (pip's index)."""

    def __init__(self, root: Path, venvs: Venvs | None = None, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.tags: dict[str, str] = {}
        self.venvs = venvs
        self.build_env: dict[str, str] = {k: v for k, v in (env or {}).items() if k.startswith("PIP_")}
        self._other_pythons: dict[str, Venvs] = {}
        self._guard = threading.Lock()

    def python(self, version: str) -> str | None:
        """An interpreter of Python ``version`` on this machine; None when there is none."""
        if self.venvs is None:
            return None
        if version == "{}.{}".format(*sys.version_info[:2]):
            return self.venvs.python
        found = shutil.which(f"python{version}")
        if found is None:
            return None
        check = subprocess.run(
            [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        return found if check.returncode == 0 and check.stdout.strip() == version else None

    def venvs_for(self, version: str, python: str) -> Venvs:
        assert self.venvs is not None
        if python == self.venvs.python:
            return self.venvs
        with self._guard:
            if version not in self._other_pythons:
                root = self.venvs.root.with_name(f"{self.venvs.root.name}-py{version}")
                self._other_pythons[version] = Venvs(root, self.venvs.wheelhouse, python)
            return self._other_pythons[version]

    def build(
        self,
        images: list[str],
        tarball: Path,
        dockerfile: str = "Dockerfile",
        build_args: Mapping[str, str] | None = None,
        push: bool = True,
    ) -> tuple[str, str]:
        """Build a gzipped context's Dockerfile and tag the image ``images``: (its digest, the build's log).
        A failed step stops the build: ImageBuildError, with the log up to and with that step."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        build = _Build(self, staging / "context", staging / "rootfs", build_args or {})
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                tar.extractall(build.context, filter="data")
            build.rootfs.mkdir()
            build.ignore = _ignore_patterns(build.context)
            size = sum(p.stat().st_size for p in build.context.rglob("*") if p.is_file())
            build.log(f"Sending build context to Docker daemon  {size / 1e6:.2f}MB")
            path = (build.context / dockerfile).resolve()
            if not path.is_relative_to(build.context.resolve()) or not path.is_file():
                raise StepFailed(
                    f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                    f"lstat {dockerfile}: no such file or directory"
                )
            try:
                parsed = Dockerfile(path.read_text())
            except DockerfileError as exc:
                raise StepFailed(str(exc)) from None
            config = build.run(parsed)
            config.rootfs = _tree_digest(build.rootfs)
            digest = config.digest()
            build.log(f"Successfully built {digest.split(':')[1][:12]}")
            target = self.root / digest.split(":")[1]
            (staging / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
            shutil.rmtree(build.context)
            if not target.is_dir():
                try:
                    staging.rename(target)
                except OSError:  # the same image, built at the same time
                    if not target.is_dir():
                        raise
        except StepFailed as exc:
            build.log(str(exc))
            raise ImageBuildError(str(exc), "\n".join(build.lines) + "\n") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if push:
            for image in images:
                self.tags[image] = digest
                build.log(f"Successfully tagged {image}")
        return digest, "\n".join(build.lines) + "\n"

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

    @staticmethod
    def config(image_dir: Path) -> ImageConfig:
        return ImageConfig(**json.loads((image_dir / "config.json").read_text()))


@dataclass
class Container:
    """One running container: its process, the loopback port it serves on, its root (``fs``, the image's
    root copied) and the user it runs as."""

    image: str
    port: int
    process: subprocess.Popen[bytes]
    root: Path
    fs: Path | None = None
    config: ImageConfig | None = None
    snapshot: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.config.user if self.config else "root"

    def stop(self) -> None:
        """As a container runtime stops it: SIGTERM, then SIGKILL if it hangs (the kit's own supervisor's way)."""
        _stop(self.process)

    def ready(self, path: str = "/ready") -> bool:
        if self.process.poll() is not None:
            return False
        try:
            # The kubelet's probe goes straight to the pod: never through a proxy. urlopen's global opener keeps
            # the proxy variables of its first call, which a test's simazure_env may have set then.
            with _DIRECT.open(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def denied_writes(self) -> list[str]:
        """The image paths written since the start that the container's USER could not have written (a new
        entry in a directory it does not own, a changed file it does not own): the writes docker would refuse
        with "Permission denied". The simulator runs as one OS user, so it reports them instead of refusing."""
        if self.fs is None or self.config is None:
            return []
        denied = []
        for path in _entries(self.fs):
            image_path = "/" + path.relative_to(self.fs).as_posix()
            before = self.snapshot.get(image_path)
            if before is None:
                if not self.config.writable(str(PurePosixPath(image_path).parent)):
                    denied.append(image_path)
            elif path.is_file() and _stamp(path) != before and not self.config.writable(image_path):
                denied.append(image_path)
        return sorted(denied)


def _entries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_symlink() or p.exists()]


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


class Runtime:
    """Starts containers from built images: the image's venv, files, ENV, WORKDIR, USER and CMD."""

    def __init__(self, images: Images, venvs: Venvs, root: Path, machine_env: dict[str, str]) -> None:
        self.images = images
        self.venvs = venvs
        self.root = root
        self.machine_env = machine_env
        # The images' base Pythons are this runtime's venvs, and builds see pip's index as jobs do.
        if images.venvs is None:
            images.venvs = venvs
        if not images.build_env:
            images.build_env = {k: v for k, v in machine_env.items() if k.startswith("PIP_")}

    def start(self, image: str, env: dict[str, str]) -> Container:
        """Pull the image and start its CMD, in a copy of its root, on a free loopback port."""
        source = self.images.pull(image)
        config = self.images.config(source)
        venv = Path(config.venv_path)
        if not (venv / ".ready").is_file():
            raise ImageError(f"image {image}: its Python ({venv}) is gone")
        root = self.root / f"c-{uuid.uuid4().hex[:10]}"
        fs = root / "fs"
        shutil.copytree(source / "rootfs", fs, symlinks=True)
        snapshot = {"/" + p.relative_to(fs).as_posix(): _stamp(p) for p in _entries(fs)}
        port = free_port()
        # Absolute paths of the image (its home, say) live under the container's own root here.
        machine = {
            **self.machine_env,
            "HOME": str(_host(fs, config.home())),
            **host_env(config.env, fs),
            **env,
            # A container is on the cloud's network and has its identity endpoint, as a pod or container group has.
            "PORT": str(port),
            "DIABETES_MLOPS_HOST": "127.0.0.1",
        }
        full = venv_env(venv, machine)
        command = list(config.cmd)
        if command and "/" not in command[0]:
            command[0] = shutil.which(command[0], path=full["PATH"]) or command[0]
        cwd = _host(fs, config.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        process = start_process(command, cwd, full, root / "container.log")
        return Container(image, port, process, root, fs, config, snapshot)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
