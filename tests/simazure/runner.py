"""What the simulated Azure executes: virtual environments built from requirements, and processes in them.

A venv stands for an environment image. It is built from what the job's environment or the container
image says (Python version, pip requirements, the job's own ``pip install`` step) and nothing else: no
system site-packages, no ``PYTHONPATH`` from the caller, so a missing dependency fails as it would on Azure.
Venvs are cached by the hash of what went into them, for the life of the state directory. uv builds them
(pip's resolution, from the wheelhouse that stands for PyPI, in seconds instead of minutes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from uv import find_uv_bin

# What every process inherits from the machine: the package index settings stand for PyPI.
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "TMPDIR")
BUILD_TIMEOUT_SECONDS = 900


class BuildFailed(Exception):
    """A venv could not be built; the message is pip's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A clean process environment: the machine's locale and package index, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH or k.startswith("PIP_")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


class Venvs:
    """Venvs under ``root``, one per key; a key is built once even when asked for from several threads."""

    def __init__(self, root: Path, wheelhouse: Path, python: str = sys.executable) -> None:
        self.root = root
        self.wheelhouse = wheelhouse
        self.python = python
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.builds = 0

    @property
    def offline(self) -> list[str]:
        return ["--no-index", "--find-links", str(self.wheelhouse)]

    @staticmethod
    def key(*parts: bytes) -> str:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()[:20]

    def python_version(self) -> str:
        return "{}.{}".format(*sys.version_info[:2])

    def get(self, key: str, pip_args: list[str], env: Mapping[str, str]) -> Path:
        """The venv ``key``: made and ``pip install``-ed with ``pip_args`` (if any) the first time."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        venv = self.root / key
        with lock:
            if (venv / ".ready").is_file():
                return venv
            uv = find_uv_bin()
            build_env = base_env(env)
            # The standard library's venv seeds pip offline (ensurepip), as an image's Python has it.
            subprocess.run([self.python, "-m", "venv", "--clear", str(venv)], check=True, env=build_env)
            if pip_args:
                done = subprocess.run(
                    [
                        uv,
                        "pip",
                        "install",
                        "--quiet",
                        "--python",
                        str(venv / "bin" / "python"),
                        *self.offline,
                        *pip_args,
                    ],
                    env=build_env,
                    capture_output=True,
                    text=True,
                    timeout=BUILD_TIMEOUT_SECONDS,
                    check=False,
                )
                if done.returncode != 0:
                    raise BuildFailed(done.stderr.strip()[-3000:])
            (venv / ".ready").write_text(json.dumps(pip_args))
            self.builds += 1
            return venv


def venv_env(venv: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process running inside ``venv``."""
    env = base_env(extra)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def leading_pip_install(command: str) -> tuple[list[str] | None, str]:
    """Split ``pip install ARGS && REST`` into (ARGS, REST); (None, command) when it does not start so."""
    first, sep, rest = command.partition(" && ")
    words = shlex.split(first)
    if sep and words[:2] == ["pip", "install"]:
        return [w for w in words[2:] if w not in ("--quiet", "-q")], rest
    return None, command


def requirement_digest(args: list[str]) -> list[bytes]:
    """What a pip install depends on: its arguments, a local file by its content and extras (not its path)."""
    parts = []
    for arg in args:
        path, bracket, extras = arg.partition("[")
        if Path(path).is_file():
            parts += [Path(path).read_bytes(), (bracket + extras).encode()]
        else:
            parts.append(arg.encode())
    return parts


# The instructions the simulated ACR build executes; the other Dockerfile instructions it refuses by name.
SUPPORTED = ("FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "EXPOSE", "CMD", "HEALTHCHECK", "LABEL")
NOT_SIMULATED = ("ADD", "ENTRYPOINT", "VOLUME", "SHELL", "ONBUILD", "STOPSIGNAL", "MAINTAINER")
_VARIABLE = re.compile(
    r"\\\$|\$(?:\{(?P<braced>[A-Za-z_]\w*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))", re.ASCII
)


class DockerfileError(Exception):
    """The Dockerfile cannot be parsed, or uses what the simulator does not execute."""


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, its ``--flag=value`` options, the rest, and the text a build log shows."""

    keyword: str
    flags: dict[str, str]
    args: str
    text: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form of the arguments (``CMD ["python", ...]``); None for the shell form."""
        if not self.args.startswith("["):
            return None
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return [str(v) for v in value] if isinstance(value, list) else None


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Docker's variable substitution: ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME:+word}``, ``\\$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group("braced") or match.group("bare")
        value = values.get(name, "")
        if match.group("op") == "-":
            return value or match.group("word")
        if match.group("op") == "+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(one, text)


def env_pairs(args: str) -> list[tuple[str, str]]:
    """``ENV``/``LABEL``/``ARG`` arguments: ``a=1 b="two words"``, or the legacy ``ENV name value with spaces``."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        name, _, value = args.strip().partition(" ")
        return [(name, value.strip())]
    return [(name, value) for name, _, value in (w.partition("=") for w in words)]


class Dockerfile:
    """A Dockerfile parsed as docker's parser does: comments and line continuations, instructions with their
    flags. ``env`` and ``cmd`` are the final ENV (unsubstituted) and CMD (exec form)."""

    def __init__(self, text: str) -> None:
        self.instructions: list[Instruction] = []
        logical = ""
        start = 0
        for number, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if stripped.startswith("#") or (not stripped and not logical):
                continue  # comments (parser directives too) and blank lines, also inside a continuation
            if not logical:
                start = number
            if stripped.endswith("\\"):
                logical += stripped[:-1].strip() + " "
                continue
            logical += stripped
            self._add(logical.strip(), start)
            logical = ""
        if logical.strip():
            self._add(logical.strip(), start)
        self.env: dict[str, str] = {}
        self.cmd: list[str] = []
        for ins in self.instructions:
            if ins.keyword == "ENV":
                self.env.update(env_pairs(ins.args))
            elif ins.keyword == "CMD":
                self.cmd = ins.exec_form() or ["/bin/sh", "-c", ins.args]

    def _add(self, logical: str, line: int) -> None:
        word, _, rest = logical.partition(" ")
        keyword = word.upper()
        if keyword in NOT_SIMULATED:
            raise DockerfileError(f"dockerfile line {line}: {keyword} is not supported by the simulated ACR build")
        if keyword not in SUPPORTED:
            raise DockerfileError(f"dockerfile parse error line {line}: unknown instruction: {word}")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        self.instructions.append(Instruction(keyword, flags, rest, f"{keyword} {logical[len(word) :].strip()}", line))


def start_process(args: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a detached process logging to ``log``."""
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(
            args, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()
