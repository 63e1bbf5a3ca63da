"""Mutation testing: apply one AST mutant at a time to a module and see whether the given tests catch it.

    python scripts/mutation.py MODULE.py [MODULE.py ...] -- PYTEST_ARGS...

Mutants: comparisons flipped and moved across their boundary (``<`` to ``>=`` and to ``<=``), ``and``/``or``
swapped, ``not`` dropped, booleans flipped, numbers changed, identifier-like strings (keys, aliases, file
names) changed, ``+``/``-`` and ``*``/``/`` swapped, ``raise``, ``continue``/``break`` and call statements
deleted. Left alone, as the score does not count them: docstrings, f-strings and the arguments of
exception constructors (message wording), calls on ``progress`` or ``logger`` (log wording), calls whose
name holds ``fsync`` (durability the tests cannot observe), annotations and ``if TYPE_CHECKING:`` blocks.

The mutants run in a copy of the repository (the working tree is never changed), with PYTHONPATH on the
copy so that the subprocesses the tests start import the mutant too. A mutant is caught when pytest fails
or runs past the timeout. ``--rerun LOG`` runs again only the mutants that survived in LOG (an earlier
run's output), to see which of them new tests catch. Slow: not run in CI.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A pytest plugin for the copy: hypothesis does not shrink a failing example, as only pass or fail counts here.
PLUGIN = """from hypothesis import Phase, settings

settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("mutation")
"""
FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}
IDENTIFIER = re.compile(r"^[A-Za-z_.][\w.\-]{0,39}$")
QUIET_CALLS = re.compile(r"fsync|^progress\.|^logger\.|^log\.|Error$")
Slot = tuple[ast.AST, ast.AST, str, int | None]  # a node, its parent, the parent's field, the index in it


def _slots(node: ast.AST, *, quiet: bool = False) -> Iterator[tuple[Slot, bool]]:
    """Every node that may be mutated, where it sits, and whether it lies in a message or log call."""
    for name, value in ast.iter_fields(node):
        if name in ("annotation", "returns") or isinstance(node, ast.JoinedStr):
            continue
        items = value if isinstance(value, list) else [value]
        for index, child in enumerate(items):
            if not isinstance(child, ast.AST):
                continue
            if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                continue
            inner = quiet or (isinstance(child, ast.Call) and bool(QUIET_CALLS.search(ast.unparse(child.func))))
            inner = inner or isinstance(child, ast.Raise)
            yield (child, node, name, index if isinstance(value, list) else None), inner
            yield from _slots(child, quiet=inner)


def _variants(slot: Slot, quiet: bool) -> list[ast.AST]:
    """The replacements of one node, each a mutant."""
    node, parent, _, _ = slot
    out: list[ast.AST] = []
    if quiet and not isinstance(node, ast.Constant | ast.Raise):
        return out  # inside a message or a log call: only its numbers (an HTTP status) count
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for table in (FLIP, BOUNDARY):
                if type(op) in table:
                    mutant = copy.deepcopy(node)
                    mutant.ops[i] = table[type(op)]()
                    out.append(mutant)
    elif isinstance(node, ast.BoolOp):
        out.append(ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(node.operand)
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        out.append(ast.BinOp(node.left, ARITHMETIC[type(node.op)](), node.right))
    elif isinstance(node, ast.Constant) and not isinstance(parent, ast.Expr):
        value = node.value
        if isinstance(value, bool):
            out.append(ast.Constant(not value))
        elif isinstance(value, int | float):
            out.append(ast.Constant(value + 1 if isinstance(value, int) else (value * 2 or 1.0)))
        elif isinstance(value, str) and IDENTIFIER.match(value) and not quiet:
            out.append(ast.Constant(value + "X"))
    elif isinstance(node, ast.Raise | ast.Continue | ast.Break):
        out.append(ast.Pass())
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        out += [] if QUIET_CALLS.search(ast.unparse(node.value.func)) else [ast.Pass()]
    return out


def mutants(source: str) -> Iterator[tuple[str, int, int]]:
    """(description, slot number, variant number) of every mutant of a module's source."""
    for number, (slot, quiet) in enumerate(_slots(ast.parse(source))):
        for variant, replacement in enumerate(_variants(slot, quiet)):
            before, after = ast.unparse(slot[0]).splitlines()[0][:60], ast.unparse(replacement)[:60]
            yield f"line {getattr(slot[0], 'lineno', '?')}: {before} -> {after}", number, variant


def mutate(source: str, number: int, variant: int) -> str:
    """The module's source with one mutant applied."""
    tree = ast.parse(source)
    for i, (slot, quiet) in enumerate(_slots(tree)):
        if i == number:
            _, parent, field, index = slot
            replacement = _variants(slot, quiet)[variant]
            if index is None:
                setattr(parent, field, replacement)
            else:
                getattr(parent, field)[index] = replacement
            return ast.unparse(ast.fix_missing_locations(tree))
    raise LookupError(number)


def run_tests(root: Path, pytest_args: list[str], timeout: float) -> tuple[bool, float]:
    """Whether the tests pass in ``root`` (a timeout is a failure), and how long they took."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    plugins = ["-p", "no:cacheprovider", "-p", "mutation_plugin"]
    command = [sys.executable, "-m", "pytest", "-x", "-q", *plugins, *pytest_args]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, timeout
    return done.returncode == 0, time.monotonic() - start


def score(root: Path, module: str, pytest_args: list[str], only: set[str] | None = None) -> tuple[int, int]:
    """Run the mutants of ``module`` (those in ``only``, if given) in the copy at ``root``; return (caught, total)."""
    path = root / module
    original = path.read_text()
    shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
    path.write_text(ast.unparse(ast.parse(original)))  # the baseline runs the same unparsed form the mutants do
    passed, took = run_tests(root, pytest_args, timeout=3600)
    if not passed:
        raise SystemExit(f"{module}: the tests fail without a mutant")
    caught = total = 0
    try:
        for description, number, variant in mutants(original):
            if only is not None and f"{module} {description}" not in only:
                continue
            path.write_text(mutate(original, number, variant))
            survived, _ = run_tests(root, pytest_args, timeout=3 * took + 30)
            total += 1
            caught += not survived
            print(f"{'SURVIVED' if survived else 'caught  '} {module} {description}", flush=True)
    finally:
        path.write_text(original)
    print(f"{module}: {caught}/{total} caught ({100 * caught / max(total, 1):.0f}%)", flush=True)
    return caught, total


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description="Mutation score of modules against tests; see the docstring.")
    parser.add_argument("modules", nargs="+", help="module files, relative to the repository root")
    parser.add_argument("--rerun", type=Path, help="an earlier run's output: run only its survivors")
    args, pytest_args = parser.parse_args(argv[:split]), argv[split + 1 :]
    lines = args.rerun.read_text().splitlines() if args.rerun else []
    only = {line.removeprefix("SURVIVED ") for line in lines if line.startswith("SURVIVED ")} if args.rerun else None
    ignore = shutil.ignore_patterns(".git", ".tools", "__pycache__", ".*_cache", ".hypothesis", "*.egg-info")
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(REPO, root, ignore=ignore)
        (root / "mutation_plugin.py").write_text(PLUGIN)
        results = {module: score(root, module, pytest_args, only) for module in args.modules}
    for module, (caught, total) in results.items():
        print(f"{module:48} {total:4} mutants {caught:4} caught {100 * caught / max(total, 1):4.0f}%")


if __name__ == "__main__":
    main()
