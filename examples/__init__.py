"""Example catalogs: each a schema and a way to produce its items."""
