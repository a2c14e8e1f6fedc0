"""The layering the design promises, checked on the code itself (docs/architecture.md)."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vae_pipeline"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports (``from x import y`` counted as ``x`` and ``x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_import_cycles_between_modules():
    names = {_name(p): p for p in MODULES}
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in names and m != name}
        for name, path in names.items()
    }
    # a package's __init__ re-exporting its own modules is not a cycle of the layering
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert cycles == [], cycles[:3]


@pytest.mark.parametrize("path", [p for p in MODULES if "/core/" in p.as_posix()], ids=_name)
def test_the_numerical_layer_never_imports_dagster_or_the_layers_above(path):
    banned = ("dagster", "vae_pipeline.pipeline", "vae_pipeline.store", "vae_pipeline.cli",
              "vae_pipeline.report", "vae_pipeline.dashboard", "vae_pipeline.settings")  # fmt: skip
    found = _imports(path, top_level_only=False)
    assert not [m for m in found if m.startswith(banned)], path


def test_one_door_to_the_database_and_public_dagster_only():
    openers = [p for p in MODULES if "duckdb.connect(" in p.read_text(encoding="utf-8")]
    assert [_name(p) for p in openers] == ["vae_pipeline.store.connection"]
    private = [p for p in MODULES if any(m.startswith("dagster._") for m in _imports(p, False))]
    assert private == []


def test_the_environment_is_read_by_the_settings_alone():
    reads = re.compile(r"(environ\.get\(|getenv\(|environ\[)\s*[\"']VAE_PIPELINE_")
    readers = [_name(p) for p in MODULES if reads.search(p.read_text(encoding="utf-8"))]
    # the dashboard command hands the resolved path to the Streamlit process it becomes
    assert set(readers) <= {"vae_pipeline.settings", "vae_pipeline.cli.pipeline"}
    source = (PACKAGE / "cli" / "pipeline.py").read_text(encoding="utf-8")
    assert 'environ.get("VAE_PIPELINE' not in source


def test_nothing_points_outside_the_repository():
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "DESIGN.md" not in text, path
