"""Version ids and their order: a version is a type plus the training time frame it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contract.patterns import python_regex, schema_pattern

_VERSION_ID = "[0-9]{8}T[0-9]{6}Z-[0-9]{8}T[0-9]{6}Z"
VERSION_ID = python_regex(_VERSION_ID)
VERSION_ID_PATTERN = schema_pattern(_VERSION_ID)  # for pydantic/FastAPI `pattern=` and the OpenAPI document
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, order=True)
class Frame:
    """The data window a version was trained on, [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            if moment.tzinfo is None or moment.utcoffset() != UTC.utcoffset(None):
                raise ValueError(f"frame bounds must be UTC datetimes, got {moment!r}")
        if self.end <= self.start:
            raise ValueError(f"frame end {self.end.isoformat()} must be after start {self.start.isoformat()}")

    @classmethod
    def parse(cls, text: str) -> Frame:
        """Parse 'START..END' (ISO dates or datetimes, UTC assumed when no offset is given)."""
        parts = text.split("..")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"frame {text!r} must look like 2017-01-01..2017-07-01")
        return cls(_parse_moment(parts[0]), _parse_moment(parts[1]))

    @property
    def version_id(self) -> str:
        """The version id a frame publishes as: the same frame is the same version."""
        return f"{self.start.strftime(_STAMP)}-{self.end.strftime(_STAMP)}"

    @classmethod
    def from_version_id(cls, version_id: str) -> Frame:
        """The frame a version id names."""
        if not VERSION_ID.fullmatch(version_id):
            raise ValueError(f"version id {version_id!r} must match {VERSION_ID.pattern}")
        start, end = version_id.split("-")
        return cls(
            datetime.strptime(start, _STAMP).replace(tzinfo=UTC),
            datetime.strptime(end, _STAMP).replace(tzinfo=UTC),
        )


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO date or datetime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def order_key(frame_end: datetime, seq: int) -> tuple[datetime, int]:
    """Versions of a type are totally ordered by frame end, then publish sequence."""
    return (frame_end, seq)


def is_version_id(text: str) -> bool:
    """Whether `text` is a well-formed version id."""
    return bool(VERSION_ID.fullmatch(text))
