"""``reconciler emulator serve``'s options, as the command line gives them, → one config.

Every spec is parsed here (``ValueError`` for a bad one, naming it), so the command only
forwards its flags and serves what comes back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reconciler.emulator.config import (
    EmulatorConfig,
    parse_faults,
    parse_latency,
    parse_path_prefix,
    parse_rate_limit,
    parse_timing,
)
from reconciler.emulator.fixtures import DEMO_FIXTURES_PATH, load_fixtures


def serve_config(
    *, state: str | None = None, latency: str | None = None, rate_limit: str | None = None,
    faults: str | None = None, seed: int = 0, timing: str = "realistic",
    fixtures: str | None = None, demo: bool = False, api_key_env: str | None = None,
    auth: str = "bearer", path_prefix: str | None = None, env: Mapping[str, str] | None = None,
) -> EmulatorConfig:
    """The emulator the flags describe; ``--fixtures`` wins over ``--demo``.

    ``api_key_env`` names the environment variable holding the key clients must send (as a
    bearer token, or as Azure's ``api-key`` with ``auth="azure"``, which also requires an
    ``api-version``); ``path_prefix`` is where the API is served (default ``/v1``).
    """
    if auth not in {"bearer", "azure"}:
        raise ValueError(f"--auth {auth}: use bearer or azure")
    env = os.environ if env is None else env
    api_key = None
    if api_key_env:
        api_key = env.get(api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env {api_key_env}: that environment variable is empty")
    fixture_path = fixtures or (str(DEMO_FIXTURES_PATH) if demo else None)
    return EmulatorConfig(
        state_path=state,
        api_key=api_key,
        seed=seed,
        timing=parse_timing(timing),
        latency=parse_latency(latency) if latency else None,
        rate_limit=parse_rate_limit(rate_limit) if rate_limit else None,
        faults=parse_faults(faults or ""),
        fixtures=load_fixtures(fixture_path) if fixture_path else None,
        auth="azure" if auth == "azure" else "bearer",
        path_prefix="/v1" if path_prefix is None else parse_path_prefix(path_prefix),
    )
