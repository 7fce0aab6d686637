"""The ASGI entry point for uvicorn and other servers: `uvicorn app.asgi:app`."""

import logging

from app.main import create_app
from app.settings import get_settings

logging.basicConfig(
    level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
app = create_app()
