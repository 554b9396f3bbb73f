"""NHS numbers: ten digits whose modulus-11 check digit is right (NHS Digital's rule), written
together or as 3-3-4 with spaces or hyphens."""

from __future__ import annotations

import re

NHS_NUMBER = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")


def looks_like_nhs_number(text: str) -> bool:
    for match in NHS_NUMBER.finditer(text):
        digits = [int(c) for c in "".join(match.groups())]
        total = sum(d * w for d, w in zip(digits[:9], range(10, 1, -1)))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check != 10 and check == digits[9]:
            return True
    return False
