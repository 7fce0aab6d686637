"""The ASGI entry point for uvicorn and other servers: `uvicorn app.asgi:app`."""

import sys

from app import logs, storage
from app.main import create_app
from app.settings import SettingsError, get_settings

try:
    settings = get_settings()
    logs.configure(settings)
    storage.start()  # a real write, read and delete in the configured media storage
except SettingsError as exc:
    # One clear line naming the variable, not a traceback.
    sys.exit(f"Ошибка настройки: {exc}")
app = create_app(settings)
