"""Date shifting for the Retain Longitudinal Temporal Information Modified Dates option.

Every DA and DT of one patient moves by the same whole number of days, derived from the
project key and the patient, so intervals between a patient's studies are kept exactly and the
time of day (TM, and the time part of DT) is unchanged: studies spanning midnight and PET decay
timing survive (PS3.15 E.3.6). The shift is between -365 and -1 days.
"""

from __future__ import annotations

import datetime as dt
import re

from .keys import ProjectKey

SHIFT_DAYS_MAX = 365
_DATE = re.compile(r"^\d{8}$")


def shift_days(key: ProjectKey, patient: str) -> int:
    """The patient's shift in days, in ``-SHIFT_DAYS_MAX .. -1``."""
    return -(1 + key.number("date-shift", patient) % SHIFT_DAYS_MAX)


def shift_date(value: str, days: int) -> str | None:
    """A DA value (``YYYYMMDD``, or a ``-`` range) shifted; ``None`` if it is not a date."""
    text = value.strip()
    if not text:
        return text
    if "-" in text:
        parts = [shift_date(part, days) if part else part for part in text.split("-", 1)]
        return None if None in parts else "-".join(p or "" for p in parts)
    if len(text) != 8:
        return None
    return _shift_digits(text, days)


def shift_datetime(value: str, days: int) -> str | None:
    """A DT value shifted in its date part; time, fraction and UTC offset are kept.

    A DT of year or year-month precision is shifted from the middle of its period and keeps its
    precision. ``None`` if the value does not start with a date.
    """
    text = value.strip()
    if not text:
        return text
    digits = len(text) - len(text.lstrip("0123456789"))
    date_digits = min(digits, 8)
    if date_digits not in (4, 6, 8):
        return None
    head, rest = text[:date_digits], text[date_digits:]
    padded = head + ("0701" if date_digits == 4 else "15" if date_digits == 6 else "")
    shifted = _shift_digits(padded, days)
    return None if shifted is None else shifted[:date_digits] + rest


def _shift_digits(yyyymmdd: str, days: int) -> str | None:
    match = _DATE.match(yyyymmdd)
    if match is None:
        return None
    try:
        day = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
        moved = day + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"
