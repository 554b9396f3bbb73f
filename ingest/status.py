"""DICOM status codes the receiver answers with (PS3.4 Annex B and PS3.7 Annex C), defined once."""

from __future__ import annotations

from pydicom.dataset import Dataset

SUCCESS = 0x0000
REFUSED_SOP_CLASS_NOT_SUPPORTED = 0x0122
REFUSED_OUT_OF_RESOURCES = 0xA700
ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
ERROR_CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110

ERROR_COMMENT_MAX = 64  # Error Comment (0000,0902) is LO


def status(code: int, comment: str | None = None) -> Dataset:
    """A C-STORE response status, with an Error Comment on failures (truncated to fit LO)."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:ERROR_COMMENT_MAX]
    return ds
