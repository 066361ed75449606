"""The suite file format, as typed pydantic models (version 1).

One YAML file holds one suite. The JSON Schema in ``schema/suite.schema.json``
is generated from :class:`Suite` (``mergegate schema``) so editors can
autocomplete suites; a test keeps the committed file in step with this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from ..checks import REGISTRY

__all__ = ["Message", "Sampling", "SuiteDefaults", "Case", "Suite", "CheckSpec", "SUITE_FORMAT"]

SUITE_FORMAT = 1

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
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

    def merged_over(self, base: "Sampling") -> "Sampling":
        """Return ``base`` with every field this object sets overriding it."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


class SuiteDefaults(_Strict):
    """Defaults applied to every case of the suite."""

    system_prompt: Optional[str] = Field(
        default=None,
        description="System prompt for every case; the model's own system prompt (mergegate.yaml) comes first when both are set.",
    )
    sampling: Sampling = Field(default_factory=Sampling)


def _check_union() -> Any:
    specs = tuple(ct.spec for ct in REGISTRY.values())
    return Annotated[Union[specs], Field(discriminator="type")]  # type: ignore[valid-type]


CheckSpec = _check_union()


class Case(_Strict):
    """One evaluation case: an input, optional reference, and the checks its output must meet."""

    id: str = Field(pattern=_ID, description="Unique in the suite; the pytest id is 'suite::id'.")
    prompt: Optional[str] = Field(default=None, description="A single user message (use this or 'messages').")
    messages: Optional[list[Message]] = Field(default=None, min_length=1, description="A chat (use this or 'prompt').")
    reference: Optional[str] = Field(default=None, description="Reference answer; checks without 'value' compare to it.")
    category: str = Field(default="simple", pattern=_ID, description="e.g. simple, edge_case, adversarial.")
    blocking: bool = Field(default=False, description="A failing blocking case makes the run NO-GO.")
    sampling: Optional[Sampling] = Field(default=None, description="Overrides the suite's sampling for this case.")
    checks: list[CheckSpec] = Field(min_length=1, description="What the output must satisfy.")  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_input(self) -> "Case":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a case needs exactly one of 'prompt' or 'messages'")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("'messages' must end with a user message")
        for i, spec in enumerate(self.checks):
            ctype = REGISTRY[spec.type]
            if ctype.uses_reference and getattr(spec, "value", None) is None and self.reference is None:
                raise ValueError(f"checks[{i}] ({spec.type}) needs 'value' or a case 'reference'")
            if getattr(spec, "use_reference", False) and self.reference is None:
                raise ValueError(f"checks[{i}] ({spec.type}) has use_reference: true but the case has no 'reference'")
        return self

    def chat(self, system_prompts: list[str]) -> list[dict[str, str]]:
        """Return the chat messages sent for this case, system prompts first."""
        own = [{"role": "user", "content": self.prompt}] if self.prompt is not None else [m.model_dump() for m in self.messages or []]
        if own and own[0]["role"] == "system":
            # one system message: the configured prompts first, then the case's own
            system_prompts = [*system_prompts, own[0]["content"]]
            own = own[1:]
        return ([{"role": "system", "content": "\n\n".join(system_prompts)}] if system_prompts else []) + own

    @property
    def input_text(self) -> str:
        """Return the last user message, for reports."""
        return self.prompt if self.prompt is not None else (self.messages or [])[-1].content


class Suite(_Strict):
    """A suite: named, versioned cases of one task."""

    format: Literal[1] = Field(default=SUITE_FORMAT, description="Suite file format version.")
    name: str = Field(pattern=_ID, description="Suite name, used in test ids, gates and reports.")
    version: Annotated[str, WithJsonSchema({"type": ["string", "integer", "number"], "description": "Version of the suite's content; recorded in results."})] = "1"
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

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        # ``version: 2`` and ``version: "2"`` mean the same thing to a person.
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
