"""Where and how to reach the API, checked before the first request is sent.

The host is trusted for nothing: the base URL must be plain http(s) without credentials, a
query or a fragment; the key goes over plain http only to this machine unless the user opts
in (and is then warned); TLS is always verified; header values and limits are refused before
they could fail, or leak, half-way through a run.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import ssl
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import httpx

from reconciler.client.text import _MIB, sanitize
from reconciler.errors import ConfigError

DEFAULT_BASE_URL = "https://api.openai.com/v1"

AuthStyle: TypeAlias = Literal["bearer", "azure"]


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to reach the API. ``api_key`` is kept out of ``repr``.

    ``timeout`` is the deadline of one attempt: connect, send and the whole answer.
    ``max_retry_wait`` caps any wait a server suggests (``retry-after``, ``retry-after-ms``);
    ``max_retry_time`` bounds one request, its retries and waits included (its first attempt
    always gets the whole ``timeout``). ``max_response_bytes`` caps an answer after
    decompression, ``max_json_depth`` its nesting, ``max_pages`` the pages of one thread's run
    list. Plain http carries the key only to loopback hosts unless ``allow_insecure_http``.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    organization: str | None = None
    project: str | None = None
    auth: AuthStyle = "bearer"
    api_version: str | None = None  # Azure-style hosts: sent as ?api-version=
    concurrency: int = 16
    max_retries: int = 4
    timeout: float = 60.0
    max_backoff: float = 8.0
    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    max_retry_wait: float = 60.0
    max_retry_time: float = 300.0
    max_response_bytes: int = 32 * _MIB
    max_json_depth: int = 128
    max_pages: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClientSettings:
        """The official SDKs' variable names; explicit overrides (flags, config) win.

        With ``auth="azure"`` the key is ``AZURE_OPENAI_API_KEY`` (``openai.AzureOpenAI``'s),
        else ``OPENAI_API_KEY``; bearer auth sends only ``OPENAI_API_KEY``.
        """
        env = os.environ if env is None else env
        key = env.get("OPENAI_API_KEY") or None
        if overrides.get("auth") == "azure":
            key = env.get("AZURE_OPENAI_API_KEY") or key
        values: dict[str, Any] = {
            "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            "api_key": key,
            "organization": env.get("OPENAI_ORG_ID") or None,
            "project": env.get("OPENAI_PROJECT_ID") or None,
            "ca_bundle": env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# -- base URL ------------------------------------------------------------------------------


def _shown_url(url: str) -> str:
    """The URL as a message may show it: sanitized, any user name and password hidden."""
    text = sanitize(url, 200)
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            text = f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
    return text


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _authority(hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port is None else f"{host}:{port}"


def validate_base_url(url: str, *, allow_insecure_http: bool = False, has_key: bool = True) -> str:
    """The base URL normalized (lower-case scheme and host, no trailing ``/``), or ConfigError.

    Plain http carries the API key only to loopback hosts (127.0.0.0/8, ::1, ``localhost``)
    unless ``allow_insecure_http``; without a key any host will do.
    """
    shown = _shown_url(url)
    text = url.strip()
    if not text:
        raise ConfigError("the base URL is empty")
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in text):
        raise ConfigError(
            f"base URL {shown!r} is not a valid URL (it contains spaces or control characters)"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise ConfigError(f"base URL {shown!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"base URL {shown!r} must start with http:// or https://")
    if "@" in parts.netloc:
        raise ConfigError(
            f"base URL {shown!r} must not carry a user name or password; "
            "give the key in OPENAI_API_KEY"
        )
    if not hostname:
        raise ConfigError(f"base URL {shown!r} has no host")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ConfigError(f"base URL {shown!r} must not have a query or a fragment")
    try:
        httpx.URL(text)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise ConfigError(f"base URL {shown!r} is not a valid URL") from None
    authority = _authority(hostname, port)
    if scheme == "http" and has_key and not allow_insecure_http and not _is_loopback(hostname):
        raise ConfigError(
            f"refusing to send the API key over plain http to {sanitize(authority, 100)}; "
            "use https, or pass --allow-insecure-http"
        )
    return f"{scheme}://{authority}{parts.path.rstrip('/')}"


def _v1_hint(normalized: str) -> str | None:
    """What a 404 adds when the base URL lacks the ``/v1`` the API lives under."""
    path = urlsplit(normalized).path
    segments = [s.lower() for s in path.split("/") if s]
    if (segments and segments[-1] == "v1") or "openai" in segments:
        return None
    return f"the base URL has no /v1: did you mean {normalized}/v1?"


def insecure_warning(settings: ClientSettings) -> str | None:
    """The warning to print when the key goes over plain http to a host not on this machine."""
    if not settings.api_key or not settings.allow_insecure_http:
        return None
    try:
        url = validate_base_url(settings.base_url, allow_insecure_http=True)
    except ConfigError:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return None
    host = sanitize(_authority(parts.hostname or "", parts.port), 100)
    return (
        f"warning: the API key is sent unencrypted over plain http to {host} "
        "(--allow-insecure-http); anyone on the path can read it"
    )


# -- TLS, headers and limits ---------------------------------------------------------------


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # certifi's CAs, as httpx would use; built once


def _api_tls(ca_bundle: str | None) -> ssl.SSLContext | Callable[[], ssl.SSLContext]:
    """The TLS context of reconciler's transport: a CA bundle is read now (a bad one fails
    before any request); certifi's default is built at the first https connection (25 ms of
    start-up that a plain-http API never needs)."""
    return _default_ssl_context if ca_bundle is None else _ssl_context(ca_bundle)


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    if ca_bundle is None:
        return _default_ssl_context()
    try:
        if os.path.isdir(ca_bundle):
            return ssl.create_default_context(capath=ca_bundle)
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = sanitize(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, 120)
        raise ConfigError(
            f"the CA bundle {sanitize(ca_bundle, 200)} cannot be used ({reason})"
        ) from None


def _check_header_value(value: str | None, what: str) -> None:
    if value is not None and not all(0x21 <= ord(char) <= 0x7E for char in value):
        raise ConfigError(
            f"the {what} contains characters that cannot be sent in an HTTP header "
            "(spaces, control characters or non-ASCII)"
        )


def _check_settings(settings: ClientSettings) -> None:
    numbers: list[tuple[float, str, bool]] = [  # (value, name, may it be zero)
        (settings.timeout, "request timeout", False),
        (settings.max_retry_wait, "max_retry_wait", True),
        (settings.max_retry_time, "max_retry_time", True),
        (settings.max_backoff, "max_backoff", True),
    ]
    for value, name, zero_ok in numbers:
        if (not isinstance(value, int | float) or math.isnan(value) or value < 0
                or (value == 0 and not zero_ok)):
            kind = "non-negative" if zero_ok else "positive"
            raise ConfigError(f"the {name} must be a {kind} number of seconds, not {value!r}")
    for count, name in ((settings.max_response_bytes, "max_response_bytes"),
                        (settings.max_json_depth, "max_json_depth"),
                        (settings.max_pages, "max_pages")):
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"{name} must be a positive whole number, not {count!r}")
