"""osmem-server: an OpenSearch API server from PyPI, started once for the search tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def osmem_url() -> Iterator[str]:
    from osmem_server import OsmemServer

    with OsmemServer.start() as server:
        yield server.url
