"""Fake data for the demo and for trying the admin site by hand.

`python -m seeds [--delete] [--yes]` does the same as `lomaya seed`; the work is in `seeds.fill`
(`fill`, `wipe`), the generated pictures in `seeds.pictures` (drawn ahead and cached by
`seeds.painter`), the Russian names and titles in `seeds.data`; `lomaya demo` is `seeds.demo`.
"""

from __future__ import annotations

import sys


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes", "д", "да"}


def run_seed(delete: bool, yes: bool) -> None:
    """`lomaya seed` and `python -m seeds`: migrate, optionally wipe (asking first), fill."""
    from app import media, migrate
    from app.db import session_scope
    from app.settings import get_settings
    from seeds.fill import fill, wipe

    if delete and not yes and not _confirm("Удалить все данные из базы и заполнить её заново?"):
        sys.exit("Отменено: данные не тронуты.")
    migrate.upgrade()
    with session_scope() as session:
        if delete:
            print("Удаляю старые данные…")
            wipe(session)
        summary = fill(session, cache_dir=get_settings().data_dir / ".demo-cache")
    media.purge()  # the objects the replayed retention queued for deletion
    print(summary.describe())
