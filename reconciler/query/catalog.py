"""StackQL's ``openai.assistants.runs`` page as data: fields, methods and writable columns.

Kept here, not fetched, so that DESCRIBE and SHOW work offline and answer exactly what the
provider documents (the page's words, its ``<br />`` as newlines); the compiler checks names
against it.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE = "openai.assistants"
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
    """One method of the resource, the SQL verb that reaches it, and what it does.

    ``aliases`` are the names the newer StackQL provider gives the same operation;
    ``description`` is the operation's summary in the Assistants v2 OpenAPI spec.
    """

    name: str
    required_params: str
    sql_verb: str
    description: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    """One resource of StackQL's ``openai.assistants`` service (reconciler serves runs)."""

    name: str
    description: str

    @property
    def id(self) -> str:
        return f"{SERVICE}.{self.name}"


FIELDS: tuple[Field, ...] = (  # the page's Fields table, in its order and words
    Field("id", "string",
          "The identifier, which can be referenced in API endpoints."),
    Field("assistant_id", "string",
          "The ID of the [assistant](/docs/api-reference/assistants) used for execution "
          "of this run."),
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
          "Details on why the run is incomplete. Will be `null` if the run is not "
          "incomplete."),
    Field("instructions", "string",
          "The instructions that the [assistant](/docs/api-reference/assistants) used for"
          " this run."),
    Field("last_error", "object",
          "The last error associated with this run. Will be `null` if there are no "
          "errors."),
    Field("max_completion_tokens", "integer",
          "The maximum number of completion tokens specified to have been used over the "
          "course of the run."),
    Field("max_prompt_tokens", "integer",
          "The maximum number of prompt tokens specified to have been used over the "
          "course of the run."),
    Field("metadata", "object",
          "Set of 16 key-value pairs that can be attached to an object. This can be "
          "useful for storing additional information about the object in a structured "
          "format. Keys can be a maximum of 64 characters long and values can be a "
          "maximum of 512 characters long."),
    Field("model", "string",
          "The model that the [assistant](/docs/api-reference/assistants) used for this "
          "run."),
    Field("object", "string",
          "The object type, which is always `thread.run`."),
    Field("parallel_tool_calls", "boolean",
          "Whether to enable [parallel function calling](/docs/guides/function-"
          "calling/parallel-function-calling) during tool use."),
    Field("required_action", "object",
          "Details on the action required to continue the run. Will be `null` if no "
          "action is required."),
    Field("response_format", "",
          "Specifies the format that the model must output. Compatible with "
          "[GPT-4o](/docs/models/gpt-4o), [GPT-4 Turbo](/docs/models/gpt-4-turbo-and-"
          "gpt-4), and all GPT-3.5 Turbo models since `gpt-3.5-turbo-1106`.\n\nSetting to "
          '`{ "type": "json_schema", "json_schema": {...} }` enables Structured Outputs '
          "which ensures the model will match your supplied JSON schema. Learn more in "
          "the [Structured Outputs guide](/docs/guides/structured-outputs).\n\nSetting to "
          '`{ "type": "json_object" }` enables JSON mode, which ensures the message the '
          "model generates is valid JSON.\n\n**Important:** when using JSON mode, you "
          "**must** also instruct the model to produce JSON yourself via a system or user"
          " message. Without this, the model may generate an unending stream of "
          "whitespace until the generation reaches the token limit, resulting in a long-"
          'running and seemingly "stuck" request. Also note that the message content may '
          'be partially cut off if `finish_reason="length"`, which indicates the '
          "generation exceeded `max_tokens` or the conversation exceeded the max context "
          "length."),
    Field("started_at", "integer",
          "The Unix timestamp (in seconds) for when the run was started."),
    Field("status", "string",
          "The status of the run, which can be either `queued`, `in_progress`, "
          "`requires_action`, `cancelling`, `cancelled`, `failed`, `completed`, "
          "`incomplete`, or `expired`."),
    Field("temperature", "number",
          "The sampling temperature used for this run. If not set, defaults to 1."),
    Field("thread_id", "string",
          "The ID of the [thread](/docs/api-reference/threads) that was executed on as a "
          "part of this run."),
    Field("tool_choice", "",
          "Controls which (if any) tool is called by the model.\n`none` means the model "
          "will not call any tools and instead generates a message.\n`auto` is the default"
          " value and means the model can pick between generating a message or calling "
          "one or more tools.\n`required` means the model must call one or more tools "
          'before responding to the user.\nSpecifying a particular tool like `{"type": '
          '"file_search"}` or `{"type": "function", "function": {"name": "my_function"}}`'
          " forces the model to call that tool."),
    Field("tools", "array",
          "The list of tools that the [assistant](/docs/api-reference/assistants) used "
          "for this run."),
    Field("top_p", "number",
          "The nucleus sampling value used for this run. If not set, defaults to 1."),
    Field("truncation_strategy", "object",
          "Controls for how a thread will be truncated prior to the run. Use this to "
          "control the intial context window of the run."),
    Field("usage", "object",
          "Usage statistics related to the run. This value will be `null` if the run is "
          "not in a terminal state (i.e. `in_progress`, `queued`, etc.)."),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_TYPES: dict[str, str] = {f.name: f.type for f in FIELDS}
BOOLEAN_FIELDS = frozenset(f.name for f in FIELDS if f.type == "boolean")
#: Parameters that address the API rather than filter rows: the page's required params.
PARAMS = ("thread_id", "run_id")

METHODS: tuple[Method, ...] = (
    Method("get_run", "run_id, thread_id", "SELECT", "Retrieves a run.", ("get",)),
    Method("list_runs", "thread_id", "SELECT",
           "Returns a list of runs belonging to a thread.", ("list",)),
    Method("create_run", "thread_id, data__assistant_id", "INSERT", "Create a run.",
           ("create",)),
    Method("modify_run", "run_id, thread_id", "UPDATE", "Modifies a run.", ("update",)),
    Method("cancel_run", "run_id, thread_id", "EXEC", "Cancels a run that is `in_progress`.",
           ("cancel",)),
    Method("submit_tool_ouputs_to_run", "run_id, thread_id, data__tool_outputs", "EXEC",
           'When a run has the `status: "requires_action"` and `required_action.type` is '
           "`submit_tool_outputs`, this endpoint can be used to submit the outputs from the "
           "tool calls once they're all completed. All outputs must be submitted in a single "
           "request.",
           ("submit_tool_outputs", "submit_tool_outputs_to_run")),
)

#: Every name a method answers to (StackQL's, the newer provider's, the corrected spelling).
METHOD_NAMES: dict[str, Method] = {
    name: method for method in METHODS for name in (method.name, *method.aliases)
}
SUBMIT_METHOD = "submit_tool_ouputs_to_run"  # StackQL's spelling, kept for compatibility

RESOURCES: tuple[Resource, ...] = (  # as the provider lists them; only runs is served here
    Resource("assistants", "Assistants that can call models and use tools."),
    Resource("messages", "Messages of a thread."),
    Resource("run_steps", "The steps an assistant took during a run."),
    Resource("runs", "Runs of an assistant on a thread."),
    Resource("threads", "Threads that assistants can interact with."),
)

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
