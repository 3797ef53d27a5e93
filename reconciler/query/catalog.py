"""StackQL's ``openai.assistants.runs`` page as data: fields, methods and writable columns.

Kept here, not fetched, so that DESCRIBE and SHOW METHODS work offline and answer exactly
what the provider documents; the parser and executor validate names against it.
"""

from __future__ import annotations

from dataclasses import dataclass

RESOURCE = "openai.assistants.runs"
RESOURCE_ALIASES = frozenset({RESOURCE, "runs", "assistants.runs"})


@dataclass(frozen=True)
class Field:
    """One column of the resource, as the StackQL page lists it."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Method:
    """One method of the resource and the SQL verb that reaches it."""

    name: str
    required_params: str
    sql_verb: str


FIELDS: tuple[Field, ...] = (
    Field("id", "string", "The identifier, which can be referenced in API endpoints."),
    Field("assistant_id", "string",
          "The ID of the assistant used for execution of this run."),
    Field("cancelled_at", "integer",
          "The Unix timestamp (in seconds) for when the run was cancelled."),
    Field("completed_at", "integer",
          "The Unix timestamp (in seconds) for when the run was completed."),
    Field("created_at", "integer",
          "The Unix timestamp (in seconds) for when the run was created."),
    Field("expires_at", "integer",
          "The Unix timestamp (in seconds) for when the run will expire."),
    Field("failed_at", "integer",
          "The Unix timestamp (in seconds) for when the run failed."),
    Field("incomplete_details", "object",
          "Details on why the run is incomplete. Will be `null` if the run is not incomplete."),
    Field("instructions", "string",
          "The instructions that the assistant used for this run."),
    Field("last_error", "object",
          "The last error associated with this run. Will be `null` if there are no errors."),
    Field("max_completion_tokens", "integer",
          "The maximum number of completion tokens specified to have been used over the "
          "course of the run."),
    Field("max_prompt_tokens", "integer",
          "The maximum number of prompt tokens specified to have been used over the course "
          "of the run."),
    Field("metadata", "object",
          "Set of 16 key-value pairs that can be attached to an object. This can be useful for "
          "storing additional information about the object in a structured format. Keys can "
          "be a maximum of 64 characters long and values can be a maximum of 512 characters "
          "long."),
    Field("model", "string", "The model that the assistant used for this run."),
    Field("object", "string", "The object type, which is always `thread.run`."),
    Field("parallel_tool_calls", "boolean",
          "Whether to enable parallel function calling during tool use."),
    Field("required_action", "object",
          "Details on the action required to continue the run. Will be `null` if no action "
          "is required."),
    Field("response_format", "",
          "Specifies the format that the model must output. Compatible with GPT-4o, GPT-4 "
          "Turbo, and all GPT-3.5 Turbo models since `gpt-3.5-turbo-1106`. Setting to "
          '`{ "type": "json_schema", "json_schema": {...} }` enables Structured Outputs which '
          "ensures the model will match your supplied JSON schema. Learn more in the "
          'Structured Outputs guide. Setting to `{ "type": "json_object" }` enables JSON '
          "mode, which ensures the message the model generates is valid JSON. Important: when "
          "using JSON mode, you must also instruct the model to produce JSON yourself via a "
          "system or user message. Without this, the model may generate an unending stream of "
          "whitespace until the generation reaches the token limit, resulting in a "
          'long-running and seemingly "stuck" request. Also note that the message content may '
          'be partially cut off if `finish_reason="length"`, which indicates the generation '
          "exceeded `max_tokens` or the conversation exceeded the max context length."),
    Field("started_at", "integer",
          "The Unix timestamp (in seconds) for when the run was started."),
    Field("status", "string",
          "The status of the run, which can be either `queued`, `in_progress`, "
          "`requires_action`, `cancelling`, `cancelled`, `failed`, `completed`, `incomplete`, "
          "or `expired`."),
    Field("temperature", "number",
          "The sampling temperature used for this run. If not set, defaults to 1."),
    Field("thread_id", "string",
          "The ID of the thread that was executed on as a part of this run."),
    Field("tool_choice", "",
          "Controls which (if any) tool is called by the model. `none` means the model will "
          "not call any tools and instead generates a message. `auto` is the default value and "
          "means the model can pick between generating a message or calling one or more tools. "
          "`required` means the model must call one or more tools before responding to the "
          'user. Specifying a particular tool like `{"type": "file_search"}` or `{"type": '
          '"function", "function": {"name": "my_function"}}` forces the model to call that '
          "tool."),
    Field("tools", "array",
          "The list of tools that the assistant used for this run."),
    Field("top_p", "number",
          "The nucleus sampling value used for this run. If not set, defaults to 1."),
    Field("truncation_strategy", "object",
          "Controls for how a thread will be truncated prior to the run. Use this to control "
          "the intial context window of the run."),
    Field("usage", "object",
          "Usage statistics related to the run. This value will be `null` if the run is not in "
          "a terminal state (i.e. `in_progress`, `queued`, etc.)."),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_TYPES: dict[str, str] = {f.name: f.type for f in FIELDS}

METHODS: tuple[Method, ...] = (
    Method("get_run", "run_id, thread_id", "SELECT"),
    Method("list_runs", "thread_id", "SELECT"),
    Method("create_run", "thread_id, data__assistant_id", "INSERT"),
    Method("modify_run", "run_id, thread_id", "UPDATE"),
    Method("cancel_run", "run_id, thread_id", "EXEC"),
    Method("submit_tool_ouputs_to_run", "run_id, thread_id, data__tool_outputs", "EXEC"),
)

CANCEL_METHOD = "cancel_run"
SUBMIT_METHOD = "submit_tool_ouputs_to_run"  # StackQL's spelling, kept for compatibility
EXEC_METHODS: dict[str, str] = {
    "cancel_run": CANCEL_METHOD,
    "submit_tool_ouputs_to_run": SUBMIT_METHOD,
    "submit_tool_outputs_to_run": SUBMIT_METHOD,
}

# CreateRunRequest fields (``data__X`` columns of INSERT) and the JSON type each takes.
CREATE_FIELDS: dict[str, str] = {
    "assistant_id": "string",
    "model": "string",
    "reasoning_effort": "string",
    "instructions": "string",
    "additional_instructions": "string",
    "additional_messages": "array",
    "tools": "array",
    "metadata": "object",
    "temperature": "number",
    "top_p": "number",
    "stream": "boolean",
    "max_prompt_tokens": "integer",
    "max_completion_tokens": "integer",
    "truncation_strategy": "object",
    "tool_choice": "string|object",
    "parallel_tool_calls": "boolean",
    "response_format": "string|object",
}
