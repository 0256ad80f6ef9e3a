"""The server-side session policy: what ops allow (`model`), per-caller `profiles`, and the rules.

`Policy` is validated once at start-up; `evaluate` merges a requested session
of any kind into it, purely, and says what it decided and why.
"""

from service.policy.budget import Budget
from service.policy.catalog import allowed_models, model_warnings
from service.policy.evaluate import AnySession, evaluate
from service.policy.merge import Decision
from service.policy.model import Policy
from service.policy.phone import PhoneLine, dialled_number, line_key
from service.policy.profiles import Profiles, load_profiles
from service.policy.rules import Outcome

__all__ = [
    "AnySession",
    "Budget",
    "Decision",
    "Outcome",
    "PhoneLine",
    "Policy",
    "Profiles",
    "allowed_models",
    "dialled_number",
    "evaluate",
    "line_key",
    "load_profiles",
    "model_warnings",
]
