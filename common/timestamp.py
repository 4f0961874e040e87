"""X-Timestamp values: Swift's wire format and ordering, in one type.

A timestamp is a count of 10-microsecond ticks since the epoch plus an optional offset (for
internal rewrites at the same instant). Its normal form is `1700000000.12345`; with an offset,
`1700000000.12345_000000000000000a`. The newest timestamp wins every conflict.
"""

from __future__ import annotations

import functools
import math
import time
from email.utils import formatdate

TICKS_PER_SECOND = 100_000
MAX_OFFSET = (1 << 64) - 1


class InvalidTimestamp(ValueError):
    """A header value that is not a timestamp."""


@functools.total_ordering
class Timestamp:
    """An instant with 10 µs resolution and an offset that orders rewrites at that instant."""

    __slots__ = ("ticks", "offset")

    def __init__(self, value: float | int | str | bytes | Timestamp, offset: int = 0):
        if isinstance(value, Timestamp):
            ticks, offset = value.ticks, value.offset + offset
        elif isinstance(value, (str, bytes)):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            ticks, parsed_offset = self._parse(text)
            offset += parsed_offset
        else:
            if not math.isfinite(value) or value < 0:
                raise InvalidTimestamp(f"invalid timestamp {value!r}")
            ticks = round(value * TICKS_PER_SECOND)
        if not 0 <= offset <= MAX_OFFSET or ticks >= 10**10 * TICKS_PER_SECOND:
            raise InvalidTimestamp(f"timestamp out of range: {value!r}")
        self.ticks = ticks
        self.offset = offset

    @staticmethod
    def _parse(text: str) -> tuple[int, int]:
        base, _, offset_text = text.strip().partition("_")
        try:
            offset = int(offset_text, 16) if offset_text else 0
            whole, _, fraction = base.partition(".")
            if not whole.isdigit() or (fraction and not fraction.isdigit()):
                raise ValueError
            fraction = (fraction + "00000")[:5] if len(fraction) <= 5 else fraction
            seconds = int(whole)
            if len(fraction) > 5:     # more precision than we keep: round to a tick
                ticks = round(float(f"{whole}.{fraction}") * TICKS_PER_SECOND)
            else:
                ticks = seconds * TICKS_PER_SECOND + int(fraction or 0)
        except ValueError:
            raise InvalidTimestamp(f"invalid timestamp {text!r}") from None
        return ticks, offset

    @classmethod
    def now(cls) -> Timestamp:
        return cls(time.time())

    @property
    def seconds(self) -> float:
        return self.ticks / TICKS_PER_SECOND

    @property
    def normal(self) -> str:
        return f"{self.ticks // TICKS_PER_SECOND:010d}.{self.ticks % TICKS_PER_SECOND:05d}"

    @property
    def internal(self) -> str:
        return f"{self.normal}_{self.offset:016x}" if self.offset else self.normal

    @property
    def http_date(self) -> str:
        """Last-Modified form: the timestamp rounded up to a whole second, as Swift does."""
        return formatdate(math.ceil(self.seconds), usegmt=True)

    @property
    def isoformat(self) -> str:
        stamp = time.gmtime(self.ticks // TICKS_PER_SECOND)
        return time.strftime("%Y-%m-%dT%H:%M:%S", stamp) + \
            f".{(self.ticks % TICKS_PER_SECOND) * 10:06d}"

    def _key(self) -> tuple[int, int]:
        return (self.ticks, self.offset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            try:
                other = Timestamp(other)  # type: ignore[arg-type]
            except (InvalidTimestamp, TypeError):
                return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            other = Timestamp(other)  # type: ignore[arg-type]
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.internal

    def __repr__(self) -> str:
        return f"Timestamp({self.internal!r})"
