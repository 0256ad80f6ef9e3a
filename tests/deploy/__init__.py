"""Tests of the deployment artifacts, one module per artifact (see each docstring)."""
