"""The flows: what a request does, one function per endpoint (moving here from api)."""
