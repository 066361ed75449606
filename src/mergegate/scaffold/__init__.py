"""The files `mergegate init` writes into a new project (package data, not code)."""
