"""Where the API is: flags, then the environment, then reconciler.toml, setting by setting;
Azure-style auth chosen by flag or by the Azure SDK's variables; a saved plan's binding."""

from __future__ import annotations

import openai
import pytest

from reconciler.backend import BackendFlags, bound_backend, resolve_backend
from reconciler.client import ClientSettings
from reconciler.config import ProjectConfig
from reconciler.errors import ConfigError
from reconciler.planning import Binding, Plan, PlanOptions

ENDPOINT = "https://my-resource.openai.azure.com/"
VERSION = "2024-05-01-preview"
AZURE_ENV = {
    "AZURE_OPENAI_ENDPOINT": ENDPOINT,
    "AZURE_OPENAI_API_KEY": "azure-key-0123456789",
    "OPENAI_API_VERSION": VERSION,
}
TOML = ProjectConfig(project="p", base_url="https://toml.example/openai", auth="azure",
                     api_version="2023-01-01", path="reconciler.toml")


NO_FLAGS = BackendFlags()
NO_FILE = ProjectConfig()


def binding(flags: BackendFlags = NO_FLAGS, config: ProjectConfig = NO_FILE,
            env: dict[str, str] | None = None) -> Binding:
    return resolve_backend(flags, config, env or {}).binding


def test_the_azure_sdk_variables_alone_select_azure_as_the_sdk_builds_it() -> None:
    sdk = openai.AzureOpenAI(azure_endpoint=ENDPOINT, api_key="x", api_version=VERSION)
    chosen = binding(env=AZURE_ENV)
    assert chosen == Binding(str(sdk.base_url).rstrip("/"), "azure", VERSION)
    assert chosen.base_url == "https://my-resource.openai.azure.com/openai"


def test_the_key_is_the_azure_sdk_one_with_azure_auth_and_openais_with_bearer() -> None:
    env = {"OPENAI_API_KEY": "openai-key-0123456789", **AZURE_ENV}
    assert ClientSettings.from_env(env, auth="azure").api_key == "azure-key-0123456789"
    assert ClientSettings.from_env(env, auth="bearer").api_key == "openai-key-0123456789"
    only_openai = {"OPENAI_API_KEY": "openai-key-0123456789"}
    assert ClientSettings.from_env(only_openai, auth="azure").api_key == "openai-key-0123456789"


@pytest.mark.parametrize("variable", ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"])
def test_either_azure_variable_selects_azure_auth(variable: str) -> None:
    env = {variable: AZURE_ENV[variable], "OPENAI_API_VERSION": VERSION,
           "OPENAI_BASE_URL": "https://gateway.example/openai"}
    chosen = binding(env=env)
    assert chosen.auth == "azure" and chosen.api_version == VERSION
    expected = "https://my-resource.openai.azure.com/openai" if "ENDPOINT" in variable else (
        "https://gateway.example/openai")
    assert chosen.base_url == expected


def test_flags_win_over_the_environment_which_wins_over_the_file() -> None:
    flags = BackendFlags(base_url="https://flag.example/openai", api_version="2025-01-01")
    assert binding(flags, TOML, AZURE_ENV) == Binding("https://flag.example/openai", "azure",
                                                      "2025-01-01")
    assert binding(BackendFlags(), TOML, AZURE_ENV) == Binding(
        "https://my-resource.openai.azure.com/openai", "azure", VERSION)
    assert binding(BackendFlags(), TOML, {}) == Binding("https://toml.example/openai", "azure",
                                                        "2023-01-01")


def test_each_setting_comes_from_the_strongest_source_that_gives_it() -> None:
    # the URL from the file, the auth style from the key's variable, the version from a flag
    config = ProjectConfig(project="p", base_url="https://toml.example/openai", path="r.toml")
    env = {"AZURE_OPENAI_API_KEY": "azure-key-0123456789"}
    chosen = binding(BackendFlags(api_version="2025-01-01"), config, env)
    assert chosen == Binding("https://toml.example/openai", "azure", "2025-01-01")


def test_auth_bearer_flag_reads_only_openais_variables() -> None:
    env = {**AZURE_ENV, "OPENAI_BASE_URL": "https://compatible.example/v1"}
    assert binding(BackendFlags(auth="bearer"), env=env) == Binding(
        "https://compatible.example/v1", "bearer", None)
    assert binding(BackendFlags(auth="bearer"), env=AZURE_ENV) == Binding(
        "https://api.openai.com/v1", "bearer", None)


def test_without_any_azure_sign_it_stays_bearer() -> None:
    env = {"OPENAI_BASE_URL": "https://compatible.example/v1", "OPENAI_API_VERSION": VERSION}
    assert binding(env=env) == Binding("https://compatible.example/v1", "bearer", None)


@pytest.mark.parametrize(
    ("flags", "env", "fragment"),
    [
        (BackendFlags(api_version=VERSION), {}, "--api-version applies only with azure auth"),
        (BackendFlags(auth="azure"), {"OPENAI_API_VERSION": VERSION},
         "azure auth (--auth azure) needs the resource's endpoint"),
        (BackendFlags(), {"AZURE_OPENAI_API_KEY": "k" * 10, "OPENAI_BASE_URL": "https://h/x"},
         "azure auth (AZURE_OPENAI_API_KEY is set) needs an api-version: pass --api-version, "
         "set OPENAI_API_VERSION"),
    ],
)
def test_an_incomplete_choice_is_one_sentence(flags: BackendFlags, env: dict[str, str],
                                              fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        binding(flags, env=env)
    assert fragment in str(caught.value)


def saved(backend: Binding) -> Plan:
    return Plan(PlanOptions(project="p"), (), {}, backend=backend)


AZURE_PLAN = saved(Binding("https://my-resource.openai.azure.com/openai", "azure", VERSION))
BEARER_PLAN = saved(Binding("https://compatible.example/v1", "bearer", None))


def test_a_saved_azure_plan_applies_with_the_environment_it_was_made_with() -> None:
    backend = bound_backend(AZURE_PLAN, BackendFlags(), ProjectConfig(), AZURE_ENV)
    assert backend.binding == AZURE_PLAN.backend
    # made from the file's URL with auth from the environment: the file's default auth is not
    # a choice, the environment's is
    config = ProjectConfig(project="p", base_url=ENDPOINT + "openai", path="r.toml")
    env = {"AZURE_OPENAI_API_KEY": "azure-key-0123456789", "OPENAI_API_VERSION": VERSION}
    made = resolve_backend(BackendFlags(), config, env).binding
    assert bound_backend(saved(made), BackendFlags(), config, env).binding == made


@pytest.mark.parametrize(
    ("plan", "flags", "env", "source"),
    [
        (AZURE_PLAN, BackendFlags(auth="bearer"), AZURE_ENV, "--auth points at"),
        (AZURE_PLAN, BackendFlags(api_version="2025-01-01"), AZURE_ENV, "--api-version"),
        (AZURE_PLAN, BackendFlags(), {**AZURE_ENV, "OPENAI_API_VERSION": "2025-01-01"},
         "OPENAI_API_VERSION points at"),
        (BEARER_PLAN, BackendFlags(auth="azure", api_version=VERSION), {}, "--auth"),
        (BEARER_PLAN, BackendFlags(), {"AZURE_OPENAI_API_KEY": "azure-key-0123456789"},
         "AZURE_OPENAI_API_KEY points at https://compatible.example/v1 (azure auth"),
        (BEARER_PLAN, BackendFlags(), {"AZURE_OPENAI_ENDPOINT": ENDPOINT},
         "AZURE_OPENAI_ENDPOINT points at https://my-resource.openai.azure.com/openai"),
    ],
)
def test_a_saved_plan_refuses_another_auth_style_or_version(
    plan: Plan, flags: BackendFlags, env: dict[str, str], source: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        bound_backend(plan, flags, ProjectConfig(), env)
    message = str(caught.value)
    assert message.startswith(f"the saved plan was computed against {plan.backend.describe()}"
                              if plan.backend else "")
    assert source in message
