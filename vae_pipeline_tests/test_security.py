"""Static security gates over the package source: no SQL built by pasting values, no
pickle, weights loaded with ``weights_only``, bounded dependencies, no secrets in the repo."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vae_pipeline"
SOURCES = sorted(PACKAGE.rglob("*.py"))
SQL_WORDS = re.compile(r"\b(select|insert|delete|update|create|drop|from|where)\b", re.IGNORECASE)
# The one place that formats an identifier into SQL is store/duckdb_store.py `_sql` (a plain
# identifier, double-quoted); it returns the statement, so no execute() call .format()s here.
FORMAT_ALLOWED: set[tuple[str, str]] = set()


def _calls_with_sql(tree: ast.AST):
    """(innermost function, call) for every ``x.execute(...)`` / ``.sql(...)`` / ``.query(...)``."""
    found = []

    class Visitor(ast.NodeVisitor):
        stack = ["<module>"]

        def visit_FunctionDef(self, node):
            self.stack.append(node.name)
            self.generic_visit(node)
            self.stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node):
            if (
                isinstance(node.func, ast.Attribute)
                and node.args
                and node.func.attr in {"execute", "executemany", "sql", "query"}
            ):
                found.append((self.stack[-1], node))
            self.generic_visit(node)

    Visitor().visit(tree)
    return found


def test_the_scan_sees_the_package():
    assert len(SOURCES) > 40
    calls = [c for p in SOURCES for c in _calls_with_sql(ast.parse(p.read_text()))]
    assert len(calls) >= 15  # the DuckDB reads and writes are really being inspected


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_sql_is_built_by_pasting_values_into_strings(path):
    rel = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text())
    for name, call in _calls_with_sql(tree):
        sql = call.args[0]
        pasted = isinstance(sql, (ast.JoinedStr, ast.BinOp))
        formatted = isinstance(sql, ast.Call) and getattr(sql.func, "attr", "") == "format"
        assert not pasted, f"{rel}:{call.lineno} builds SQL with an f-string or +/%"
        assert not formatted or (rel, name) in FORMAT_ALLOWED, f"{rel}:{call.lineno} .format()s SQL"
    for node in ast.walk(tree):  # SQL-looking f-strings anywhere (built first, run later)
        if isinstance(node, ast.JoinedStr):
            text = " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
            words = {w.lower() for w in SQL_WORDS.findall(text)}
            assert not ({"select", "from"} <= words or words & {"insert", "delete", "drop"}), (
                f"{rel}:{node.lineno} looks like SQL in an f-string: {text[:80]!r}"
            )


def test_model_weights_are_never_unpickled():
    for path in SOURCES:
        text = path.read_text()
        rel = path.relative_to(REPO)
        assert not re.search(
            r"^\s*(import|from)\s+(pickle|cloudpickle|dill|joblib)\b", text, re.M
        ), rel
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and getattr(node.func.value, "id", "") == "torch"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                ok = (
                    isinstance(kw.get("weights_only"), ast.Constant)
                    and kw["weights_only"].value is True
                )
                assert ok, f"{rel}:{node.lineno} torch.load without weights_only=True"


def test_every_dependency_has_an_upper_bound():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    assert len(reqs) > 15
    unbounded = [r for r in reqs if "<" not in r and "==" not in r]
    assert not unbounded, f"unbounded: {unbounded}"
    torch = next(r for r in project["dependencies"] if r.startswith("torch"))
    assert "<2.14" in torch


def test_servers_bind_to_localhost_by_default():
    makefile = (REPO / "Makefile").read_text()
    ui = (PACKAGE / "cli" / "ui.py").read_text()  # `make ui` = `vae ui` = dagster dev -h ...
    assert "$(BIN)/vae ui" in makefile and '"dev", *where, "-h", "127.0.0.1"' in ui
    dash = (PACKAGE / "cli" / "pipeline.py").read_text() + (
        PACKAGE / "cli" / "train.py"
    ).read_text()
    assert "127.0.0.1" in dash and "0.0.0.0" not in dash + ui


def test_no_secrets_are_committed():
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    )
    tracked = [REPO / f for f in files.stdout.split()]
    assert tracked, "not a git checkout"
    secret = re.compile(
        r"(AKIA[0-9A-Z]{16}|-----BEGIN (RSA |EC )?PRIVATE KEY|ghp_[A-Za-z0-9]{36}|xox[bp]-[A-Za-z0-9-]{10,}"
        r"|(api[_-]?key|secret|password|token)\s*[:=]\s*['\"][A-Za-z0-9/+_-]{16,}['\"])",
        re.IGNORECASE,
    )
    leaks = []
    for path in tracked:
        if (
            not path.is_file()
            or path.stat().st_size > 2_000_000
            or path.suffix in {".png", ".html"}
        ):
            continue
        text = path.read_text(errors="ignore")
        leaks += [f"{path.relative_to(REPO)}: {m.group(0)[:30]}" for m in secret.finditer(text)]
    assert not leaks, leaks
    ignored = (REPO / ".gitignore").read_text()
    for pattern in (".venv", "*.duckdb", ".env"):
        assert pattern in ignored, f"{pattern} is not git-ignored"
