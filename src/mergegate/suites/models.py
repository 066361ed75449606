"""The suite file format, as typed pydantic models (version 1).

One YAML file holds one suite. The JSON Schema in ``schema/suite.schema.json``
is generated from :class:`Suite` (``mergegate schema``) so editors can
autocomplete suites; a test keeps the committed file in step with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Optional, Union

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from .._compact import CompactModel
from ..checks import REGISTRY, CheckSpecBase

__all__ = ["Message", "Sampling", "FunctionDef", "ToolDef", "SuiteDefaults", "Case", "Suite", "CheckSpec", "SUITE_FORMAT"]

SUITE_FORMAT: Final = 1

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(CompactModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Message(_Strict):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(_Strict):
    """Sampling parameters sent with each request; unset fields fall back to the model's defaults."""

    temperature: Optional[float] = Field(default=None, ge=0, description="0 = greedy.")
    top_p: Optional[float] = Field(default=None, gt=0, le=1)
    max_tokens: Optional[int] = Field(default=None, ge=1, description="Most tokens generated.")
    seed: Optional[int] = Field(default=None, description="Sampling seed sent to the engine.")
    stop: Optional[list[str]] = Field(default=None, description="Stop sequences.")

    def merged_over(self, base: Sampling) -> Sampling:
        """Return ``base`` with every field this object sets overriding it."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


class FunctionDef(_Strict):
    """A function the model may call (OpenAI ``tools`` format)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                       description="JSON Schema of the arguments object.")


class ToolDef(_Strict):
    """One tool, as in the OpenAI chat API's ``tools`` list."""

    type: Literal["function"] = "function"
    function: FunctionDef


class SuiteDefaults(_Strict):
    """Defaults applied to every case of the suite."""

    system_prompt: Optional[str] = Field(
        default=None,
        description="System prompt for every case; the model's own system prompt (mergegate.yaml) comes first when both are set.",
    )
    sampling: Sampling = Field(default_factory=Sampling)
    tools: Optional[list[ToolDef]] = Field(default=None,
                                           description="Tools offered to the model in every case (a case's own 'tools' replace them).")
    tool_choice: Optional[str] = Field(default=None, description="'auto', 'required', 'none', or a function name the model must call "
                                       "(sent as the API's tool_choice; tool_format: api only).")


def _check_union() -> Any:
    specs = tuple(ct.spec for ct in REGISTRY.values())
    return Annotated[Union[specs], Field(discriminator="type")]


if TYPE_CHECKING:  # the union of every registered check's spec; to a type checker, their common base
    CheckSpec = CheckSpecBase
else:
    CheckSpec = _check_union()

_BUILT_WITH = frozenset(REGISTRY)  # the check types the models below accept


def refresh_check_types() -> None:
    """Make :class:`Case` and :class:`Suite` accept every check type registered so far (cheap when none is new).

    The suite models validate ``checks`` with a union of the registered specs,
    built at import; a team's check registered later (``checks:`` in
    mergegate.yaml, a ``mergegate.checks`` entry point, or any code calling
    :func:`mergegate.check`) is added here, before suites are read.
    """
    global _BUILT_WITH
    if frozenset(REGISTRY) == _BUILT_WITH:
        return
    Case.model_fields["checks"].annotation = list[_check_union()]  # type: ignore[misc,assignment]
    Case.model_rebuild(force=True)
    Suite.model_rebuild(force=True)
    _BUILT_WITH = frozenset(REGISTRY)


class Case(_Strict):
    """One evaluation case: an input, optional reference, and the checks its output must meet."""

    id: str = Field(pattern=_ID, description="Unique in the suite; the pytest id is 'suite::id'.")
    prompt: Optional[str] = Field(default=None, description="A single user message (use this or 'messages').")
    messages: Optional[list[Message]] = Field(default=None, min_length=1, description="A chat (use this, 'prompt' or 'turns').")
    turns: Optional[list[str]] = Field(default=None, min_length=2, description="Multi-turn (MT-Bench style): user messages sent one "
                                       "after another, each after the model's own answer to the previous one. Checks take 'turn:'.")
    reference: Optional[str] = Field(default=None, description="Reference answer; checks without 'value' compare to it.")
    category: str = Field(default="simple", pattern=_ID, description="e.g. simple, edge_case, adversarial.")
    blocking: bool = Field(default=False, description="A failing blocking case makes the run NO-GO.")
    cluster: Optional[str] = Field(default=None, description="Cases with the same cluster (e.g. one source document or conversation) "
                                   "are not independent: intervals use clustered standard errors.")
    sampling: Optional[Sampling] = Field(default=None, description="Overrides the suite's sampling for this case.")
    tools: Optional[list[ToolDef]] = Field(default=None, description="Tools offered to the model (OpenAI format); see the tool_call check.")
    tool_choice: Optional[str] = Field(default=None, description="Overrides the suite's tool_choice for this case.")
    checks: list[CheckSpec] = Field(min_length=1, description="What the output must satisfy.")

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if sum(x is not None for x in (self.prompt, self.messages, self.turns)) != 1:
            raise ValueError("a case needs exactly one of 'prompt', 'messages' or 'turns'")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("'messages' must end with a user message")
        for i, spec in enumerate(self.checks):
            ctype = REGISTRY[spec.type]
            if ctype.uses_reference and getattr(spec, "value", None) is None and self.reference is None:
                raise ValueError(f"checks[{i}] ({spec.type}) needs 'value' or a case 'reference'")
            if getattr(spec, "use_reference", False) and self.reference is None:
                raise ValueError(f"checks[{i}] ({spec.type}) has use_reference: true but the case has no 'reference'")
            if spec.turn is not None and spec.turn > self.n_turns:
                raise ValueError(f"checks[{i}] ({spec.type}) targets turn {spec.turn}, but the case has {self.n_turns} turn(s)")
        return self

    @property
    def n_turns(self) -> int:
        """Return how many user turns the case has (1 unless it uses 'turns')."""
        return len(self.turns) if self.turns else 1

    def turn_text(self, turn: Optional[int] = None) -> str:
        """Return the user message of ``turn`` (1-based; default: the last)."""
        if self.turns:
            return self.turns[(turn or self.n_turns) - 1]
        return self.input_text

    def judge_prompt(self, turn: Optional[int] = None) -> str:
        """Return the prompt a judge sees for ``turn``: earlier user turns are quoted as context."""
        if not self.turns:
            return self.input_text
        k = turn or self.n_turns
        if k == 1:
            return self.turns[0]
        earlier = "\n".join(f"(turn {i + 1}) {t}" for i, t in enumerate(self.turns[: k - 1]))
        return f"Earlier turns of this conversation:\n{earlier}\n\nThe user's message now (turn {k}):\n{self.turns[k - 1]}"

    def chat(self, system_prompts: list[str], answers: Optional[list[str]] = None) -> list[dict[str, str]]:
        """Return the chat messages sent for this case, system prompts first.

        Multi-turn cases: ``answers`` are the model's answers to the turns so
        far; the messages end with the next user turn.
        """
        if self.turns:
            done = answers or []
            own = [m for u, a in zip(self.turns, done, strict=False)
                   for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})]
            own.append({"role": "user", "content": self.turns[len(done)]})
        elif self.prompt is not None:
            own = [{"role": "user", "content": self.prompt}]
        else:
            own = [m.model_dump() for m in self.messages or []]
        if own and own[0]["role"] == "system":
            # one system message: the configured prompts first, then the case's own
            system_prompts = [*system_prompts, own[0]["content"]]
            own = own[1:]
        return ([{"role": "system", "content": "\n\n".join(system_prompts)}] if system_prompts else []) + own

    @property
    def input_text(self) -> str:
        """Return the last user message, for reports."""
        if self.turns:
            return self.turns[-1]
        return self.prompt if self.prompt is not None else (self.messages or [])[-1].content


class Suite(_Strict):
    """A suite: named, versioned cases of one task."""

    format: Literal[1] = Field(default=SUITE_FORMAT, description="Suite file format version.")
    name: str = Field(pattern=_ID, description="Suite name, used in test ids, gates and reports.")
    version: Annotated[str, WithJsonSchema({"type": ["string", "integer", "number"],
                                            "description": "Version of the suite's content; recorded in results."})] = "1"
    description: str = ""
    task: Literal["classification", "extraction", "qa", "summarization", "generation", "chat", "code", "tool_calling", "other"] = Field(
        default="other", description="Task type, for reports."
    )
    role: Literal["target", "general"] = Field(
        default="target",
        description="'target': the task the fine-tune is for (should improve); 'general': capabilities that must not regress.",
    )
    defaults: SuiteDefaults = Field(default_factory=SuiteDefaults)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _tool_calls_name_offered_tools(self) -> Suite:
        for case in self.cases:
            offered = {t.function.name for t in (case.tools or self.defaults.tools or [])}
            for i, spec in enumerate(case.checks):
                if spec.type != "tool_call":
                    continue
                calls = getattr(spec, "calls", None) or []  # a tool_call spec (registered in checks/tools.py)
                if not offered and calls:
                    raise ValueError(f"case {case.id!r}: checks[{i}] (tool_call) expects calls, but the case offers no 'tools'")
                unknown = sorted({c.name for c in calls} - offered)
                if unknown:
                    raise ValueError(f"case {case.id!r}: checks[{i}] (tool_call) expects {unknown}, which the case's tools do not define")
        return self

    def tools_of(self, case: Case) -> Optional[list[ToolDef]]:
        """Return the tools offered in ``case`` (its own, else the suite's)."""
        return case.tools or self.defaults.tools

    def tool_choice_of(self, case: Case) -> Optional[Any]:
        """Return the API ``tool_choice`` for ``case``: a mode string, a function object for a name, or None."""
        choice = case.tool_choice or self.defaults.tool_choice
        if choice is None or choice in ("auto", "required", "none"):
            return choice
        return {"type": "function", "function": {"name": choice}}

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        # ``version: 2`` and ``version: "2"`` mean the same thing to a person.
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
