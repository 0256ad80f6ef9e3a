"""The server-side session policy: what ops allow (`model`), per-caller `profiles`, and the `rules`.

`Policy` is validated once at start-up; `evaluate` merges a requested Session
into it, purely, and says what it decided and why.
"""

from service.policy.catalog import model_warnings
from service.policy.merge import Decision
from service.policy.model import Policy
from service.policy.profiles import Profiles, load_profiles
from service.policy.rules import Outcome, evaluate
from service.policy.rules_sessions import evaluate_transcription, evaluate_translation

__all__ = [
    "Decision",
    "Outcome",
    "Policy",
    "Profiles",
    "evaluate",
    "evaluate_transcription",
    "evaluate_translation",
    "load_profiles",
    "model_warnings",
]
