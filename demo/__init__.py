"""`lockstep demo`: drives the real processes (as subprocesses, over HTTP) through a live version rollout."""
