"""The request shapes: OpenAI's GA sessions (canonical), the beta `Session`, and how they meet.

The GA realtime session is what the policy reasons about; the beta endpoint's
Session (the seed file's shape) is translated into it first, and answers are
translated back for beta callers. Parsing is strict: every failure is a 400
naming the field as OpenAI would (`param`).
"""

from service.contract.beta import Session, SessionRequest
from service.contract.ga import (
    ClientSecretRequest,
    RealtimeSession,
    TranscriptionSession,
    TranslationClientSecretRequest,
    TranslationSession,
)
from service.contract.parsing import invalid_request_from, param_of, parse, translated
from service.contract.translate import (
    beta_name,
    beta_param,
    beta_view,
    check_carriable,
    ga_param,
    to_ga,
)

__all__ = [
    "ClientSecretRequest",
    "RealtimeSession",
    "Session",
    "SessionRequest",
    "TranscriptionSession",
    "TranslationClientSecretRequest",
    "TranslationSession",
    "beta_name",
    "beta_param",
    "beta_view",
    "check_carriable",
    "ga_param",
    "invalid_request_from",
    "param_of",
    "parse",
    "to_ga",
    "translated",
]
