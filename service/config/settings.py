"""The one Settings class: every knob, read from the environment and `.env`.

Names are the contract with ops (documented in `.env.example` and docs/reference.md,
which `service.config.reference` generates from the field docstrings below).
Policy variables are `POLICY_<FIELD>` and land in the nested `Policy`, which
validates itself, so a contradictory configuration stops start-up with a
message naming the variable rather than failing at the first mint.

The OpenAI key is a `SecretStr` with no default; it can also come from a Docker
secret file named `openai_api_key` in `SECRETS_DIR` (default `/run/secrets`).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from service.billing import PriceTable, load_prices
from service.core.env_values import (
    CsvStr,
    Rate,
    Usd,
    available_cpus,
    check_redis_url,
    parse_key_entries,
    parse_pairs,
    parse_rate,
    split_csv,
    upper_case,
)
from service.policy import Budget, Policy, Profiles, load_profiles

SECRETS_DIR = "/run/secrets"
"""Where secret files (`openai_api_key`) are read from unless the SECRETS_DIR variable says
otherwise: read before `Settings` exists, since it tells `Settings` where to look."""


def default_workers(data: dict[str, Any]) -> int:
    """WORKERS unset: the CPUs this process may use with a shared store (REDIS_URL), else 1."""
    return available_cpus() if data.get("redis_url") else 1


class Settings(BaseSettings):
    """Configuration of one process. Tests build it explicitly; nothing patches globals."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        validate_default=True,
        # Each field's docstring is its description: docs/reference.md is generated from them.
        use_attribute_docstrings=True,
    )

    service_strict_env: bool = False
    """A misspelt variable (`service.config.variables`) stops start-up instead of a warning."""
    upstream_emulator: bool = False
    """Mint against the built-in upstream emulator (fake `ek_emulator_` secrets, development
    only); no OPENAI_API_KEY needed."""
    openai_api_key: SecretStr | None = None
    """The server's OpenAI key, required unless UPSTREAM_EMULATOR=true; also read from the file
    `openai_api_key` in SECRETS_DIR (a Docker secret, or a Kubernetes Secret mounted there)."""
    openai_base_url: str = "https://api.openai.com/v1"
    """Upstream base URL (Azure: `https://{resource}.openai.azure.com/openai/v1`); call sidebands
    are derived from it."""
    upstream_api_type: Literal["openai", "azure"] = "openai"
    """`openai` sends the key as `Authorization: Bearer`, `azure` as an `api-key` header."""
    upstream_model_map: Annotated[dict[str, str], NoDecode, BeforeValidator(parse_pairs)] = Field(
        default_factory=dict
    )
    """`model=deployment,...`: the upstream (Azure deployment) name for each public model name,
    mapped back in responses."""
    upstream_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Deadline for one upstream request, retries included; past it the caller gets 504."""
    upstream_max_retries: Annotated[int, Field(ge=0, le=5)] = 2
    """Retries, with full jitter, of a request that provably never reached OpenAI (connect
    errors); never after the body was sent, so never after a 5xx."""
    upstream_max_connections: Annotated[int, Field(ge=1)] = 512
    """Size of the upstream connection pool, per worker."""

    host: str = "127.0.0.1"
    """Listen address (the container image sets 0.0.0.0)."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """Listen port of the API."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 65536
    """Largest request body; larger ones get 413."""
    calls_max_sdp_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 65536
    """Largest SDP offer a call may carry (400 `invalid_sdp` above it); a call's body may be this
    much larger than MAX_BODY_BYTES."""
    http_read_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """A request's head and body must arrive within this many seconds of the connection opening
    (or of the request's first byte), else the connection is closed."""
    max_connections_per_worker: Annotated[int, Field(ge=1)] = 1000
    """Open connections one worker holds; one beyond it is closed at once, unanswered (keep it
    plus UPSTREAM_MAX_CONNECTIONS under `ulimit -n`)."""
    shutdown_grace_seconds: Annotated[int, Field(ge=0, le=600)] = 20
    """On SIGTERM, how long in-flight requests may take to finish."""
    demo_page: bool = False
    """Serve the browser demo at `/demo/` (`make run` turns it on; keep it off in production)."""
    api_docs: bool = False
    """`/docs` and `/redoc` (served offline, `make run` turns them on); `/openapi.json` is
    always served."""
    demo_api_origins: CsvStr = ()
    """Origins besides its own that the demo page (`?api=`) may send a typed caller key to."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at `/metrics`."""
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Serve `/metrics` on this port only, never on PORT (the image, Compose and Kubernetes set
    9100); unset, it is on PORT."""

    log_format: Literal["json", "console"] = "json"
    """`json` (one line per event on stdout) or `console` for humans."""
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(upper_case)
    ] = "INFO"
    """`DEBUG`, `INFO`, `WARNING` or `ERROR`, case-insensitive."""
    log_scrub: bool = True
    """Mask anything shaped like a key or secret in every log line; only the test suite turns it
    off."""

    policy: Policy = Field(default_factory=Policy)
    policy_profiles_file: Path | None = None
    """TOML or YAML file of per-caller profiles that override the POLICY_* fields field by field."""
    _profiles: Profiles = PrivateAttr()

    auth_mode: Literal["api_key", "jwt", "gateway", "none"]
    """How callers authenticate: `api_key`, `jwt`, `gateway`, or `none` (development only, warns
    at start-up)."""
    auth_api_keys: Annotated[dict[str, str], NoDecode, BeforeValidator(parse_key_entries)] = Field(
        default_factory=dict
    )
    """`name:sha256hex,...` entries printed by `python -m service hash-key NAME` (hashes only,
    never keys); the name is the caller's identity."""
    admin_api_keys: Annotated[dict[str, str], NoDecode, BeforeValidator(parse_key_entries)] = Field(
        default_factory=dict
    )
    """Operators' keys for `/admin/*`, `name:sha256hex,...` like AUTH_API_KEYS (never a caller's
    key); unset, `/admin/*` answers 404."""
    auth_jwt_jwks_url: str | None = None
    """JWT mode: the identity provider's JWKS URL (exactly one of this and AUTH_JWT_SECRET)."""
    auth_jwt_secret: SecretStr | None = None
    """JWT mode: the shared HS256 secret (exactly one of this and AUTH_JWT_JWKS_URL)."""
    auth_jwt_issuer: str | None = None
    """JWT mode, required: the `iss` every token must carry."""
    auth_jwt_audience: str | None = None
    """JWT mode, required: the `aud` every token must carry."""
    auth_jwt_algorithms: Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(split_csv)] = (
        None
    )
    """JWT mode: the accepted algorithms, fixed by config and never by the token; unset,
    RS256,ES256 with a JWKS and HS256 with a secret."""
    auth_jwt_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    """JWT mode: clock skew allowed on `exp`."""
    auth_jwt_jwks_refresh_seconds: Annotated[float, Field(ge=0, le=86400)] = 60.0
    """JWT mode: after a successful JWKS fetch, refetch for an unknown `kid` at most this often
    (a failed fetch is retried sooner)."""
    auth_gateway_header: str | None = None
    """Gateway mode: the header naming the caller the gateway authenticated, believed only from
    TRUSTED_PROXIES."""
    auth_profile_claim: str | None = None
    """JWT mode: the claim whose value names the caller's profile, e.g. `tier` or `tenant`."""
    auth_hash_identities: bool = False
    """Put a hash of the caller's identity, not the identity, into trace metadata and GPT-Live's
    `safety_identifier`."""
    trusted_proxies: Annotated[
        tuple[IPv4Network | IPv6Network, ...], NoDecode, BeforeValidator(split_csv)
    ] = ()
    """CIDRs of the proxies whose AUTH_GATEWAY_HEADER and `X-Forwarded-For` are believed."""

    cors_allow_origins: CsvStr = ()
    """Exact browser origins allowed to call the service, comma-separated; others get no CORS
    headers."""
    cors_allow_credentials: bool = False
    """Allow cookies cross-origin (never with `*`); bearer keys do not need it."""

    redis_url: Annotated[str | None, AfterValidator(check_redis_url)] = None
    """Shared store (`redis://`, `rediss://`, `redis+sentinel://`) for limits, call records,
    usage and supervision leases across workers and replicas; unset, process memory."""
    # After REDIS_URL: how many workers the default gives depends on it.
    workers: Annotated[int, Field(ge=1)] = Field(default_factory=default_workers)
    """Worker processes; more than one needs REDIS_URL (start-up refuses otherwise)."""
    redis_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 0.25
    """Redis connect and read timeout; a request waits at most twice this for Redis."""
    rate_limit_per_identity: Annotated[Rate | None, BeforeValidator(parse_rate)] = None
    """Mints and calls per caller: `N/second`, `N/minute`, `N/hour` or `N/day`."""
    rate_limit_per_ip: Annotated[Rate | None, BeforeValidator(parse_rate)] = None
    """Mints and calls per client IP (an IPv6 client counts by its /64), same format."""
    rate_limit_dry_run_per_identity: Annotated[Rate | None, BeforeValidator(parse_rate)] = Rate(
        60, 60
    )
    """`?dry_run=true` requests per caller, counted apart from mints; `off` for no limit."""
    quota_mints_per_day: Annotated[int, Field(ge=1)] | None = None
    """Mints and calls per caller per UTC day."""
    quota_tokens_per_day: Annotated[int, Field(ge=1)] | None = None
    """Realtime tokens per caller per UTC day, from supervised calls' usage: new calls get 429,
    live ones are hung up."""
    quota_call_seconds_per_day: Annotated[int, Field(ge=1)] | None = None
    """Call seconds (Realtime and GPT-Live) per caller per UTC day, enforced like
    QUOTA_TOKENS_PER_DAY."""
    prices_file: Path | None = None
    """TOML price table whose entries replace the shipped ones by model name or add models
    (`service/billing/prices.toml` shows the format); validated at start-up."""
    _prices: PriceTable = PrivateAttr()
    calls_max_usd: Usd = None
    """Dollars one supervised call may cost (from its usage, at PRICES_FILE's prices): a call
    that crosses it is hung up. A profile's `[budget]` may set its own."""
    quota_usd_per_day: Usd = None
    """Dollars per caller per UTC day across their supervised calls: new calls get 429
    `quota_exceeded`, live ones are hung up. A profile's `[budget]` may set its own."""
    quota_usd_per_day_total: Usd = None
    """Dollars per UTC day for the whole deployment, every caller together: crossing it
    refuses every new call and mint and hangs up live calls."""
    client_secrets_enabled: bool = True
    """Serve the client-secret endpoints. Their sessions run between the browser and OpenAI,
    unseen, so no budget meters them: `false` leaves only server-created calls."""
    calls_reserve_tokens: Annotated[int, Field(ge=0)] = 4096
    """Tokens each admitted Realtime call reserves against its caller's QUOTA_TOKENS_PER_DAY
    until it spends them or ends (default: one response's longest output), so calls admitted
    at once cannot overshoot the quota by more than their reserves; 0: none. Unset, it is at
    most the quota; set, it must not exceed it."""
    calls_reserve_seconds: Annotated[int, Field(ge=0)] = 60
    """Call seconds each admitted call reserves against QUOTA_CALL_SECONDS_PER_DAY, like
    CALLS_RESERVE_TOKENS; 0: none."""
    calls_reserve_usd: Usd = None
    """Dollars each admitted call reserves against QUOTA_USD_PER_DAY and
    QUOTA_USD_PER_DAY_TOTAL. Unset: one response's worth at the call's model's price
    (CALLS_RESERVE_TOKENS at its highest token price; GPT-Live: CALLS_RESERVE_SECONDS at its
    active price), at most the budget; set, it must not exceed either budget."""

    calls_on_override: Literal["revert", "hangup"] = "revert"
    """What a supervised call that breaks the policy gets: `revert` (restore the session's
    fields, cancel the response, delete the item) or `hangup`."""
    calls_responses: Literal["client", "server"] = "client"
    """Who starts a supervised Realtime call's responses: `client` (the browser, or OpenAI's
    turn detection; each response checked once created) or `server` (turn detection's
    `create_response` pinned false, the supervisor sends `response.create` for each
    committed user turn after checking the caller's quotas, and cancels every response it
    did not start)."""
    calls_max_seconds: Annotated[int, Field(ge=1, le=86_400)] = 1800
    """Every server-created call is hung up after this many seconds."""
    calls_sideband_max_failures: Annotated[int, Field(ge=1, le=1000)] = 20
    """Failed sideband attachments (a refused connect, or a connection that died before it
    delivered an event and stayed up 5 s) over a call's life before the call is hung up
    as `unsupervisable`: past that, the policy can no longer be kept."""
    calls_sideband_max_events_per_second: Annotated[int, Field(ge=10, le=100_000)] = 500
    """Sideband events read per call per second; more are dropped unparsed and counted, and
    a call over it for 5 seconds in a row is hung up (`flood`). A real call sends a few
    dozen a second at most (audio transcript deltas), far below."""
    calls_max_concurrent_per_identity: Annotated[int, Field(ge=1)] | None = None
    """Live calls per caller; one more gets 429 `too_many_calls`."""
    calls_lease_seconds: Annotated[float, Field(ge=1, le=300)] = 10.0
    """With Redis, each call's lease: renewed every third of it; a dead worker's calls are
    adopted by another within 4/3 of it (the lease runs out, then another worker's next
    keeper pass, a third of it, adopts), plus the attach to the sideband."""
    rate_limit_on_store_error: Literal["closed", "open"] = "closed"
    """Redis unreachable: `closed` answers 503, `open` mints without limits and logs it."""
    calls_over_cap_after_outage: Literal["keep", "hangup"] = "keep"
    """`RATE_LIMIT_ON_STORE_ERROR=open`: a call admitted while Redis was down takes its
    live-call slot once Redis answers; a caller then past `CALLS_MAX_CONCURRENT_PER_IDENTITY`
    is reported (audit line `call_over_cap_after_outage`) and the calls over the cap are
    `keep` (kept; new calls are refused until enough end) or `hangup` (hung up)."""
    openai_webhook_secret: SecretStr | None = None
    """The project's webhook signing secret (`whsec_...`, as OpenAI shows it): serves
    `POST /v1/webhooks/openai`, where phone calls (SIP) arrive and are accepted under the
    policy, and turns suspensions on (`safety_identifier.blocked`). Unset: no such route."""
    phone_unknown_number: str = "reject"
    """A call to a number the profiles file's `[phone]` table does not list: `reject` (SIP
    603 Decline) or the name of the profile to answer it with (its kind: `realtime`)."""
    phone_max_concurrent_per_number: Annotated[int, Field(ge=1)] | None = None
    """Live calls per dialled number; one more is rejected with SIP 486 Busy Here."""
    phone_budget_reject_status: int = 486
    """The SIP status a phone call gets when a budget or a caller's limit refuses it:
    486 Busy Here or 603 Decline."""
    safety_suspend_seconds: Annotated[int, Field(ge=1, le=31_536_000)] = 86_400
    """`safety_identifier.blocked`: how long the blocked caller is suspended (their calls
    hung up, new mints and calls 403 `caller_suspended`)."""

    @model_validator(mode="before")
    @classmethod
    def _empty_values(cls, data: Any) -> Any:
        """`VAR=` sets an empty list where the variable is a list, and means unset elsewhere.

        An explicitly empty allow-list (`POLICY_ALLOWED_NOISE_REDUCTION=`) allows
        nothing; it must never read as "unset" and so fall back to the wider
        default. For a scalar (`REDIS_URL=`) empty has no other sensible meaning.
        """
        if not isinstance(data, dict):
            return data
        data = _without_empty_scalars(data, cls.model_fields)
        if isinstance(data.get("policy"), dict):
            data["policy"] = _without_empty_scalars(data["policy"], Policy.model_fields)
        return data

    @model_validator(mode="before")
    @classmethod
    def _profiles_file_is_not_a_policy_rule(cls, data: Any) -> Any:
        """`POLICY_PROFILES_FILE` shares the `POLICY_` prefix but is not a policy field."""
        policy = data.get("policy") if isinstance(data, dict) else None
        if isinstance(policy, dict) and "profiles_file" in policy:
            rules = {k: v for k, v in policy.items() if k != "profiles_file"}
            data = {**data, "policy": rules, "policy_profiles_file": policy["profiles_file"]}
        return data

    @model_validator(mode="after")
    def _workers_share_state(self) -> Self:
        """Several workers without a shared store would each count their own limits."""
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                f"WORKERS={self.workers} needs REDIS_URL: without a shared store each worker "
                "keeps its own rate limits, quotas, live-call slots, call records and usage, "
                "so no limit would hold and a caller's hang-up would reach the wrong worker; "
                "set REDIS_URL, or WORKERS=1 (the default without REDIS_URL)"
            )
        return self

    @model_validator(mode="after")
    def _reserves_fit(self) -> Self:
        """A reserve set larger than its budget could never hold as configured."""
        pairs = [
            (
                "calls_reserve_tokens",
                self.calls_reserve_tokens,
                "quota_tokens_per_day",
                self.quota_tokens_per_day,
            ),
            (
                "calls_reserve_seconds",
                self.calls_reserve_seconds,
                "quota_call_seconds_per_day",
                self.quota_call_seconds_per_day,
            ),
            (
                "calls_reserve_usd",
                self.calls_reserve_usd,
                "quota_usd_per_day",
                self.quota_usd_per_day,
            ),
            (
                "calls_reserve_usd",
                self.calls_reserve_usd,
                "quota_usd_per_day_total",
                self.quota_usd_per_day_total,
            ),
        ]
        problems = [
            f"{reserve.upper()}={amount} exceeds {quota.upper()}={limit}: one call's reserve "
            f"would be more than the whole budget; lower {reserve.upper()} or unset it"
            for reserve, amount, quota, limit in pairs
            if reserve in self.model_fields_set
            and amount is not None
            and limit is not None
            and amount > limit
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Self:
        """Each AUTH_MODE needs its own settings; refuse a half-configured one."""
        problems = []
        if self.auth_mode == "api_key" and not self.auth_api_keys:
            problems.append("AUTH_API_KEYS is required with AUTH_MODE=api_key")
        if self.auth_mode == "jwt":
            if bool(self.auth_jwt_jwks_url) == bool(self.auth_jwt_secret):
                problems.append(
                    "AUTH_MODE=jwt needs exactly one of AUTH_JWT_JWKS_URL or AUTH_JWT_SECRET"
                )
            if not (self.auth_jwt_issuer and self.auth_jwt_audience):
                problems.append("AUTH_MODE=jwt needs AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE")
            algorithms = self.jwt_algorithms
            if not algorithms:
                problems.append("AUTH_JWT_ALGORITHMS is empty: no token could ever verify")
            symmetric = [a for a in algorithms if a.startswith("HS")]
            if self.auth_jwt_jwks_url and symmetric:
                problems.append("AUTH_JWT_ALGORITHMS: HS* algorithms cannot be used with a JWKS")
            if self.auth_jwt_secret and len(symmetric) != len(algorithms):
                problems.append("AUTH_JWT_ALGORITHMS: only HS* algorithms work with a secret")
        if self.auth_mode == "gateway" and not (self.auth_gateway_header and self.trusted_proxies):
            problems.append("AUTH_MODE=gateway needs AUTH_GATEWAY_HEADER and TRUSTED_PROXIES")
        shared = set(self.admin_api_keys.values()) & set(self.auth_api_keys.values())
        if shared:
            problems.append(
                "ADMIN_API_KEYS and AUTH_API_KEYS share a key: an operator's key must never "
                "be a caller's (make one with `python -m service hash-key NAME`)"
            )
        if "*" in self.cors_allow_origins and self.cors_allow_credentials:
            problems.append("CORS_ALLOW_ORIGINS=* cannot be combined with CORS_ALLOW_CREDENTIALS")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _profiles_load(self) -> Self:
        """Validate the profiles file at start-up, like the env policy."""
        try:
            self._profiles = load_profiles(self.policy, self.policy_profiles_file)
        except ValueError as exc:
            raise ValueError(f"POLICY_PROFILES_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _phone_holds(self) -> Self:
        """The unknown-number profile must exist, the reject status be 486 or 603, and the
        webhook secret be one."""
        unknown = self.phone_unknown_number
        if unknown != "reject" and unknown not in dict(self.profiles.all()):
            raise ValueError(
                f"PHONE_UNKNOWN_NUMBER: '{unknown}' is neither 'reject' nor a profile "
                "(POLICY_PROFILES_FILE)"
            )
        if self.phone_budget_reject_status not in (486, 603):
            raise ValueError("PHONE_BUDGET_REJECT_STATUS: 486 (Busy Here) or 603 (Decline)")
        if self.openai_webhook_secret is not None:
            try:
                Webhook(self.openai_webhook_secret.get_secret_value())
            except (ValueError, EmptyWebhookSecretError):
                raise ValueError(
                    "OPENAI_WEBHOOK_SECRET: not a webhook secret (the whsec_... value)"
                ) from None
        return self

    @model_validator(mode="after")
    def _prices_load(self) -> Self:
        """Validate the price table at start-up: a bad entry must not price calls at zero."""
        try:
            self._prices = load_prices(self.prices_file)
        except ValueError as exc:
            raise ValueError(f"PRICES_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _reserve_fits_profiles(self) -> Self:
        """A CALLS_RESERVE_USD set above a profile's own daily budget could never hold there."""
        reserve = self.calls_reserve_usd
        if "calls_reserve_usd" not in self.model_fields_set or reserve is None:
            return self
        over = sorted(
            name
            for name, budget in self.profiles.budgets.items()
            if budget.quota_usd_per_day is not None and reserve > budget.quota_usd_per_day
        )
        if over:
            raise ValueError(
                f"CALLS_RESERVE_USD={reserve} exceeds the quota_usd_per_day of profile(s) "
                f"{', '.join(over)} (POLICY_PROFILES_FILE): lower it or unset it"
            )
        return self

    def budget_for(self, profile: str) -> Budget:
        """The dollar budgets of a profile's callers: its own `[budget]` values, else the env's."""
        own = self.profiles.budgets.get(profile)
        return Budget(
            quota_usd_per_day=own.quota_usd_per_day
            if own and own.quota_usd_per_day
            else (self.quota_usd_per_day),
            calls_max_usd=own.calls_max_usd if own and own.calls_max_usd else self.calls_max_usd,
        )

    @property
    def dollar_budgets(self) -> bool:
        """Whether any dollar budget applies to anyone (env or any profile)."""
        return bool(
            self.calls_max_usd
            or self.quota_usd_per_day
            or self.quota_usd_per_day_total
            or any(b.calls_max_usd or b.quota_usd_per_day for b in self.profiles.budgets.values())
        )

    @property
    def prices(self) -> PriceTable:
        """The shipped price table with PRICES_FILE's entries, validated."""
        return self._prices

    @property
    def profiles(self) -> Profiles:
        """The env policy and the per-caller profiles, validated."""
        return self._profiles

    @property
    def jwt_algorithms(self) -> tuple[str, ...]:
        """The JWT algorithms accepted: configured, or the safe default for the key source."""
        if self.auth_jwt_algorithms is not None:
            return self.auth_jwt_algorithms
        return ("HS256",) if self.auth_jwt_secret else ("RS256", "ES256")

    @field_validator("openai_api_key")
    @classmethod
    def _key_or_emulator(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A real upstream needs a real key; only the emulator runs without one.

        A field check (not a model check), so that a missing key is reported
        together with every other missing or invalid variable.
        """
        if info.data.get("upstream_emulator"):
            return key
        value = key.get_secret_value() if key else ""
        if value and any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("contains whitespace or control characters")
        if not value.strip():
            raise ValueError(
                "is required (or set UPSTREAM_EMULATOR=true to run against the built-in emulator)"
            )
        return key


def _without_empty_scalars(values: dict[str, Any], fields: dict[str, FieldInfo]) -> dict[str, Any]:
    """`values` less the empty strings given for fields that are not env lists (`NoDecode`)."""
    return {
        name: value
        for name, value in values.items()
        if not (value == "" and name in fields and NoDecode not in fields[name].metadata)
    }


def load_settings(**overrides: object) -> Settings:
    """Settings from env, `.env` and the Docker secrets directory (if it exists)."""
    secrets_dir = os.environ.get("SECRETS_DIR", SECRETS_DIR)
    return Settings(
        _secrets_dir=secrets_dir if os.path.isdir(secrets_dir) else None,
        **overrides,  # type: ignore[arg-type]
    )
