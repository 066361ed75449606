"""Client: concurrent generation against OpenAI-compatible servers, and the response cache."""

from .cache import ResponseCache, cache_key
from .generate import GenerationStats, Job, Response, generate_all, request_body

__all__ = ["ResponseCache", "cache_key", "GenerationStats", "Job", "Response", "generate_all", "request_body"]
