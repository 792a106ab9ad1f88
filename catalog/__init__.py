"""The item catalog: its store of record in Redis, change events, and reading catalog files."""
