"""Azure's published OpenAPI (Swagger 2.0) specs as a check on what the simulator is asked and answers.

``Specs`` reads the files vendored under ``tests/simazure/specs`` (see its SOURCE.md) and tells, for one
exchange, what in it does not match the operation's schema: an unknown operation for a provider and api-version
it has a spec of, a required query parameter missing, a request or answer body that does not fit, a status the
operation does not document. Exchanges it has no spec of (other providers, other api-versions, Entra, ARM's
metadata document, ACR's token endpoints, Kubernetes) are not covered: ``covers`` says False and ``check`` has
no problems with them.

Swagger 2.0 is not JSON Schema. Each body schema is translated, on first use, into one self-contained draft 7
schema and compiled once (jsonschema): ``$ref`` across files resolved; ``x-nullable`` as a null type;
``discriminator`` dispatched to the subtype whose ``x-ms-discriminator-value`` (or definition name) the value
names; ``readOnly`` properties not required in requests (SDKs send what they read back, so they are allowed
there too); ``x-ms-secret`` properties not required in answers (Azure never returns them); ``format`` not
checked; Swagger's boolean ``exclusiveMinimum``/``exclusiveMaximum`` as draft 7's numbers. Extra properties are
allowed unless a schema says ``additionalProperties: false``, as Azure means it. Enums are strict, even those
``x-ms-enum`` models as extensible strings: the simulator should answer only documented values.
"""

from __future__ import annotations

import json
import posixpath
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jsonschema import Draft7Validator  # type: ignore[import-untyped]

SPECS_DIR = Path(__file__).parent / "specs"
API_VERSION = "api-version"
PROVIDER = re.compile(r"/providers/([^/]+)", re.IGNORECASE)
# The version folder of a resource-manager spec path: .../<Provider>[/<group>]/(stable|preview)/<version>/<file>.
RM_FILE = re.compile(r"resource-manager/(?P<provider>[^/]+)/(?:[^/]+/)?(?:stable|preview)/(?P<version>[^/]+)/[^/]+$")
PARAM = re.compile(r"\{([^}]+)\}")
SCHEMA_KEYWORDS = (
    "type",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
)
Json = Any


@dataclass(frozen=True)
class DataPlane:
    """A data-plane API, found by its path prefix (it has no ``/providers/`` segment to go by)."""

    prefix: str
    file: str
    needs_api_version: bool  # the SDK always sends one: without it, it is some other client (docker, say)


ACR_DATA_PLANE = (
    "specification/containerregistry/data-plane/Azure.ContainerRegistry/stable/2021-07-01/containerregistry.json"
)
RUN_HISTORY = (
    "specification/machinelearningservices/data-plane/Microsoft.MachineLearningServices/preview/2019-09-30/"
    "runHistory.json"
)
KEY_VAULT_SECRETS = "specification/keyvault/data-plane/Secrets/stable/2026-04-01/secrets.json"
# ACR's /oauth2/exchange and /oauth2/token are in its data-plane spec but take form bodies: left uncovered.
DATA_PLANES = (
    DataPlane("/acr/v1/", ACR_DATA_PLANE, needs_api_version=True),
    DataPlane("/v2/", ACR_DATA_PLANE, needs_api_version=True),
    DataPlane("/history/v1.0/", RUN_HISTORY, needs_api_version=False),
    DataPlane("/secrets/", KEY_VAULT_SECRETS, needs_api_version=True),
)


@dataclass
class Operation:
    """One operation of a spec file: its path template, parameters and responses, as the file has them."""

    method: str
    template: str
    file: str
    spec: dict[str, Any]
    parameters: list[dict[str, Any]]
    validators: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    @property
    def responses(self) -> dict[str, Any]:
        return dict(self.spec.get("responses", {}))

    @cached_property
    def body_parameter(self) -> dict[str, Any] | None:
        return next((p for p in self.parameters if p.get("in") == "body"), None)


@dataclass
class _Template:
    regex: re.Pattern[str]
    fixed: int  # fixed segments: the more, the more specific the match
    path: str
    file: str
    item: dict[str, Any]


class _Docs:
    """The vendored files, parsed on first use, with ``$ref`` resolution relative to the file that has it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._docs: dict[str, dict[str, Any]] = {}
        self._subtypes: dict[str, dict[str, str]] = {}  # base definition ref -> discriminator value -> subtype ref
        self._scanned: set[str] = set()

    def doc(self, file: str) -> dict[str, Any]:
        if file not in self._docs:
            self._docs[file] = json.loads((self.root / file).read_text(encoding="utf-8"))
        return self._docs[file]

    def resolve(self, file: str, ref: str) -> tuple[str, str, Json]:
        """The (file, pointer, node) a ``$ref`` in ``file`` points at."""
        target, _, pointer = ref.partition("#")
        target_file = posixpath.normpath(posixpath.join(posixpath.dirname(file), target)) if target else file
        node: Json = self.doc(target_file)
        for part in pointer.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return target_file, pointer, node

    def deref(self, file: str, node: Json) -> tuple[str, Json]:
        """Follow ``$ref`` until a node that is not one (parameters and responses may be refs)."""
        while isinstance(node, dict) and "$ref" in node:
            file, _, node = self.resolve(file, node["$ref"])
        return file, node

    def subtypes(self, file: str, pointer: str) -> dict[str, str]:
        """Discriminator value -> subtype of the definition at ``file#pointer``, descendants included."""
        self._scan_closure(file)
        found: dict[str, str] = {}
        todo = [f"{file}#{pointer}"]
        while todo:
            for value, child in self._subtypes.get(todo.pop(), {}).items():
                if value not in found:
                    found[value] = child
                    todo.append(child)
        return found

    def _scan_closure(self, file: str) -> None:
        """Index ``allOf`` parents of every definition of ``file`` and the files it refers to."""
        todo = [file]
        while todo:
            current = todo.pop()
            if current in self._scanned:
                continue
            self._scanned.add(current)
            for name, definition in self.doc(current).get("definitions", {}).items():
                value = str(definition.get("x-ms-discriminator-value", name))
                for parent in definition.get("allOf", []):
                    if isinstance(parent, dict) and "$ref" in parent:
                        parent_file, pointer, _ = self.resolve(current, parent["$ref"])
                        key = f"{parent_file}#{pointer}"
                        self._subtypes.setdefault(key, {})[value] = f"{current}#/definitions/{name}"
            todo.extend(self._referenced_files(current))

    def _referenced_files(self, file: str) -> set[str]:
        found: set[str] = set()

        def walk(node: Json) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "x-ms-examples":
                        continue  # example files are not vendored
                    if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                        target = value.partition("#")[0]
                        found.add(posixpath.normpath(posixpath.join(posixpath.dirname(file), target)))
                    else:
                        walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.doc(file))
        return found


class _Translator:
    """Turns one Swagger schema, and all it refers to, into a self-contained draft 7 schema."""

    def __init__(self, docs: _Docs, direction: str) -> None:
        self.docs = docs
        self.request = direction == "request"
        self.definitions: dict[str, Json] = {}
        self._names: dict[str, str] = {}

    def root(self, file: str, schema: Json) -> dict[str, Any]:
        translated = self.schema(file, schema)
        return {**translated, "definitions": self.definitions}

    def schema(self, file: str, node: Json, part: bool = False) -> Json:
        """``part``: the schema as an ``allOf`` member: no dispatch on its discriminator, not closed."""
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            return {"$ref": "#/definitions/" + self._definition(file, node["$ref"], "part" if part else "ref")}
        out: dict[str, Any] = {k: node[k] for k in SCHEMA_KEYWORDS if k in node}
        if out.get("type") == "file":
            del out["type"]
        if "pattern" in node and _compiles(node["pattern"]):
            out["pattern"] = node["pattern"]
        for bound in ("Minimum", "Maximum"):
            if node.get(f"exclusive{bound}") is True and bound.lower() in node:
                out[f"exclusive{bound}"] = out.pop(bound.lower())
        if node.get("x-nullable") is True:
            if "type" in out:
                out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        if "items" in node:
            out["items"] = self.schema(file, node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self.schema(file, node["additionalProperties"])
        properties = node.get("properties") or {}
        if properties:
            out["properties"] = {name: self.schema(file, prop) for name, prop in properties.items()}
        required = [name for name in node.get("required", []) if self._required(file, properties.get(name))]
        if required:
            out["required"] = required
        if "allOf" in node:
            out["allOf"] = [self.schema(file, member, part=True) for member in node["allOf"]]
        if not part and self._closed(file, node):
            # Swagger closes the composed type: the names its allOf parents bring are allowed too (JSON Schema's
            # additionalProperties sees only the properties beside it, so they are listed here, unconstrained).
            inherited: dict[str, Any] = {n: {} for n in self._names_of(file, node) if n not in properties}
            out["properties"] = {**out.get("properties", {}), **inherited}
            out["additionalProperties"] = False
        return out

    def _closed(self, file: str, node: Json) -> bool:
        """``additionalProperties: false`` on the schema or on one of its ``allOf`` parents."""
        file, node = self.docs.deref(file, node)
        if not isinstance(node, dict):
            return False
        return node.get("additionalProperties") is False or any(self._closed(file, m) for m in node.get("allOf", []))

    def _names_of(self, file: str, node: Json) -> set[str]:
        """The property names of a schema and its ``allOf`` parents."""
        file, node = self.docs.deref(file, node)
        if not isinstance(node, dict):
            return set()
        names = set(node.get("properties") or {})
        for member in node.get("allOf", []):
            names |= self._names_of(file, member)
        return names

    def _required(self, file: str, prop: Json) -> bool:
        """Whether a property listed in ``required`` must be there, in this direction."""
        if not isinstance(prop, dict):
            return True
        _, target = self.docs.deref(file, prop)
        marks = {**target, **prop} if isinstance(target, dict) else prop
        if self.request:
            return not marks.get("readOnly", False)
        return not marks.get("x-ms-secret", False)

    def _definition(self, file: str, ref: str, mode: str) -> str:
        """The name in ``definitions`` of the translated target of ``ref``, translating it the first time.

        ``mode``: "ref" as a ``$ref`` means it (dispatching on a discriminator), "whole" the schema itself without
        dispatch, "part" the schema as an ``allOf`` member (see ``schema``).
        """
        target_file, pointer, node = self.docs.resolve(file, ref)
        if mode == "ref":
            mode = "dispatch" if isinstance(node, dict) and "discriminator" in node else "whole"
        key = f"{target_file}#{pointer}|{mode}"
        if key in self._names:
            return self._names[key]
        name = self._name(pointer.rsplit("/", 1)[-1] + ("" if mode == "whole" else f".{mode}"))
        self._names[key] = name
        self.definitions[name] = {}  # a placeholder: recursive schemas refer to the name before it is filled
        if mode == "dispatch":
            self.definitions[name] = self._dispatch(target_file, pointer, node)
        else:
            self.definitions[name] = self.schema(target_file, node, part=mode == "part")
        return name

    def _dispatch(self, file: str, pointer: str, node: dict[str, Any]) -> Json:
        """Validate as the subtype the discriminator names; as the base itself when it names none."""
        prop = node["discriminator"]
        chain: Json = {"$ref": "#/definitions/" + self._definition(file, f"#{pointer}", "whole")}
        for value, child in sorted(self.docs.subtypes(file, pointer).items(), reverse=True):
            child_file, _, child_pointer = child.partition("#")
            then = {"$ref": "#/definitions/" + self._definition(child_file, f"#{child_pointer}", "ref")}
            chain = {"if": {"properties": {prop: {"const": value}}, "required": [prop]}, "then": then, "else": chain}
        return chain

    def _name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.definitions:
            n += 1
            name = f"{wanted}.{n}"
        return name


def _compiles(pattern: str) -> bool:
    """Some spec patterns use regex syntax Python lacks: those are not checked rather than failing."""
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _json(body: Json) -> tuple[Json, bool]:
    """The body as JSON, and whether there is one (None, b"" and "" are no body)."""
    if body is None or body in (b"", ""):
        return None, False
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body), True
        except ValueError:
            return body, True
    return body, True


def _where(path: Iterable[Any]) -> str:
    """A JSON path as people write it: ``properties.containers[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Specs:
    """The vendored specs: which exchanges they cover, and what of an exchange does not match them."""

    _default: Specs | None = None
    _default_lock = threading.Lock()

    def __init__(self, root: Path = SPECS_DIR) -> None:
        self.root = root
        self._docs = _Docs(root)
        self._lock = threading.RLock()
        self._arm_files: dict[tuple[str, str], list[str]] | None = None
        self._templates: dict[str, list[_Template]] = {}  # spec file -> its path templates
        self._operations: dict[tuple[str, str, str], Operation] = {}

    @classmethod
    def default(cls) -> Specs:
        """One instance per process, so files are parsed and schemas compiled once."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    # --- which files cover a URL --------------------------------------------------------------------

    def _arm_index(self) -> dict[tuple[str, str], list[str]]:
        """(provider lowercased, api-version) -> the resource-manager files of that version, by their path."""
        if self._arm_files is None:
            index: dict[tuple[str, str], list[str]] = {}
            for path in sorted((self.root / "specification").rglob("*.json")):
                relative = path.relative_to(self.root).as_posix()
                found = RM_FILE.search(relative)
                if found:
                    index.setdefault((found["provider"].lower(), found["version"]), []).append(relative)
            self._arm_files = index
        return self._arm_files

    def files(self, url: str) -> list[str]:
        """The spec files that cover ``url``'s path and api-version; empty when none does."""
        split = urlsplit(url)
        path, version = split.path, parse_qs(split.query).get(API_VERSION, [None])[0]
        for plane in DATA_PLANES:
            if path.lower().startswith(plane.prefix):
                spec_version = self._docs.doc(plane.file).get("info", {}).get("version")
                if version == spec_version or (version is None and not plane.needs_api_version):
                    return [plane.file]
                return []
        providers = PROVIDER.findall(path)
        if not providers or version is None:
            return []
        with self._lock:
            return list(self._arm_index().get((providers[-1].lower(), version), []))

    def covers(self, method: str, url: str) -> bool:
        """Whether a vendored spec is about this provider (or data plane) at this api-version."""
        return bool(self.files(url))

    # --- finding the operation ----------------------------------------------------------------------

    def _file_templates(self, file: str) -> list[_Template]:
        if file not in self._templates:
            out = []
            for template, item in self._docs.doc(file).get("paths", {}).items():
                regex, fixed = self._compile_template(file, template, item)
                out.append(_Template(regex, fixed, template, file, item))
            self._templates[file] = out
        return self._templates[file]

    def _compile_template(self, file: str, template: str, item: dict[str, Any]) -> tuple[re.Pattern[str], int]:
        """A path template as a regex: fixed text case-insensitive (ARM's is), parameters one segment each."""
        spans = {p["name"] for p in self._path_parameters(file, item) if p.get("x-ms-skip-url-encoding")}
        # A data-plane SDK fills an optional last segment with "" (Key Vault's ``/secrets/{name}/`` is the
        # current version of GetSecret's ``/secrets/{secret-name}/{secret-version}``).
        empty_last = file in {plane.file for plane in DATA_PLANES}
        parts, last = [], 0
        for match in PARAM.finditer(template):
            parts.append(re.escape(template[last : match.start()]))
            if match[1] in spans:
                parts.append(f"(?P<p{len(parts)}>.+?)")
            elif empty_last and match.end() == len(template):
                parts.append(f"(?P<p{len(parts)}>[^/]*)")
            else:
                parts.append(f"(?P<p{len(parts)}>[^/]+)")
            last = match.end()
        parts.append(re.escape(template[last:]))
        fixed = len([s for s in template.split("/") if s and "{" not in s])
        return re.compile("".join(parts) + "/?", re.IGNORECASE), fixed

    def _path_parameters(self, file: str, item: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for op in [item, *(v for k, v in item.items() if k in ("get", "put", "post", "patch", "delete", "head"))]:
            for param in op.get("parameters", []):
                _, resolved = self._docs.deref(file, param)
                if resolved.get("in") == "path":
                    found.append(resolved)
        return found

    def operation(self, method: str, url: str) -> Operation | None:
        """The operation the request is for, by its path template and method; None when no spec has it."""
        method = method.lower()
        path = unquote(urlsplit(url).path)
        with self._lock:
            matches = [t for f in self.files(url) for t in self._file_templates(f) if t.regex.fullmatch(path)]
            matches = [t for t in matches if method in t.item]
            if not matches:
                return None
            best = max(matches, key=lambda t: t.fixed)
            key = (best.file, best.path, method)
            if key not in self._operations:
                self._operations[key] = self._make_operation(method, best)
            return self._operations[key]

    def _make_operation(self, method: str, template: _Template) -> Operation:
        params: dict[tuple[str, str], dict[str, Any]] = {}
        for param in [*template.item.get("parameters", []), *template.item[method].get("parameters", [])]:
            file, resolved = self._docs.deref(template.file, param)
            # "_file": the file the parameter is defined in, which its schema's refs are relative to.
            params[(resolved.get("name", ""), resolved.get("in", ""))] = {**resolved, "_file": file}
        return Operation(method, template.path, template.file, template.item[method], list(params.values()))

    # --- checking an exchange -----------------------------------------------------------------------

    def validator(self, operation: Operation, part: str) -> Any | None:
        """The compiled validator of the request body (``part`` "request") or of an answer's status."""
        with self._lock:
            if part not in operation.validators:
                operation.validators[part] = self._compile(operation, part)
            return operation.validators[part]

    def _compile(self, operation: Operation, part: str) -> Any | None:
        if part == "request":
            param = operation.body_parameter
            if param is None or "schema" not in param:
                return None
            file, schema, direction = param["_file"], param["schema"], "request"
        else:
            file, response = self._docs.deref(operation.file, operation.responses[part])
            if "schema" not in response:
                return None
            schema, direction = response["schema"], "response"
        return Draft7Validator(_Translator(self._docs, direction).root(file, schema))

    def check(self, method: str, url: str, request_body: Json, status: int, response_body: Json) -> list[str]:
        """What of this exchange does not match its operation's spec; [] when it does or no spec covers it."""
        if not self.covers(method, url):
            return []
        where = f"{method.upper()} {urlsplit(url).path}"
        operation = self.operation(method, url)
        if operation is None:
            version = parse_qs(urlsplit(url).query).get(API_VERSION, ["none"])[0]
            names = ", ".join(posixpath.basename(f) for f in self.files(url))
            return [f"{where}: no operation {method.upper()} on this path in the api-version {version} spec ({names})"]
        where = f"{where} ({operation.operation_id})"
        problems = self._check_request(operation, url, request_body)
        problems += self._check_response(operation, status, response_body)
        return [f"{where}: {p}" for p in problems]

    def _check_request(self, operation: Operation, url: str, body: Json) -> list[str]:
        problems = []
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        for param in operation.parameters:
            if param.get("in") == "query" and param.get("required") and param["name"] not in query:
                problems.append(f"required query parameter {param['name']!r} missing")
        data, present = _json(body)
        body_param = operation.body_parameter
        if body_param is not None and body_param.get("required") and not present:
            problems.append(f"required body ({body_param.get('name', 'body')}) missing")
        validator = self.validator(operation, "request")
        if present and validator is not None:
            problems += [f"request body {m}" for m in _errors(validator, data)]
        return problems

    def _check_response(self, operation: Operation, status: int, body: Json) -> list[str]:
        responses = operation.responses
        code = str(status)
        if code not in responses:
            # A success the spec does not list is an error to Azure's SDKs even where there is a "default"
            # (which, in Azure's specs, is the error answer): only failures fall back to "default".
            if status >= 400 and "default" in responses:
                code = "default"
            else:
                return [f"status {status} is not one of the documented {sorted(responses)}"]
        validator = self.validator(operation, code)
        data, present = _json(body)
        if validator is None:
            return []
        if not present:
            return [f"answer {status} has no body; the spec gives it one"]
        return [f"answer {status} body {m}" for m in _errors(validator, data)]


def _errors(validator: Any, data: Json) -> list[str]:
    """Each place the instance fails its schema, deepest first within a place, as ``at <path>: <message>``."""
    out = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        out.append(f"at {_where(error.absolute_path)}: {error.message}")
    return out
