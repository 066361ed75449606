"""Suites: the YAML eval-case format, its models and its loader."""

from .loader import LoadedSuite, discover_suites, is_suite_file, load_suite
from .models import SUITE_FORMAT, Case, Message, Sampling, Suite, SuiteDefaults

__all__ = ["LoadedSuite", "discover_suites", "is_suite_file", "load_suite",
           "SUITE_FORMAT", "Case", "Message", "Sampling", "Suite", "SuiteDefaults"]
