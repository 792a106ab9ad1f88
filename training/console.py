"""What every training command shares: settings, the Redis client, progress bars, clean error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pydantic
import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contract.keys import Keys
from contract.redis_clients import SyncRedis
from contract.redis_setup import RedisSetupError, checked_client, explain
from contract.settings import Settings
from training.validation import PublishError

EXIT_ERROR = 2
out = Console()
err = Console(stderr=True)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn expected failures into one clear line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except PublishError as exc:
        _fail(str(exc))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        _fail(problems)
    except RedisSetupError as exc:
        _fail(f"refusing to use Redis: {exc}")
    except redis.ConnectionError as exc:
        _fail(f"cannot reach Redis ({exc}); is it running? (`lockstep services up`)")
    except redis.RedisError as exc:
        _fail(f"Redis refused the request: {explain(exc) or exc}")
    except (ValueError, OSError) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def redis_session() -> Iterator[tuple[Settings, SyncRedis, Keys]]:
    """Settings from the environment, a checked Redis client, and the key builder; the client is closed after.

    The check (contract.redis_setup) refuses a Redis of the wrong topology or set up wrongly.
    """
    settings = Settings()  # fields come from the environment
    client = checked_client(settings)
    try:
        yield settings, client, Keys(settings.key_prefix)
    finally:
        client.close()


def progress_bar() -> Progress:
    """A progress bar on stderr for long writes (stdout stays for results)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
