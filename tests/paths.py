"""The service's paths, once: the contract frontends and ops rely on, spelled for every test."""

SESSIONS = "/v1/realtime/sessions"
CLIENT_SECRETS = "/v1/realtime/client_secrets"
POLICY = "/v1/policy"
HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
