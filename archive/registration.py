"""Professional registration numbers as reports write them and as users hold them.

The RCR template writes a doctor's GMC number as the fifth person-name component in the form
``GMC1234567`` (``Smith^Jane^^^GMC1234567``); others write ``GMC 1234567``, ``GMC no. 1234567`` or
the bare seven digits. Nurses and midwives are on the NMC register (PIN ``12A3456E``), radiographers
and other allied professions on the HCPC register (``RA12345``). One canonical form is kept: a GMC
number as its seven digits (as users have always been stored), any other register as
``REGISTER NUMBER``, so a number never matches a person on another register.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_OF_REGISTER = {
    "GMC": r"\d{7}",
    "NMC": r"\d{2}[A-Z]\d{4}[A-Z]",
    "HCPC": r"[A-Z]{2}\d{4,6}",
}
_LABEL = r"(?P<register>GMC|NMC|HCPC)(?:[\s-]*(?:ref(?:erence)?\.?|no\.?|number|pin|#))?"
_LABELLED = re.compile(rf"\b{_LABEL}[\s:.#-]*(?P<number>[A-Z0-9]{{5,9}})", re.IGNORECASE)
_TRAILING = re.compile(rf"[\s,;:(\[-]*{_LABELLED.pattern}\s*[)\]]?\s*$", re.IGNORECASE)
_BARE_GMC = re.compile(r"\d{7}")


@dataclass(frozen=True)
class Registration:
    register: str  # GMC, NMC or HCPC
    number: str

    @property
    def canonical(self) -> str:
        return self.number if self.register == "GMC" else f"{self.register} {self.number}"

    def __str__(self) -> str:
        return f"{self.register} {self.number}"


def _checked(register: str, number: str) -> Registration | None:
    register, number = register.upper(), number.upper()
    if re.fullmatch(NUMBER_OF_REGISTER[register], number):
        return Registration(register, number)
    return None


def parse_registration(text: str) -> Registration | None:
    """The registration `text` is, whole: 'GMC1234567', 'GMC 1234567', '1234567', 'NMC 12A3456E'."""
    text = text.strip()
    if _BARE_GMC.fullmatch(text):
        return Registration("GMC", text)
    match = _LABELLED.fullmatch(text)
    return _checked(match["register"], match["number"]) if match else None


def split_trailing_registration(text: str) -> tuple[str, Registration | None]:
    """'Dr Jane Smith (GMC no. 7654321)' as ('Dr Jane Smith', GMC 7654321); text without one unchanged."""
    match = _TRAILING.search(text)
    if match:
        found = _checked(match["register"], match["number"])
        if found is not None:
            return text[: match.start()].strip(), found
    return text, None


def canonical_registration(text: str) -> str:
    """The stored form of a registration number; text that is none of the known forms, stripped."""
    found = parse_registration(text)
    return found.canonical if found is not None else text.strip()


def describe_registration(canonical: str) -> str:
    """'7123456' as 'GMC 7123456'; other registers are already written with their name."""
    return f"GMC {canonical}" if _BARE_GMC.fullmatch(canonical) else canonical
