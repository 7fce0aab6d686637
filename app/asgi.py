"""The ASGI entry point for uvicorn and other servers: `uvicorn app.asgi:app`."""

import sys

from app import logs
from app.main import create_app
from app.settings import SettingsError, get_settings

try:
    settings = get_settings()
except SettingsError as exc:
    # One clear line naming the variable, not a traceback.
    sys.exit(f"Ошибка настройки: {exc}")
logs.configure(settings)
app = create_app(settings)
