"""Who sent an object, as far as the archive can tell: the AE registry and the sender's identity.

An AE title, an author's GMC number and a folder line in a manifest are claims of the network.
A calling AE is what the admin registered only when the association comes from the registered
host; a report's author is believed only from an AE registered as an export manager (edge) or a
trusted PACS. Everything else files under the user the AE is bound to (or the STOW user).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidInput, NotFound
from .models import AeBinding, AeTrust, RegisteredAe, User


AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: no backslash, 16 characters


@dataclass(frozen=True)
class Sender:
    """What a transport knows of a sender: the AE titles and peer address of a DICOM association,
    or the authenticated user of a STOW request."""

    calling_ae: str = ""
    called_ae: str = ""
    user_id: int | None = None
    address: str = ""

    @property
    def label(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"ae:{self.calling_ae}"


@dataclass(frozen=True)
class SenderIdentity:
    """The sender as the filing rules see it."""

    principal: str  # "user:ID", or "ae:TITLE@ADDRESS" for an AE bound to nobody
    user: User | None  # whose rights decide where objects may go
    author_trusted: bool  # a report's author (GMC number) is believed
    ae_verified: bool  # the calling AE is registered and connects from its registered host


@lru_cache(maxsize=256)
def _addresses_of(host: str) -> frozenset[str]:
    try:
        return frozenset(info[4][0] for info in socket.getaddrinfo(host, None))
    except OSError:
        return frozenset()


def host_matches(registered_host: str, address: str) -> bool:
    """Whether a peer at `address` is the registered host (a name or an address); no host: any."""
    if not registered_host:
        return True
    return bool(address) and (address == registered_host or address in _addresses_of(registered_host))


def identify(session: Session, sender: Sender) -> SenderIdentity:
    if sender.user_id is not None:
        user = session.get(User, sender.user_id)
        if user is not None and not user.disabled:
            return SenderIdentity(f"user:{user.id}", user, author_trusted=False, ae_verified=False)
        return SenderIdentity(f"user:{sender.user_id}", None, author_trusted=False, ae_verified=False)
    calling = sender.calling_ae.strip()
    registered = session.get(RegisteredAe, calling) if calling else None
    verified = registered is not None and host_matches(registered.host, sender.address)
    spoofed = registered is not None and not verified  # the title is registered to another host
    user = None
    if not spoofed:
        binding = session.get(AeBinding, calling) if calling else None
        if binding is not None and binding.user_id is not None:
            user = session.get(User, binding.user_id)
            user = user if user is not None and not user.disabled else None
    trusted = verified and registered is not None and registered.trust in (AeTrust.EDGE, AeTrust.PACS)
    principal = f"user:{user.id}" if user is not None else f"ae:{calling}@{sender.address}"
    return SenderIdentity(principal, user, author_trusted=trusted, ae_verified=verified)


def register_ae(
    session: Session, ae_title: str, trust: AeTrust, *, host: str = "", description: str = "",
    actor: User | str = "cli",
) -> RegisteredAe:
    """Add a calling AE to the registry, or change how it is trusted and where it connects from."""
    ae_title = ae_title.strip()
    if not AE_TITLE.match(ae_title):
        raise InvalidInput(f"AE title {ae_title!r} must be 1-16 characters with no backslash")
    entry = session.get(RegisteredAe, ae_title) or RegisteredAe(ae_title=ae_title)
    entry.trust, entry.host, entry.description = trust, host.strip(), description.strip()
    session.add(entry)
    session.flush()
    audit.record(session, actor, "ae.registered", "ae", ae_title, trust=trust.value, host=entry.host)
    return entry


def unregister_ae(session: Session, ae_title: str, actor: User | str = "cli") -> None:
    entry = session.get(RegisteredAe, ae_title.strip())
    if entry is None:
        raise NotFound(f"AE {ae_title!r} is not registered")
    session.delete(entry)
    audit.record(session, actor, "ae.unregistered", "ae", entry.ae_title)


def registered_aes(session: Session) -> list[RegisteredAe]:
    return list(session.scalars(select(RegisteredAe).order_by(RegisteredAe.ae_title)))


def is_known_ae(session: Session, ae_title: str, address: str) -> bool:
    """For the known-AEs-only door: registered, and from its registered host."""
    entry = session.get(RegisteredAe, ae_title.strip())
    return entry is not None and host_matches(entry.host, address)
