"""The goodbooks example catalog."""
