"""Starlette endpoints, one module per screen family."""
