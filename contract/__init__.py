"""What every Lockstep process agrees on: settings, Redis keys, version ids, field names, wire models."""
