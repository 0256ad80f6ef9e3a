"""The HTTP edge: the app, its middleware, one Endpoint for the shared prologue, the routes.

What a request does is the flows' (`service.sessions`); the edge reads the
request once, calls one flow, and renders its answer or its error.
"""

from service.api.app import create_app

__all__ = ["create_app"]
