"""The routes, one module per resource: client secrets, calls, the policy view, usage, health."""
