"""`python -m seeds [--delete] [--yes]`: the same as `lomaya seed`.

Migrates the database to head, optionally wipes it (asking first unless `--yes`), fills it with
demo data and prints the demo logins. The steps themselves live in `seeds.run_seed`, so both
commands stay identical.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.settings import SettingsError, load_settings, set_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seeds", description="Заполнить базу тестовыми данными (как `lomaya seed`)."
    )
    parser.add_argument(
        "--delete", action="store_true", help="сначала удалить все данные и фотографии"
    )
    parser.add_argument("--yes", action="store_true", help="не спрашивать подтверждения")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        settings = set_settings(load_settings(allow_generated_secret=True))
    except SettingsError as exc:
        sys.exit(f"Ошибка настройки: {exc}")
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    from seeds import run_seed

    run_seed(args.delete, args.yes)


if __name__ == "__main__":
    main()
