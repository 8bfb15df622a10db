"""Every error code the gateway can answer is in docs/api.md's error table, with its status, and
each code means one thing: one status. Read from the source, so a new code cannot go unlisted."""

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from fpg_api.errors import framework_error_code

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_SOURCE = ROOT / "services" / "api" / "src" / "fpg_api"
API_DOC = ROOT / "docs" / "api.md"
# Raised by FastAPI and Starlette themselves: a body that cannot be parsed, an unknown path, a
# method the path does not take.
FRAMEWORK_STATUSES = (400, 404, 405)
TABLE_ROW = re.compile(r"^\| ([^|]*\d{3}[^|]*) \|", re.MULTILINE)
STATUS_OR_CODE = re.compile(r"\b(\d{3})\b|`([a-z_]+)`")

StatusCode = tuple[int, str]


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` constants, so a code kept in one resolves."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        if isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _literal(node: ast.expr, strings: dict[str, str], where: str) -> int | str:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str):
        return node.value
    if isinstance(node, ast.Name) and node.id in strings:
        return strings[node.id]
    pytest.fail(f"{where}: the status and code must be literals, for this test to read them")


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else ""


def raised_codes() -> set[StatusCode]:
    """``ApiError(status, code, ...)`` calls, and ``_answer(status, ErrorResponse(code=...))``
    in the handlers that answer with a fixed code."""
    found: set[StatusCode] = set()
    for path in sorted(GATEWAY_SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        strings = _module_strings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            status, second = node.args[0], node.args[1]
            if _call_name(node) == "ApiError":
                code = second
            elif (
                _call_name(node) == "_answer"
                and isinstance(second, ast.Call)
                and _call_name(second) == "ErrorResponse"
            ):
                code = next(k.value for k in second.keywords if k.arg == "code")
                if not isinstance(code, ast.Constant):
                    continue  # the ApiError and framework handlers pass a code on
            else:
                continue
            found.add((int(_literal(status, strings, where)), str(_literal(code, strings, where))))
    return found


def documented_codes() -> set[StatusCode]:
    """``(status, code)`` pairs from the error table's first column, e.g.
    ``401 `unauthorized`, 403 `forbidden` ``."""
    found: set[StatusCode] = set()
    for cell in TABLE_ROW.findall(API_DOC.read_text(encoding="utf-8")):
        status = None
        for number, code in STATUS_OR_CODE.findall(cell):
            if number:
                status = int(number)
            elif status is not None:
                found.add((status, code))
    return found


def test_error_table_lists_every_code_the_gateway_answers() -> None:
    answered = raised_codes() | {(s, framework_error_code(s)) for s in FRAMEWORK_STATUSES}
    assert answered - documented_codes() == set(), "answered but not in docs/api.md"
    assert documented_codes() - answered == set(), "in docs/api.md but never answered"


def test_each_error_code_has_one_status() -> None:
    statuses: dict[str, set[int]] = defaultdict(set)
    for status, code in raised_codes():
        statuses[code].add(status)
    assert {code: found for code, found in statuses.items() if len(found) > 1} == {}


def test_the_collector_finds_the_codes_of_each_kind_of_site() -> None:
    """A literal ``ApiError``, a code kept in a constant, and a handler's fixed code."""
    assert {(413, "payload_too_large"), (422, "below_policy"), (503, "audit_unreachable")} <= (
        raised_codes()
    )
