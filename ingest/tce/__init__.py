"""IHE Teaching File and Clinical Trial Export (TCE): the manifest and the ATFI report.

A TCE export arrives as de-identified instances, a Key Object Selection manifest listing them
(:mod:`.manifest`) and, optionally, an "Additional Teaching File Information" structured report
(:mod:`.atfi`). Every code involved is defined once in :mod:`.codes`.
"""

from .atfi import (
    NotTeachingFileInfo,
    TeachingFileInfo,
    build_teaching_file_info,
    is_teaching_file_info,
    parse_teaching_file_info,
    teaching_file_info_content,
)
from .manifest import (
    Manifest,
    NotAManifest,
    Reference,
    build_manifest,
    is_manifest,
    parse_manifest,
)

__all__ = [
    "Manifest",
    "NotAManifest",
    "NotTeachingFileInfo",
    "Reference",
    "TeachingFileInfo",
    "build_manifest",
    "build_teaching_file_info",
    "is_manifest",
    "is_teaching_file_info",
    "parse_manifest",
    "parse_teaching_file_info",
    "teaching_file_info_content",
]
