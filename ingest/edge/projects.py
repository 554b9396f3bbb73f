"""Research projects at the edge: a pseudonymisation secret per project, and a pseudonymisation log
that the edge can write but only the project's key custodian can read.

Each release appends one log record: the original and new UIDs and patient IDs, as JSON,
encrypted with AES-256-GCM under a fresh data key that is wrapped with the custodian's RSA
public key (OAEP, SHA-256). The edge keeps no way to decrypt it; re-identification needs the
custodian's private key and a reason, and is recorded in the edge's audit file.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pydicom.dataset import Dataset

from ..deid import ProjectKey
from .files import write_durably

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PROJECT_IN_DESCRIPTION = re.compile(r"(?im)^\s*project\s*:\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*$")
TIME_POINT_IN_DESCRIPTION = re.compile(r"(?im)^\s*time[ _-]?point\s*:\s*([^\n\\]{1,64}?)\s*$")
TIME_POINT_DESCRIPTION_IN_DESCRIPTION = re.compile(r"(?im)^\s*time[ _-]?point description\s*:\s*([^\n\\]{1,1024}?)\s*$")
DICOM_LO = re.compile(r"^[^\\\x00-\x1f]{0,64}$")
OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class CustodyError(Exception):
    """A project, key or reason is missing or wrong; the message says which."""


def generate_custodian_key(private_path: Path, public_path: Path, passphrase: bytes) -> None:
    """A new RSA-3072 key pair for a custodian: the private half encrypted with `passphrase`."""
    if len(passphrase) < 8:
        raise CustodyError("the custodian passphrase needs at least 8 characters")
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    public_path.write_bytes(public)


def project_for_description(description: str) -> str | None:
    match = PROJECT_IN_DESCRIPTION.search(description or "")
    return match.group(1) if match else None


def time_point_for_description(description: str) -> tuple[str, str]:
    """The Clinical Trial Time Point ID and Description a manifest gives ("time point: FU1")."""
    point = TIME_POINT_IN_DESCRIPTION.search(description or "")
    text = TIME_POINT_DESCRIPTION_IN_DESCRIPTION.search(description or "")
    return (point.group(1).strip() if point else ""), (text.group(1).strip() if text else "")


@dataclass(frozen=True)
class TrialIdentity:
    """What this edge writes into the Clinical Trial Subject and Study modules of every object of a
    project export (PS3.3 C.7.1.3, C.7.2.3). The Subject ID is the pseudonym, written per object."""

    protocol_id: str = ""
    protocol_name: str = ""
    sponsor: str = ""
    site_id: str = ""
    site_name: str = ""
    coordinating_center: str = ""

    def check(self) -> None:
        for name, value in asdict(self).items():
            if not DICOM_LO.match(value):
                raise CustodyError(f"{name.replace('_', ' ')} {value!r} must be at most 64 characters without a backslash")

    def stamp(self, ds: Dataset, time_point: str = "", time_point_description: str = "") -> None:
        """Write the module on a de-identified object; the Subject ID is its pseudonymous Patient ID."""
        if not self.protocol_id:
            return
        ds.ClinicalTrialSponsorName = self.sponsor or self.protocol_id
        ds.ClinicalTrialProtocolID = self.protocol_id
        ds.ClinicalTrialProtocolName = self.protocol_name
        ds.ClinicalTrialSiteID = self.site_id
        ds.ClinicalTrialSiteName = self.site_name
        ds.ClinicalTrialSubjectID = str(ds.get("PatientID", "") or "")
        if self.coordinating_center:
            ds.ClinicalTrialCoordinatingCenterName = self.coordinating_center
        if time_point:
            ds.ClinicalTrialTimePointID = time_point[:64]
            if time_point_description:
                ds.ClinicalTrialTimePointDescription = time_point_description[:1024]


@dataclass(frozen=True)
class Mapping:
    uids: dict[str, str]  # original -> new
    patient_ids: dict[str, str]  # original -> pseudonym


class Project:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name

    @classmethod
    def create(cls, projects: Path, name: str, custodian_public_key: bytes, trial: TrialIdentity | None = None) -> Project:
        if not PROJECT_NAME.match(name):
            raise CustodyError(f"project name {name!r} must be letters, digits, '-' or '_'")
        folder = projects / name
        if folder.exists():
            raise CustodyError(f"project {name} already exists")
        try:
            serialization.load_pem_public_key(custodian_public_key)
        except ValueError as exc:
            raise CustodyError(f"the custodian public key is not a PEM public key: {exc}") from exc
        if trial is not None:
            trial.check()
        (folder / "log").mkdir(parents=True)
        write_durably(folder / "custodian.pem", custodian_public_key)
        if trial is not None:
            write_durably(folder / "trial.json", json.dumps(asdict(trial)).encode())
        fd = os.open(folder / "secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        return cls(folder)

    @classmethod
    def open(cls, projects: Path, name: str) -> Project:
        folder = projects / name
        if not (folder / "secret").exists():
            raise CustodyError(f"no project {name} at this edge (create it with `casebank edge project add`)")
        return cls(folder)

    def trial(self) -> TrialIdentity:
        """The Clinical Trial attributes this edge writes for the project (empty: none written)."""
        path = self.folder / "trial.json"
        return TrialIdentity(**json.loads(path.read_text())) if path.exists() else TrialIdentity()

    def set_trial(self, trial: TrialIdentity) -> None:
        trial.check()
        write_durably(self.folder / "trial.json", json.dumps(asdict(trial)).encode())

    def key(self) -> ProjectKey:
        """The pseudonymisation secret: same patient, same pseudonym within this project only."""
        return ProjectKey((self.folder / "secret").read_bytes())

    def log(self, manifest_uid: str, mapping: Mapping) -> None:
        public = serialization.load_pem_public_key((self.folder / "custodian.pem").read_bytes())
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        plaintext = json.dumps({"manifest": manifest_uid, "uids": mapping.uids, "patient_ids": mapping.patient_ids}).encode()
        record = {
            "at": datetime.now(timezone.utc).isoformat(),
            "wrapped_key": public.encrypt(data_key, OAEP).hex(),  # type: ignore[union-attr]
            "nonce": nonce.hex(),
            "ciphertext": AESGCM(data_key).encrypt(nonce, plaintext, self.name.encode()).hex(),
        }
        write_durably(self.folder / "log" / f"{time.time_ns()}.json", json.dumps(record).encode())

    def read_log(self, private_key_pem: bytes, passphrase: bytes) -> Mapping:
        """Every mapping this project recorded; only the custodian's private key opens it."""
        try:
            private = serialization.load_pem_private_key(private_key_pem, passphrase)
        except (ValueError, TypeError) as exc:
            raise CustodyError("the custodian key or its passphrase is wrong") from exc
        uids: dict[str, str] = {}
        patient_ids: dict[str, str] = {}
        for path in sorted((self.folder / "log").glob("*.json")):
            record = json.loads(path.read_text())
            try:
                data_key = private.decrypt(bytes.fromhex(record["wrapped_key"]), OAEP)  # type: ignore[union-attr]
            except ValueError as exc:
                raise CustodyError(f"{path.name} was not written for this custodian's key") from exc
            plain = AESGCM(data_key).decrypt(bytes.fromhex(record["nonce"]), bytes.fromhex(record["ciphertext"]), self.name.encode())
            entry = json.loads(plain)
            uids.update(entry["uids"])
            patient_ids.update(entry["patient_ids"])
        return Mapping(uids, patient_ids)

    def audit(self, action: str, reason: str, detail: str) -> None:
        line = json.dumps({"at": datetime.now(timezone.utc).isoformat(), "action": action, "reason": reason,
                           "detail": detail, "user": os.environ.get("USER", "")})
        with (self.folder / "audit.jsonl").open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def reidentify(project: Project, private_key_pem: bytes, passphrase: bytes, reason: str, pseudonymous_id: str) -> str:
    """The original of a new UID or pseudonym; needs the custodian's key and a reason, always audited."""
    if len(reason.strip()) < 10:
        raise CustodyError("re-identification needs a reason of at least 10 characters")
    mapping = project.read_log(private_key_pem, passphrase)
    reverse = {new: old for old, new in {**mapping.uids, **mapping.patient_ids}.items()}
    project.audit("reidentify", reason.strip(), f"asked for {pseudonymous_id}; found={pseudonymous_id in reverse}")
    if pseudonymous_id not in reverse:
        raise CustodyError(f"{pseudonymous_id} is not in project {project.name}'s log")
    return reverse[pseudonymous_id]


def export_maps(project: Project, private_key_pem: bytes, passphrase: bytes, reason: str, out: Path) -> tuple[Path, Path]:
    """`uid_map.csv` and `patient_id_map.csv` as `id_old,id_new` (the form the MIDI-B benchmark reads)."""
    mapping = project.read_log(private_key_pem, passphrase)
    project.audit("export-maps", reason.strip(), f"{len(mapping.uids)} UIDs, {len(mapping.patient_ids)} patient IDs")
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "uid_map.csv", out / "patient_id_map.csv")
    for path, rows in zip(paths, (mapping.uids, mapping.patient_ids)):
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id_old", "id_new"])
            writer.writerows(sorted(rows.items()))
    return paths
