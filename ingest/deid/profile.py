"""De-identification profiles: the PS3.15 Basic Profile plus a chosen set of its options.

A profile is a small readable file (TOML or JSON) that a privacy officer can review:

.. code-block:: toml

    name = "casebank-teaching"
    options = ["CLEAN_DESCRIPTORS", "RETAIN_LONGITUDINAL_MODIFIED_DATES"]

Options are named by their :class:`Option` name or their CID 7050 code value. Sites may add
private attributes they know to be safe with ``[[safe_private]]`` tables (``tag``,
``private_creator``, ``vr``), used only with ``RETAIN_SAFE_PRIVATE``.
"""

from __future__ import annotations

import enum
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from highdicom.sr import CodedConcept

from .safe_private import SafePrivateElement

DCM = "DCM"
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
"""CID 7050 code value and meaning of the Basic Application Level Confidentiality Profile."""
CLEAN_PIXEL_DATA_CODE = ("113101", "Clean Pixel Data Option")
"""CID 7050: written per object, when pixel cleaning (:mod:`ingest.deid.pixels`) ran on it."""
DEFAULT_PROFILE = "default.toml"


class ProfileError(ValueError):
    """A profile file or option set is not usable; the message names the file and the value."""


class Option(enum.Enum):
    """A PS3.15 Annex E option, valued by its CID 7050 code (scheme DCM).

    Clean Pixel Data (113101) and Clean Recognizable Visual Features (113102) are not
    options of this engine: they change pixel data, which it never touches. 113101 is written
    per object by :func:`ingest.deid.deidentify` when told the pixels were cleaned.
    """

    RETAIN_SAFE_PRIVATE = "113111"
    RETAIN_UIDS = "113110"
    RETAIN_DEVICE_IDENTITY = "113109"
    RETAIN_INSTITUTION_IDENTITY = "113112"
    RETAIN_PATIENT_CHARACTERISTICS = "113108"
    RETAIN_LONGITUDINAL_FULL_DATES = "113106"
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "113107"
    CLEAN_DESCRIPTORS = "113105"
    CLEAN_STRUCTURED_CONTENT = "113104"
    CLEAN_GRAPHICS = "113103"

    @property
    def code(self) -> str:
        """The CID 7050 code value."""
        return self.value

    @property
    def meaning(self) -> str:
        """The CID 7050 code meaning."""
        return _MEANINGS[self]

    @property
    def concept(self) -> CodedConcept:
        """The option as a coded concept for De-identification Method Code Sequence."""
        return CodedConcept(value=self.value, scheme_designator=DCM, meaning=self.meaning)

    @classmethod
    def parse(cls, text: str) -> Option:
        """An option from its name (any case, ``-`` or space for ``_``) or its code value."""
        cleaned = str(text).strip()
        for option in cls:
            if cleaned == option.value:
                return option
        name = cleaned.upper().replace("-", "_").replace(" ", "_")
        try:
            return cls[name]
        except KeyError:
            known = ", ".join(option.name for option in cls)
            raise ProfileError(f"unknown de-identification option {text!r}; known options: {known}") from None


_MEANINGS = {
    Option.RETAIN_SAFE_PRIVATE: "Retain Safe Private Option",
    Option.RETAIN_UIDS: "Retain UIDs Option",
    Option.RETAIN_DEVICE_IDENTITY: "Retain Device Identity Option",
    Option.RETAIN_INSTITUTION_IDENTITY: "Retain Institution Identity Option",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "Retain Patient Characteristics Option",
    Option.RETAIN_LONGITUDINAL_FULL_DATES: "Retain Longitudinal Temporal Information Full Dates Option",
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: "Retain Longitudinal Temporal Information Modified Dates Option",
    Option.CLEAN_DESCRIPTORS: "Clean Descriptors Option",
    Option.CLEAN_STRUCTURED_CONTENT: "Clean Structured Content Option",
    Option.CLEAN_GRAPHICS: "Clean Graphics Option",
}


@dataclass(frozen=True)
class Profile:
    """The Basic Application Level Confidentiality Profile with a set of options.

    Attributes
    ----------
    options : frozenset[Option]
        Options in force; each overrides the Basic Profile as Table E.1-1's column says.
    name : str
        Shown in De-identification Method (0012,0063) and in the audit.
    safe_private_additions : tuple[SafePrivateElement, ...]
        Site additions to the safe private list of PS3.15 Table E.3.10-1.

    Raises
    ------
    ProfileError
        If both Retain Longitudinal options are asked for: dates are kept or shifted, not both.
    """

    options: frozenset[Option] = frozenset()
    name: str = "basic"
    safe_private_additions: tuple[SafePrivateElement, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))
        if {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES} <= self.options:
            raise ProfileError(
                f"profile {self.name!r} asks for both RETAIN_LONGITUDINAL_FULL_DATES and "
                "RETAIN_LONGITUDINAL_MODIFIED_DATES; choose one"
            )

    @classmethod
    def of(cls, *options: Option | str, name: str = "basic") -> Profile:
        """A profile from option values or names, e.g. ``Profile.of("CLEAN_DESCRIPTORS")``."""
        return cls(frozenset(o if isinstance(o, Option) else Option.parse(o) for o in options), name=name)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile file (``.toml`` or ``.json``).

        Raises
        ------
        ProfileError
            If the file cannot be parsed or names an unknown option.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read de-identification profile {path}: {exc}") from exc
        try:
            return cls.from_mapping(data, default_name=path.stem)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, default_name: str = "basic") -> Profile:
        """A profile from the parsed content of a profile file."""
        options = data.get("options", [])
        if isinstance(options, str) or not isinstance(options, Iterable):
            raise ProfileError(f"'options' must be a list of option names, not {options!r}")
        additions = tuple(SafePrivateElement.from_mapping(entry) for entry in data.get("safe_private", []))
        return cls(
            frozenset(Option.parse(option) for option in options),
            name=str(data.get("name", default_name)),
            safe_private_additions=additions,
        )

    @classmethod
    def default(cls) -> Profile:
        """Casebank's default profile for teaching exports (``data/profiles/default.toml``)."""
        resource = files(__package__).joinpath("data", "profiles", DEFAULT_PROFILE)
        return cls.load(Path(str(resource)))

    @property
    def ordered_options(self) -> tuple[Option, ...]:
        """The options in a stable order (declaration order of :class:`Option`)."""
        return tuple(option for option in Option if option in self.options)

    def method_codes(self, *, pixels_cleaned: bool = False) -> list[CodedConcept]:
        """De-identification Method Code Sequence items: the Basic Profile, Clean Pixel Data when
        the object's pixels went through cleaning, and each option (new objects)."""
        basic = CodedConcept(value=BASIC_PROFILE_CODE[0], scheme_designator=DCM, meaning=BASIC_PROFILE_CODE[1])
        cleaned = [CodedConcept(value=CLEAN_PIXEL_DATA_CODE[0], scheme_designator=DCM, meaning=CLEAN_PIXEL_DATA_CODE[1])]
        return [basic, *(cleaned if pixels_cleaned else []), *(option.concept for option in self.ordered_options)]

    def method_description(self, *, pixels_cleaned: bool = False) -> list[str]:
        """De-identification Method (0012,0063) values, each within LO's 64 characters."""
        codes = self.method_codes(pixels_cleaned=pixels_cleaned)
        return [f"Casebank profile {self.name}"[:64], *(code.CodeMeaning for code in codes)]
