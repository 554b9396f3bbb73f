"""How a series opens in the viewer: the window (VOI) and the displayed region an editor saved
for everyone who views the case."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidInput, NotFound
from .folders import require
from .models import Series, User

NON_IMAGE_MODALITIES = ("SR", "KO", "PR", "DOC", "REG")  # documents, not pictures: no viewport


def image_series(series: list[Series]) -> list[Series]:
    return [s for s in series if s.modality not in NON_IMAGE_MODALITIES and s.instances]


@dataclass(frozen=True)
class Crop:
    """The displayed region as a rectangle in image pixels (column ``x``, row ``y`` of its top-left
    corner), so it means the same on any screen size."""

    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.width, self.height)
        if not all(math.isfinite(v) for v in values) or self.width <= 0 or self.height <= 0:
            raise InvalidInput(f"crop {values} needs finite numbers and a positive width and height")


@dataclass(frozen=True)
class Display:
    window_center: float | None
    window_width: float | None
    crop: Crop | None

    @classmethod
    def of(cls, series: Series) -> Display:
        crop = Crop(**series.default_crop) if series.default_crop else None
        return cls(series.default_window_center, series.default_window_width, crop)


def save_series_display(
    session: Session, user: User, series_id: int, center: float, width: float, crop: Crop | None
) -> Series:
    """Store the window (center/width) and crop every viewer of ``series_id`` then opens with;
    needs the edit right on the case's folder."""
    series = session.get(Series, series_id)
    if series is None:
        raise NotFound(f"series {series_id} does not exist")
    require(session, user, series.study.case.folder, "edit", subject=f"series {series_id}")
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
        raise InvalidInput(f"window center {center} / width {width}: both must be finite and the width at least 1")
    series.default_window_center = center
    series.default_window_width = width
    series.default_crop = asdict(crop) if crop else None
    session.flush()
    audit.record(
        session, user, "series.display_saved", "series", series.id,
        case_id=series.study.case_id, window_center=center, window_width=width, crop=series.default_crop,
    )
    return series
