"""The news example catalog."""
