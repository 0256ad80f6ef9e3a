"""The routes, one module per resource: the mint endpoints, the policy view, health."""
