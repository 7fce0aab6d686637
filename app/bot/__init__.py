"""The Telegram adapter: the client, the update-processing path (webhook and polling), handlers."""
