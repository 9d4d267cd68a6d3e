"""Timestamps as Step Functions reads and writes them.

Reading (``Wait.Timestamp``/``TimestampPath``, the ``Timestamp*`` Choice operators, ``IsTimestamp``):
AWS names the accepted form "ISO-8601 extended offset date-time" in its errors, the RFC 3339 profile
the States language specification requires::

    2016-03-14T01:59:00Z            2016-03-14T01:59:00.123456789+05:30

* date ``YYYY-MM-DD`` and time ``hh:mm:ss`` with an uppercase ``T`` between them (a space is refused);
* optional fractional seconds, 1 to 9 digits (AWS accepts nanoseconds: ``...29.243167252Z``);
* a zone is required: an uppercase ``Z`` or a numeric offset ``+hh:mm``/``-hh:mm`` (at most 18 hours);
* every field is range-checked: month 13, 30 February, hour 25, minute 60 and second 60 are refused.

``datetime`` keeps microseconds, so a 7-9 digit fraction is truncated in the returned value;
``timestamp_key`` keeps the full nanosecond precision for comparisons.

Writing (context object ``$$.Execution.StartTime``, ``$$.State.EnteredTime``): ``format_timestamp``
renders UTC with exactly three fractional digits and ``Z``: ``2024-01-02T03:04:05.123Z``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

__all__ = ["format_seconds", "format_timestamp", "parse_timestamp", "timestamp_key"]

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_MAX_OFFSET_MINUTES = 18 * 60  # the widest zone offset ISO-8601 parsers (and AWS) accept

# Parsed timestamps are cached: Choice rules compare the same literal operand on every evaluation.
_CACHE_SIZE = 4096


@lru_cache(maxsize=_CACHE_SIZE)
def _parse(text: str) -> tuple[datetime, tuple[datetime, int]] | None:
    """(aware datetime truncated to microseconds, comparison key) or None.

    The key is (the instant in UTC, nanoseconds below the microsecond).
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    if sign is None:
        tz: timezone = UTC
    else:
        offset_hours, offset_minutes = int(off_h), int(off_m)
        total = offset_hours * 60 + offset_minutes
        if offset_minutes > 59 or total > _MAX_OFFSET_MINUTES:
            return None
        tz = UTC if total == 0 else timezone(timedelta(minutes=-total if sign == "-" else total))
    try:
        dt = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            nanos // 1000,
            tzinfo=tz,
        )
        utc = dt.astimezone(UTC)
    except (ValueError, OverflowError):  # month 13, 30 February, hour 25, second 60, year 0000...
        return None
    return dt, (utc, nanos % 1000)


def parse_timestamp(text: str) -> datetime | None:
    """Parse an RFC 3339 / ISO-8601 extended offset date-time; None if AWS would reject it.

    The result is timezone-aware (its offset is the one written; ``Z`` gives UTC). Digits of the
    fraction beyond microseconds are accepted and dropped.
    """
    if not isinstance(text, str):
        return None
    parsed = _parse(text)
    return None if parsed is None else parsed[0]


def timestamp_key(text: str) -> tuple[datetime, int] | None:
    """A totally ordered key for comparing timestamps at full (nanosecond) precision, or None.

    Two keys compare as the instants they denote: ``2024-01-01T01:00:00+01:00`` equals
    ``2024-01-01T00:00:00Z``.
    """
    if not isinstance(text, str):
        return None
    parsed = _parse(text)
    return None if parsed is None else parsed[1]


def format_timestamp(dt: datetime) -> str:
    """Render ``dt`` the way the context object shows times: UTC, milliseconds, ``Z``.

    ``2024-01-02T03:04:05.123456+00:00`` -> ``"2024-01-02T03:04:05.123Z"`` (sub-millisecond digits
    are truncated). A naive datetime is refused (``ValueError``): its instant is unknown.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_timestamp needs a timezone-aware datetime")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def format_seconds(moment: datetime | float) -> str:
    """Render ``moment`` (an aware datetime, or seconds since the epoch) in UTC to the second, with ``Z``:
    ``2024-01-02T03:04:05Z``, as the CLI, the token list and ``RoleAssumed`` events show times."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
