"""Real peers started for tests: a throwaway PostgreSQL cluster, Orthanc, and the archive itself."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


# --- PostgreSQL -----------------------------------------------------------------------------

def postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh cluster on a free port; yields a server URL without a database name."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/ensure-debian-packages installs it)")
    root = Path(tempfile.mkdtemp(prefix="casebank-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    datadir, port = root / "data", free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    import psycopg

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


# --- Orthanc ----------------------------------------------------------------------------------

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


@contextmanager
def orthanc(modalities: dict[str, list[object]], workdir: Path) -> Iterator[str]:
    """Orthanc 1.10 from Debian with its own config; yields its REST URL."""
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "casebank-test-pacs",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomModalities": modalities,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log = (workdir / "orthanc.log").open("w")
    process = subprocess.Popen([ORTHANC, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/system", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start; see {workdir / 'orthanc.log'}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# --- The archive over real sockets -------------------------------------------------------------

class LiveServer:
    """uvicorn in a thread plus the DICOM receiver, for peers that talk HTTP or DICOM to us."""

    def __init__(self, casebank) -> None:  # type: ignore[no-untyped-def]
        from api.app import create_app

        self.casebank = casebank
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.receiver = casebank.receiver(host="127.0.0.1")
        config = uvicorn.Config(create_app(casebank), host="127.0.0.1", port=self.http_port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def dicom_port(self) -> int:
        return self.casebank.settings.dicom_port

    @property
    def ae_title(self) -> str:
        return self.casebank.settings.ae_title

    def __enter__(self) -> LiveServer:
        self.receiver.start()
        self.thread.start()
        wait_for_port(self.http_port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.receiver.stop()


# --- A network link that can be cut ---------------------------------------------------------------

class CuttableLink:
    """A TCP forwarder to ``target``: ``cut()`` refuses new connections and drops open ones,
    ``restore()`` listens again on the same port. Stands for a network outage of a real peer."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._socket = socket
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = None
        self._open: list = []
        self._lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = self._socket.socket(self._socket.AF_INET, self._socket.SOCK_STREAM)
        listener.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                try:
                    self._listener.shutdown(self._socket.SHUT_RDWR)  # wakes the accepting thread
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for conn in self._open:
                try:
                    conn.shutdown(self._socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._open.clear()

    def _accept(self, listener) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source, sink) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                try:
                    conn.shutdown(self._socket.SHUT_RDWR)
                except OSError:
                    pass


class MailInbox:
    """What a real SMTP server (aiosmtpd) received: its envelopes, in order."""

    def __init__(self) -> None:
        self.messages: list = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802 (aiosmtpd's hook)
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[MailInbox]:
    """aiosmtpd on a free loopback port; the inbox knows its port."""
    from aiosmtpd.controller import Controller

    inbox = MailInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()
