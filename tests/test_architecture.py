"""The layout rules of docs/architecture.md, enforced on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "kefu"
EDGES = {"web", "api", "cli", "jobs"}
# Domain packages: rules, data and actions; they never reach out to an edge.
DOMAINS = {"units", "staff", "auth", "audit", "idempotency", "mail", "portal"}
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_"}


def modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        out.append((".".join(("kefu", *rel.parts)), ast.parse(path.read_text(), str(path))))
    return out


def imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
    return found


def test_domains_never_import_edges():
    bad = []
    for name, tree in modules():
        parts = name.split(".")
        if len(parts) > 1 and parts[1] in DOMAINS | {"scope", "db", "errors", "pagination"}:
            for mod, _ in imports(tree):
                if mod.startswith("kefu.") and mod.split(".")[1] in EDGES:
                    bad.append(f"{name} imports {mod}")
    assert bad == []


def test_only_web_imports_jinja2():
    bad = [
        f"{name} imports {mod}"
        for name, tree in modules()
        for mod, _ in imports(tree)
        if mod.split(".")[0] == "jinja2" and not name.startswith("kefu.web")
    ]
    assert bad == []


def test_only_db_makes_engines():
    bad = [
        f"{name} imports create_engine"
        for name, tree in modules()
        for mod, names in imports(tree)
        if "create_engine" in names or mod == "sqlalchemy.create_engine"
        if name != "kefu.db"
    ]
    assert bad == []


def test_edges_write_no_sql():
    bad = []
    for name, tree in modules():
        parts = name.split(".")
        if len(parts) > 1 and parts[1] in EDGES - {"jobs"}:
            for mod, names in imports(tree):
                if mod.startswith("sqlalchemy") and SQL_BUILDERS & set(names):
                    bad.append(f"{name} imports {sorted(SQL_BUILDERS & set(names))} from {mod}")
    assert bad == []


def test_services_never_commit():
    bad = []
    for name, tree in modules():
        parts = name.split(".")
        if len(parts) > 1 and parts[1] in DOMAINS:
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "commit"
                ):
                    bad.append(f"{name}:{node.lineno} commits")
    assert bad == []


def test_every_domain_has_the_same_shape():
    for domain in DOMAINS:
        assert (SRC / domain / "models.py").exists(), domain
        assert (SRC / domain / "service.py").exists(), domain
