"""The map of modules (docs/modules.md) stays current, and the layer rules hold."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_of_app_is_on_the_map():
    text = (ROOT / "docs" / "modules.md").read_text()
    missing = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(ROOT).as_posix()
        # A row may list several modules of one folder: "app/web/auth.py`, `csrf.py`".
        if relative not in text and f"`{path.name}`" not in text:
            missing.append(relative)
    assert missing == [], "add these to docs/modules.md"


def test_domain_modules_never_import_adapters():
    """Layers: web/, bot/ and the entry points sit above the domain; nothing below imports them."""
    adapters = ("app.web", "app.bot", "app.main", "app.cli", "app.asgi")
    allowed = {"app/background.py"}  # the worker: an adapter that lives at the top of app/
    offenders = []
    for path in sorted((ROOT / "app").glob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in allowed or path.name in ("main.py", "cli.py", "asgi.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == a or n.startswith(a + ".") for n in names for a in adapters):
                offenders.append(relative)
    assert offenders == []
