"""The HTTP edge: the app, its middleware, its routes, and the mint pipeline they share."""

from service.api.app import create_app

__all__ = ["create_app"]
