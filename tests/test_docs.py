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


def _documented_commands() -> list[tuple[str, str]]:
    """Every `lomaya …` command in the README and docs/: code lines and inline code."""
    import re

    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        parts = re.split(r"^```.*$", path.read_text(), flags=re.MULTILINE)
        prose, code = parts[::2], parts[1::2]  # outside and inside fenced blocks
        lines = [c for p in prose for c in re.findall(r"`([^`\n]+)`", p)]
        lines += [line for block in code for line in block.splitlines()]
        for line in lines:
            line = line.split(" #", 1)[0].split("|")[-1].strip()
            match = re.search(
                r"(?:^|uv run |/bin/|-- )lomaya ((?:[a-z][\w-]*|--?[\w-]+)(?: |$).*)", line
            )
            # (not the names of the lock holders' connections, `lomaya sender host:pid`)
            if match and not re.search(r"[…<>$]|\bN\b|\.\.\.|host:pid", match.group(1)):
                found.append((path.name, match.group(1).strip().rstrip("`.,;:)")))
    return found


def test_documented_lomaya_commands_parse():
    """A command the docs tell an operator to type exists, with those options."""
    import contextlib
    import io
    import shlex

    from app.cli import build_parser

    commands = _documented_commands()
    assert len(commands) > 20, commands
    wrong = []
    for source, command in commands:
        try:
            args = shlex.split(command)
        except ValueError:
            continue  # a fragment of prose, not a command
        with (
            contextlib.redirect_stderr(io.StringIO()) as err,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            try:
                build_parser().parse_args(args)
            except SystemExit as exit:
                if exit.code:
                    wrong.append(f"{source}: lomaya {command}: {err.getvalue().strip()[-120:]}")
    assert wrong == []
