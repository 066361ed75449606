"""The files `mergegate init` writes into a new project (package data), and how it adapts the GitHub workflows (workflows.py)."""
