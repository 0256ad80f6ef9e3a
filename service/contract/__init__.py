"""The request shapes: OpenAI's beta `Session`, the GA client-secret request, and how they meet.

The beta shape (the seed file's `Session`) is what the policy reasons about;
GA requests are translated into it and effective sessions back out to GA, the
shape OpenAI mints on. Parsing is strict: every failure is a 400 naming the
field as OpenAI would (`param`).
"""

from service.contract.beta import Session, SessionRequest
from service.contract.ga import ClientSecretRequest, GASession
from service.contract.parsing import invalid_request_from, param_of, parse
from service.contract.translate import (
    beta_param,
    beta_view,
    check_carriable,
    from_ga,
    ga_param,
    to_ga,
)

__all__ = [
    "ClientSecretRequest",
    "GASession",
    "Session",
    "SessionRequest",
    "beta_param",
    "beta_view",
    "check_carriable",
    "from_ga",
    "ga_param",
    "invalid_request_from",
    "param_of",
    "parse",
    "to_ga",
]
