"""The one typed client of the orchestrator's HTTP API, on contract.wire models at both ends."""
