"""Mailroom settings: one file, every value from the environment.

Each helper below reads one variable and has a default that works on a developer's machine.
Production (``MAILROOM_ENV=production``) refuses to start without a real ``SECRET_KEY``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker/K8s secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


MAILROOM_ENV = env_str("MAILROOM_ENV", "development")
DEBUG = env_bool("DEBUG", MAILROOM_ENV == "development")
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # noqa: S105
SECRET_KEY = env_secret("SECRET_KEY", _DEV_SECRET)
if MAILROOM_ENV == "production" and (SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("Set SECRET_KEY (32+ characters) in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "mailcore",
    "analytics",
    "webmail",
    "api",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webmail.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------------
# PostgreSQL always (no SQLite path). `make run`/`make test` set DATABASE_URL to an embedded
# server (config/embedded.py) when none is given.
DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mailroom")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
if env_bool("DB_POOL", True):
    # A connection pool per process (psycopg_pool): under ASGI every request would otherwise
    # open a new connection (measured 7-13 ms a request on this machine, bench/webmail.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 1),
        "max_size": env_int("DB_POOL_MAX", 20),
        "timeout": env_int("DB_POOL_TIMEOUT", 10),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mr"),
        "OPTIONS": {
            # Redis down must not take mail down: cache reads miss, writes are dropped.
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
}
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env_str("CHANNELS_PREFIX", "mr-asgi"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Send-later and the end of the undo-send window.
    "webmail-send-due-messages": {"task": "webmail.tasks.send_due_messages", "schedule": 5.0},
}
# Delivery has a queue of its own so a burst of webhooks or rollups never delays mail.
CELERY_TASK_ROUTES = {
    "mailcore.tasks.dispatch_outbound": {"queue": "outbound"},
    "mailcore.tasks.outbound_tick": {"queue": "outbound"},
}

# --- Auth --------------------------------------------------------------------------------------
AUTH_USER_MODEL = "mailcore.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "webmail:login"
LOGIN_REDIRECT_URL = "webmail:index"
LOGOUT_REDIRECT_URL = "webmail:login"

# --- HTTP security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", MAILROOM_ENV == "production")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 30 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON errors everywhere (the API's views set their own auth, scopes and throttles).
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mailroom API",
    "DESCRIPTION": "Native API (/api/v1/) and Mailgun-compatible API (/v3/). See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Offline docs: Swagger UI and Redoc assets from drf-spectacular-sidecar, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"WebhookFormatEnum": "api.models.WebhookEndpoint.Format"},
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # aiosmtpd logs every command at INFO; our receiver logs what matters.
    "loggers": {"mail.log": {"level": env_str("SMTP_PROTOCOL_LOG_LEVEL", "WARNING")}},
}

# --- Mailroom ----------------------------------------------------------------------------------
MAILROOM_HOSTNAME = env_str("MAILROOM_HOSTNAME", "mailroom.localhost")
MAILROOM_SMTP_HOST = env_str("MAILROOM_SMTP_HOST", "127.0.0.1")
MAILROOM_SMTP_PORT = env_int("MAILROOM_SMTP_PORT", 2525)
MAILROOM_MAX_MESSAGE_SIZE = env_int("MAILROOM_MAX_MESSAGE_SIZE", 25 * 1024 * 1024)
MAILROOM_MAX_RECIPIENTS = env_int("MAILROOM_MAX_RECIPIENTS", 100)
MAILROOM_SMTP_MAX_CONNECTIONS = env_int("MAILROOM_SMTP_MAX_CONNECTIONS", 1000)
MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP = env_int("MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP", 50)
MAILROOM_SMTP_COMMAND_TIMEOUT = env_int("MAILROOM_SMTP_COMMAND_TIMEOUT", 300)
MAILROOM_SMTP_DATA_TIMEOUT = env_int("MAILROOM_SMTP_DATA_TIMEOUT", 600)
# NOOP/VRFY/EXPN/HELP allowed per connection (Postfix: smtpd_junk_command_limit = 100).
MAILROOM_SMTP_JUNK_COMMAND_LIMIT = env_int("MAILROOM_SMTP_JUNK_COMMAND_LIMIT", 100)
# Several receiver processes may share one port (SO_REUSEPORT): one per core.
MAILROOM_SMTP_REUSE_PORT = env_bool("MAILROOM_SMTP_REUSE_PORT", False)
# On SIGTERM, how long transactions already in DATA may take to finish.
MAILROOM_SMTP_SHUTDOWN_GRACE_SECONDS = env_int("MAILROOM_SMTP_SHUTDOWN_GRACE_SECONDS", 30)
MAILROOM_SUBMISSION_PORT = env_int("MAILROOM_SUBMISSION_PORT", 2587)
# AUTH without STARTTLS, for loopback clients only (local apps, tests). Off by default.
MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK = env_bool(
    "MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK", False
)
MAILROOM_SMTP_TLS_CERT = env_str("MAILROOM_SMTP_TLS_CERT", "")
MAILROOM_SMTP_TLS_KEY = env_str("MAILROOM_SMTP_TLS_KEY", "")
MAILROOM_DEFAULT_QUOTA = env_int("MAILROOM_DEFAULT_QUOTA", 5 * 1024 * 1024 * 1024)
MAILROOM_INBOUND_DEDUPE_SECONDS = env_int("MAILROOM_INBOUND_DEDUPE_SECONDS", 24 * 3600)
MAILROOM_INGEST_BATCH_SIZE = env_int("MAILROOM_INGEST_BATCH_SIZE", 64)
MAILROOM_RECIPIENT_CACHE_SECONDS = env_int("MAILROOM_RECIPIENT_CACHE_SECONDS", 30)
MAILROOM_WEB_URL = env_str("MAILROOM_WEB_URL", "http://127.0.0.1:8000")

# --- Fault injection (tests/resilience; docs/operations.md "Fault tests") ----------------------
# Inert unless set: the receiver pauses MAILROOM_FAULT_DELAY seconds at the named point
# (mid_data, before_commit, after_commit, after_reply) so a test can kill -9 it there.
# Never honoured when MAILROOM_ENV=production.
MAILROOM_FAULT_POINT = env_str("MAILROOM_FAULT_POINT", "")
MAILROOM_FAULT_DELAY = env_int("MAILROOM_FAULT_DELAY", 5)

# --- Outbound delivery (mailcore/services/outbound) ---------------------------------------------
# host:port that receives all outbound mail (a smarthost); empty means MX lookup.
MAILROOM_RELAY_HOST = env_str("MAILROOM_RELAY_HOST", "")
MAILROOM_RELAY_MAX_CONNECTIONS = env_int("MAILROOM_RELAY_MAX_CONNECTIONS", 50)
MAILROOM_MAX_RETRY_AGE = env_int("MAILROOM_MAX_RETRY_AGE", 3 * 24 * 3600)
# Submissions from concurrent threads of one process share a transaction and its commit
# (mailcore.services.groupcommit); a lone caller still commits at once.
MAILROOM_SUBMIT_GROUP_COMMIT = env_bool("MAILROOM_SUBMIT_GROUP_COMMIT", True)
MAILROOM_RETRY_BASE_SECONDS = env_int("MAILROOM_RETRY_BASE_SECONDS", 60)
MAILROOM_RETRY_MAX_SECONDS = env_int("MAILROOM_RETRY_MAX_SECONDS", 3600)
MAILROOM_OUTBOUND_CONNECTIONS = env_int("MAILROOM_OUTBOUND_CONNECTIONS", 20)  # per dispatcher
MAILROOM_OUTBOUND_BATCH_SIZE = env_int("MAILROOM_OUTBOUND_BATCH_SIZE", 200)
MAILROOM_OUTBOUND_LEASE_SECONDS = env_int("MAILROOM_OUTBOUND_LEASE_SECONDS", 300)
MAILROOM_OUTBOUND_TICK_SECONDS = env_int("MAILROOM_OUTBOUND_TICK_SECONDS", 5)
MAILROOM_OUTBOUND_STARTTLS = env_bool("MAILROOM_OUTBOUND_STARTTLS", True)
MAILROOM_SMTP_CLIENT_TIMEOUT = env_int("MAILROOM_SMTP_CLIENT_TIMEOUT", 120)
MAILROOM_DESTINATION_MAX_CONNECTIONS = env_int("MAILROOM_DESTINATION_MAX_CONNECTIONS", 5)
MAILROOM_DESTINATION_MAX_PER_MINUTE = env_int("MAILROOM_DESTINATION_MAX_PER_MINUTE", 600)
MAILROOM_DESTINATION_LIMITS = env_str("MAILROOM_DESTINATION_LIMITS", "")  # gmail.com=20/3000,...
MAILROOM_SENDING_HOURLY_QUOTA = env_int("MAILROOM_SENDING_HOURLY_QUOTA", 0)  # 0 = unlimited
MAILROOM_SENDING_DAILY_QUOTA = env_int("MAILROOM_SENDING_DAILY_QUOTA", 0)
MAILROOM_VERP_ENABLED = env_bool("MAILROOM_VERP_ENABLED", True)
MAILROOM_VERP_LOCAL_PART = env_str("MAILROOM_VERP_LOCAL_PART", "bounces")
CELERY_BEAT_SCHEDULE["outbound-tick"] = {
    "task": "mailcore.tasks.outbound_tick",
    "schedule": float(MAILROOM_OUTBOUND_TICK_SECONDS),
}

# --- Analytics (analytics/) --------------------------------------------------------------------
# Tracking links and pixels are served from this base URL (a host that points at this app).
MAILROOM_TRACKING_BASE_URL = env_str("MAILROOM_TRACKING_BASE_URL", MAILROOM_WEB_URL)
MAILROOM_TRACKING_SALT = env_str("MAILROOM_TRACKING_SALT", "mailroom.tracking")
# Extra CIDRs whose opens are flagged as machine opens (comma separated).
MAILROOM_TRACKING_MACHINE_CIDRS = env_list("MAILROOM_TRACKING_MACHINE_CIDRS", "")
MAILROOM_EVENT_RETENTION_DAYS = env_int("MAILROOM_EVENT_RETENTION_DAYS", 90)
MAILROOM_EVENT_PARTITIONS_AHEAD = env_int("MAILROOM_EVENT_PARTITIONS_AHEAD", 7)
MAILROOM_ROLLUP_SETTLE_SECONDS = env_int("MAILROOM_ROLLUP_SETTLE_SECONDS", 10)
MAILROOM_ROLLUP_MINUTE_DAYS = env_int("MAILROOM_ROLLUP_MINUTE_DAYS", 7)
# Reputation guardrails (Amazon SES defaults): rates over the last GUARDRAIL_WINDOW_HOURS of
# delivery outcomes, once a domain has at least GUARDRAIL_MIN_VOLUME outcomes in the window.
MAILROOM_GUARDRAIL_WINDOW_HOURS = env_int("MAILROOM_GUARDRAIL_WINDOW_HOURS", 24)
MAILROOM_GUARDRAIL_MIN_VOLUME = env_int("MAILROOM_GUARDRAIL_MIN_VOLUME", 100)
MAILROOM_GUARDRAIL_BOUNCE_WARN = float(env_str("MAILROOM_GUARDRAIL_BOUNCE_WARN", "0.05"))
MAILROOM_GUARDRAIL_BOUNCE_PAUSE = float(env_str("MAILROOM_GUARDRAIL_BOUNCE_PAUSE", "0.10"))
MAILROOM_GUARDRAIL_COMPLAINT_WARN = float(env_str("MAILROOM_GUARDRAIL_COMPLAINT_WARN", "0.001"))
MAILROOM_GUARDRAIL_COMPLAINT_PAUSE = float(env_str("MAILROOM_GUARDRAIL_COMPLAINT_PAUSE", "0.005"))
CELERY_BEAT_SCHEDULE.update(
    {
        "analytics-live-broadcast": {"task": "analytics.tasks.broadcast_live", "schedule": 1.0},
        "analytics-fill-rollups": {"task": "analytics.tasks.fill_rollups", "schedule": 15.0},
        "analytics-guardrails": {"task": "analytics.tasks.check_guardrails", "schedule": 60.0},
        "analytics-partitions": {"task": "analytics.tasks.maintain_partitions", "schedule": 3600.0},
    }
)

# --- Retention (mailcore/services/retention.py; docs/operations.md "Retention") ----------------
# Days to keep each kind of data; 0 keeps it forever. Events use MAILROOM_EVENT_RETENTION_DAYS.
MAILROOM_TRASH_RETENTION_DAYS = env_int("MAILROOM_TRASH_RETENTION_DAYS", 30)  # since trashed
MAILROOM_SPAM_RETENTION_DAYS = env_int("MAILROOM_SPAM_RETENTION_DAYS", 30)  # since in Junk
MAILROOM_WEBHOOK_LOG_RETENTION_DAYS = env_int("MAILROOM_WEBHOOK_LOG_RETENTION_DAYS", 30)
MAILROOM_OUTBOUND_RETENTION_DAYS = env_int("MAILROOM_OUTBOUND_RETENTION_DAYS", 30)  # finished
MAILROOM_RETENTION_BATCH_SIZE = env_int("MAILROOM_RETENTION_BATCH_SIZE", 1000)  # rows per commit
MAILROOM_RETENTION_MAX_SECONDS = env_int("MAILROOM_RETENTION_MAX_SECONDS", 600)  # per run
MAILROOM_RETENTION_RUN_LOG_DAYS = env_int("MAILROOM_RETENTION_RUN_LOG_DAYS", 90)
CELERY_BEAT_SCHEDULE["mailcore-retention"] = {
    "task": "mailcore.tasks.apply_retention",
    "schedule": float(env_int("MAILROOM_RETENTION_INTERVAL_SECONDS", 3600)),
}

# --- API (api/) ---------------------------------------------------------------------------------
MAILROOM_API_KEY_RATE = env_int("MAILROOM_API_KEY_RATE", 2000)  # requests/s per key
MAILROOM_API_TENANT_RATE = env_int("MAILROOM_API_TENANT_RATE", 5000)  # requests/s per tenant
MAILROOM_API_KEY_CACHE_SECONDS = env_int("MAILROOM_API_KEY_CACHE_SECONDS", 5)  # revocation lag
MAILROOM_API_BURST_SECONDS = env_int("MAILROOM_API_BURST_SECONDS", 2)  # bucket = rate * this
MAILROOM_API_MAX_BODY_BYTES = env_int("MAILROOM_API_MAX_BODY_BYTES", 40 * 1024 * 1024)
MAILROOM_API_BACKLOG_CAP = env_int("MAILROOM_API_BACKLOG_CAP", 500_000)  # queued; 0 = no cap
MAILROOM_API_BACKLOG_RETRY_AFTER = env_int("MAILROOM_API_BACKLOG_RETRY_AFTER", 30)
MAILROOM_API_WEBHOOK_SETTLE_SECONDS = env_int("MAILROOM_API_WEBHOOK_SETTLE_SECONDS", 2)
MAILROOM_API_WEBHOOK_TIMEOUT = env_int("MAILROOM_API_WEBHOOK_TIMEOUT", 10)
MAILROOM_API_WEBHOOK_MAX_BACKOFF = env_int("MAILROOM_API_WEBHOOK_MAX_BACKOFF", 3600)
MAILROOM_API_WEBHOOK_DISABLE_AFTER = env_int("MAILROOM_API_WEBHOOK_DISABLE_AFTER", 24 * 3600)
CELERY_BEAT_SCHEDULE["api-deliver-webhooks"] = {
    "task": "api.tasks.deliver_webhooks",
    "schedule": 5.0,
}

# --- API idempotency keys (api/services/idempotency.py) -----------------------------------------
# A key is remembered this long after its first request; then it may be reused for a new one.
MAILROOM_API_IDEMPOTENCY_TTL_SECONDS = env_int("MAILROOM_API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600)
# A request running a key holds it this long; a retry after that takes over (the process died).
MAILROOM_API_IDEMPOTENCY_LEASE_SECONDS = env_int("MAILROOM_API_IDEMPOTENCY_LEASE_SECONDS", 60)
CELERY_BEAT_SCHEDULE["api-purge-idempotency-keys"] = {
    "task": "api.tasks.purge_idempotency_keys",
    "schedule": 3600.0,
}

# --- Domain DNS checks (api/services/dns_check.py) -----------------------------------------------
# Resolvers for the checks, "ip[:port]" comma separated; empty means the system's resolver.
MAILROOM_DNS_NAMESERVERS = env_list("MAILROOM_DNS_NAMESERVERS", "")
MAILROOM_DNS_TIMEOUT = float(env_str("MAILROOM_DNS_TIMEOUT", "3"))  # seconds per lookup
# SPF mechanisms every sending domain must publish (e.g. "include:_spf.example.net,ip4:…").
MAILROOM_SPF_MECHANISMS = env_list("MAILROOM_SPF_MECHANISMS", f"a:{MAILROOM_HOSTNAME}")
CELERY_BEAT_SCHEDULE["api-check-domains-dns"] = {
    "task": "api.tasks.check_domains_dns",
    "schedule": 24 * 3600.0,
}

# --- Observability (config/metrics.py, config/logs.py; docs/operations.md "Metrics", "Logs") ---
# text for people, json (one object per line, with request_id/queue_id/message_id) for machines.
LOG_FORMAT = env_str("LOG_FORMAT", "json" if MAILROOM_ENV == "production" else "text")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING["filters"] = {
    "context": {"()": "config.logs.ContextFilter"},
    "count_redis_errors": {"()": "config.logs.CountRedisErrors"},
}
LOGGING["loggers"]["django_redis.cache"] = {"filters": ["count_redis_errors"]}
LOGGING["formatters"]["json"] = {"()": "config.logs.JsonFormatter"}
LOGGING["handlers"]["console"].update(
    filters=["context"], formatter="json" if LOG_FORMAT == "json" else "plain"
)
# Celery replaces the root handlers with its own text format unless told not to.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
# /metrics answers requests from these networks (not through a proxy), or with this token
# (``Authorization: Bearer ...``) from anywhere.
MAILROOM_METRICS_TOKEN = env_secret("MAILROOM_METRICS_TOKEN", "")
MAILROOM_METRICS_ALLOWED_CIDRS = env_list("MAILROOM_METRICS_ALLOWED_CIDRS", "127.0.0.0/8,::1/128")
for _cidr in MAILROOM_METRICS_ALLOWED_CIDRS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"MAILROOM_METRICS_ALLOWED_CIDRS: {exc}") from exc
