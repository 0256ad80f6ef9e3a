"""The one Settings class, loaded once and validated at start-up.

It sits above `policy` and `contract` in the import order because a
`Settings` carries the validated `Policy` (and its profiles): a policy that
contradicts itself stops start-up with the variable's name, like any other
bad setting.
"""

from service.config.messages import describe, env_name
from service.config.settings import Settings, load_settings
from service.config.variables import UnknownVariable, configured_names, unknown_variables

__all__ = [
    "Settings",
    "UnknownVariable",
    "configured_names",
    "describe",
    "env_name",
    "load_settings",
    "unknown_variables",
]
