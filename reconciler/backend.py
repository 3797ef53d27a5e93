"""Where the API is: flags, environment and ``reconciler.toml`` turned into one backend.

The application layer between the command line and the client: it decides the base URL, the
auth style and the project, opens the client (or the embedded emulator), and binds a saved plan
to the backend it was computed against, so that ``apply PLANFILE`` talks to that host and no
other. Nothing here parses flags (that is the CLI's) or prints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reconciler.client import (
    DEFAULT_BASE_URL,
    AssistantsClient,
    ClientSettings,
    insecure_warning,
    validate_base_url,
)
from reconciler.config import CONFIG_FILE, AuthMode, ProjectConfig, project_name_problem
from reconciler.defaults import DEFAULT_EMULATOR_STATE
from reconciler.errors import ConfigError
from reconciler.planning import Binding, Plan

EMULATOR_SCHEME = "emulator:"
DEFAULT_CONCURRENCY = 16
DEFAULT_REQUEST_TIMEOUT = 60.0
#: The Azure SDK's variables (``openai.AzureOpenAI``): either one says the host is Azure's.
AZURE_KEY_VARIABLE = "AZURE_OPENAI_API_KEY"
AZURE_ENDPOINT_VARIABLE = "AZURE_OPENAI_ENDPOINT"
API_VERSION_VARIABLE = "OPENAI_API_VERSION"


@dataclass(frozen=True)
class BackendFlags:
    """What the command line said about the backend (``None``: not said)."""

    emulator: bool = False
    emulator_state: str = DEFAULT_EMULATOR_STATE
    base_url: str | None = None
    concurrency: int | None = None
    project: str | None = None
    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    auth: AuthMode | None = None
    api_version: str | None = None


@dataclass(frozen=True)
class Backend:
    """One resolved backend: the embedded emulator's state file, or an HTTP base URL."""

    binding: Binding
    concurrency: int
    emulator_state: str | None = None  # set for the embedded emulator
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    ca_bundle: str | None = None  # None: SSL_CERT_FILE, else certifi's CAs (httpx's default)
    allow_insecure_http: bool = False

    @property
    def journal_key(self) -> str:
        """The name of this backend in the intent journal (never the key)."""
        return self.binding.base_url


def resolve_backend(
    flags: BackendFlags, config: ProjectConfig, env: Mapping[str, str] | None = None
) -> Backend:
    """The backend flags, environment and config select: flags win, then the environment,
    then ``reconciler.toml``, each setting on its own (the README's configuration table)."""
    env = os.environ if env is None else env
    concurrency = flags.concurrency or config.concurrency or DEFAULT_CONCURRENCY
    transport = _transport(flags, config)
    if flags.emulator:
        state = os.path.abspath(flags.emulator_state)
        return Backend(Binding(EMULATOR_SCHEME + state), concurrency, state, **transport)
    auth, because = _auth(flags, config, env)
    says = [say for say in (_flags_say(flags), _env_say(env, auth), _config_say(config))
            if say is not None]
    base_url = next((say.base_url for say in says if say.base_url), None)
    if auth == "bearer":
        if flags.api_version:
            raise ConfigError("--api-version applies only with azure auth (--auth azure)")
        return Backend(Binding(base_url or DEFAULT_BASE_URL), concurrency, None, **transport)
    version = next((say.api_version for say in says if say.api_version), None)
    if base_url is None:
        raise ConfigError(
            f"azure auth ({because}) needs the resource's endpoint: pass --base-url, set "
            f"{AZURE_ENDPOINT_VARIABLE}, or base_url in reconciler.toml"
        )
    if version is None:
        raise ConfigError(
            f"azure auth ({because}) needs an api-version: pass --api-version, set "
            f"{API_VERSION_VARIABLE}, or api_version in reconciler.toml"
        )
    return Backend(Binding(base_url, "azure", version), concurrency, None, **transport)


@dataclass(frozen=True)
class _Say:
    """What one source (the flags, the environment, reconciler.toml) says about the host;
    None where it says nothing."""

    source: str
    base_url: str | None = None
    auth: AuthMode | None = None
    api_version: str | None = None

    def binding(self, bound: Binding, taken: set[str]) -> Binding:
        """The backend this source points at, taking from ``bound`` what it does not say and
        what a stronger source already said (the ``taken`` settings, which it adds its own to)."""
        mine = {name: value for name, value in (("base_url", self.base_url), ("auth", self.auth),
                                                ("api_version", self.api_version))
                if value and name not in taken}
        taken.update(mine)
        auth = mine.get("auth") or bound.auth
        version = (mine.get("api_version") or bound.api_version) if auth == "azure" else None
        return Binding(mine.get("base_url") or bound.base_url, auth, version)


def _azure_variable(env: Mapping[str, str]) -> str | None:
    """The Azure SDK variable set in ``env`` that says the host is Azure's, if any."""
    return next((name for name in (AZURE_ENDPOINT_VARIABLE, AZURE_KEY_VARIABLE)
                 if env.get(name)), None)


def _auth(flags: BackendFlags, config: ProjectConfig,
          env: Mapping[str, str]) -> tuple[AuthMode, str]:
    """The auth style and what chose it: ``--auth``, the Azure SDK's variables, the file."""
    if flags.auth:
        return flags.auth, f"--auth {flags.auth}"
    azure = _azure_variable(env)
    if azure:
        return "azure", f"{azure} is set"
    if config.auth == "azure":
        return "azure", f"auth in {config.path or CONFIG_FILE}"
    return "bearer", "the default"


def _flags_say(flags: BackendFlags) -> _Say | None:
    named = [name for name, value in (("--base-url", flags.base_url), ("--auth", flags.auth),
                                      ("--api-version", flags.api_version)) if value]
    if not named:
        return None
    return _Say(" and ".join(named), flags.base_url, flags.auth, flags.api_version)


def _env_say(env: Mapping[str, str], auth: AuthMode) -> _Say | None:
    """The environment read for ``auth`` as the SDKs read it: for azure, ``openai.AzureOpenAI``'s
    variables first (``AZURE_OPENAI_ENDPOINT`` + ``/openai``, ``OPENAI_API_VERSION``), then
    ``OPENAI_BASE_URL``; for bearer, ``OPENAI_BASE_URL`` only."""
    azure = _azure_variable(env) if auth == "azure" else None
    endpoint = env.get(AZURE_ENDPOINT_VARIABLE) if azure else None
    base_url = f"{endpoint.rstrip('/')}/openai" if endpoint else env.get("OPENAI_BASE_URL")
    version = env.get(API_VERSION_VARIABLE) if auth == "azure" else None
    named = [name for name, used in (
        (AZURE_ENDPOINT_VARIABLE, endpoint), ("OPENAI_BASE_URL", base_url and not endpoint),
        (AZURE_KEY_VARIABLE, azure and env.get(AZURE_KEY_VARIABLE)),
        (API_VERSION_VARIABLE, version),
    ) if used]
    if not named:
        return None
    return _Say(" and ".join(named), base_url or None, "azure" if azure else None,
                version or None)


def _config_say(config: ProjectConfig) -> _Say | None:
    if not config.path or not (config.base_url or config.auth != "bearer" or config.api_version):
        return None
    return _Say(config.path, config.base_url, config.auth, config.api_version)


def _transport(flags: BackendFlags, config: ProjectConfig) -> dict[str, Any]:
    """How requests travel: timeout, CA file, plain-http opt-in (flags win over the file)."""
    return {
        "request_timeout": config.request_timeout or DEFAULT_REQUEST_TIMEOUT,
        "ca_bundle": flags.ca_bundle or config.ca_bundle,
        "allow_insecure_http": flags.allow_insecure_http or config.allow_insecure_http,
    }


def bound_backend(
    saved: Plan, flags: BackendFlags, config: ProjectConfig,
    env: Mapping[str, str] | None = None,
) -> Backend:
    """The backend of a saved plan; refuses flags, environment or config that point elsewhere.

    A plan read from one host and applied to another would act on runs it never saw (and send
    the key where the plan was never computed), so every explicit choice (of base URL, auth
    style or api-version) must agree with it.
    """
    env = os.environ if env is None else env
    bound = saved.backend
    if bound is None:
        raise ConfigError("the saved plan does not say which backend it was computed against")
    concurrency = flags.concurrency or config.concurrency or DEFAULT_CONCURRENCY
    chosen: list[tuple[str, Binding]] = []
    if flags.emulator:
        state = os.path.abspath(flags.emulator_state)
        chosen.append(("--emulator", Binding(EMULATOR_SCHEME + state)))
    # the environment is read as resolve_backend would read it: for --auth when given, for
    # azure when an Azure SDK variable is set, else for the plan's own auth style
    env_auth: AuthMode = flags.auth or (
        "azure" if _azure_variable(env) or bound.auth == "azure" else "bearer")
    taken: set[str] = set()
    for say in (_flags_say(flags), _env_say(env, env_auth), _config_say(config)):
        if say is not None:
            chosen.append((say.source, say.binding(bound, taken)))
    for source, binding in chosen:
        if not same_backend(binding, bound):
            raise ConfigError(
                f"the saved plan was computed against {bound.describe()}, but {source} points "
                f"at {binding.describe()}: apply it against the backend it was made for, or "
                "run `reconciler plan` again there"
            )
    project = flags.project or config.project
    if project and project != saved.options.project:
        source = "--project" if flags.project else (config.path or "reconciler.toml")
        raise ConfigError(
            f"the saved plan belongs to project {saved.options.project!r}, but {source} says "
            f"{project!r}"
        )
    transport = _transport(flags, config)
    if bound.base_url.startswith(EMULATOR_SCHEME):
        state = bound.base_url.removeprefix(EMULATOR_SCHEME)
        return Backend(bound, concurrency, state, **transport)
    return Backend(bound, concurrency, None, **transport)


def same_backend(a: Binding, b: Binding) -> bool:
    """Whether two bindings name one backend (URLs compared as URLs, not as strings)."""
    return (_normal_url(a.base_url), a.auth, a.api_version or None) == (
        _normal_url(b.base_url), b.auth, b.api_version or None
    )


def _normal_url(url: str) -> str:
    if url.startswith(EMULATOR_SCHEME):
        return url
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        return url.strip()
    port = f":{parsed.port}" if parsed.port is not None else ""
    path = parsed.path.rstrip("/")
    return f"{parsed.scheme.lower()}://{parsed.host.lower()}{port}{path}"


def resolve_project(flags: BackendFlags, config: ProjectConfig) -> str:
    """The owning project: ``--project``, then ``project`` in ``reconciler.toml``."""
    if flags.project:
        problem = project_name_problem(flags.project)
        if problem:
            raise ConfigError(f"--project {problem}")
    project = flags.project or config.project
    if not project:
        raise ConfigError(
            "no project name: add reconciler.toml with `project = \"NAME\"` beside the "
            "manifests, or pass --project NAME"
        )
    return project


def client_settings(backend: Backend) -> ClientSettings:
    """The client's settings for ``backend``: environment for the key, the rest resolved.

    Checks the base URL (and plain http with a key) before any request is made.
    """
    if backend.emulator_state is not None:
        return ClientSettings(base_url="http://emulator/v1", concurrency=backend.concurrency,
                              timeout=backend.request_timeout)
    binding = backend.binding
    overrides: dict[str, Any] = {
        "concurrency": backend.concurrency, "base_url": binding.base_url, "auth": binding.auth,
        "timeout": backend.request_timeout, "ca_bundle": backend.ca_bundle,
        "allow_insecure_http": backend.allow_insecure_http,
    }
    if binding.api_version:
        overrides["api_version"] = binding.api_version
    settings = ClientSettings.from_env(**overrides)
    if not settings.api_key and settings.base_url.rstrip("/") == DEFAULT_BASE_URL:
        raise ConfigError(
            "OPENAI_API_KEY is not set (set it, point OPENAI_BASE_URL at a compatible host, "
            "or use --emulator)"
        )
    validate_base_url(settings.base_url, allow_insecure_http=settings.allow_insecure_http,
                      has_key=bool(settings.api_key))
    return settings


def transport_warning(backend: Backend) -> str | None:
    """What the user must be told before the first request (the key over plain http)."""
    return insecure_warning(client_settings(backend))


@contextlib.asynccontextmanager
async def open_client(backend: Backend) -> AsyncIterator[AssistantsClient]:
    """The API client for this invocation: embedded emulator or a real base URL."""
    settings = client_settings(backend)
    if backend.emulator_state is not None:
        transport = _embedded_emulator(backend.emulator_state)
        async with AssistantsClient(settings, transport=transport) as client:
            yield client
        return
    async with AssistantsClient(settings) as client:
        yield client


def _embedded_emulator(state_file: str) -> httpx.AsyncBaseTransport:
    from reconciler.emulator import (  # imported here: only --emulator needs the server side
        DEMO_FIXTURES_PATH,
        EmulatorConfig,
        RunTiming,
        create_app,
        load_fixtures,
    )

    path = Path(state_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{state_file}: cannot create its folder ({exc})") from exc
    fixtures = load_fixtures(DEMO_FIXTURES_PATH)
    config = EmulatorConfig(state_path=str(path), timing=RunTiming.fast(), fixtures=fixtures)
    return httpx.ASGITransport(app=create_app(config))
