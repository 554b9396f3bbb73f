"""Static checks of the production deployment in compose/.

There is no Docker engine on the test machines, so `docker compose config` (and starting the
stack) cannot run here. These tests check what can be checked without it: the YAML parses, every
CASEBANK_* variable it sets is one Casebank actually reads, and the topology the deployment
promises (two archive replicas, a three-node OpenSearch cluster, an edge whose identified data
never reaches the archive).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.settings import Settings

COMPOSE_DIR = Path(__file__).resolve().parent.parent / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def casebank_settings() -> set[str]:
    """The environment variable names Casebank reads, derived from the settings model."""
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix, "Settings must read a prefixed environment"
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment, from either Compose form: a mapping or a list of NAME=VALUE."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in env:
        name, sep, value = str(item).partition("=")
        result[name] = value if sep else None
    return result


def volume_sources(service: dict[str, Any]) -> set[str]:
    sources = set()
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            sources.add(str(volume.get("source", "")))
        else:
            sources.add(str(volume).split(":", 1)[0])
    return sources


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def archive_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services running the archive side of Casebank (serve, migrate): never the edge."""
    found = {}
    for name, service in services.items():
        words = command_words(service)
        if words[:1] == ["casebank"] and words[1:2] in (["serve"], ["migrate"], ["reindex"]):
            found[name] = service
    return found


def test_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_every_casebank_variable_is_a_setting_casebank_reads(services: dict[str, dict[str, Any]]) -> None:
    known = casebank_settings()
    used = {
        (name, variable)
        for name, service in services.items()
        for variable in environment(service)
        if variable.startswith("CASEBANK_")
    }
    assert used, "the compose file configures Casebank through CASEBANK_* variables"
    unknown = sorted(f"{service}: {variable}" for service, variable in used if variable not in known)
    assert not unknown, f"not read by api/settings.py: {unknown}; known: {sorted(known)}"


def test_archive_is_configured_for_scale(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["archive"])
    assert env["CASEBANK_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["CASEBANK_DATABASE_URL"]
    assert env["CASEBANK_SEARCH_URL"].startswith("http://opensearch-")
    assert env["CASEBANK_DATA"] == "/data"
    # Secrets come from the environment (compose/.env), never from the file itself.
    assert env["CASEBANK_SECRET_KEY"].startswith("${")
    assert "${POSTGRES_PASSWORD" in env["CASEBANK_DATABASE_URL"]
    # The migration runs against the same database and data as the replicas.
    migrate = environment(services["migrate"])
    for variable in ("CASEBANK_DATABASE_URL", "CASEBANK_SEARCH_URL", "CASEBANK_DATA"):
        assert migrate[variable] == env[variable]


def test_archive_runs_two_replicas_with_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    archive = services["archive"]
    assert archive["deploy"]["replicas"] == 2
    assert command_words(archive)[:2] == ["casebank", "serve"]
    assert "container_name" not in archive  # a fixed name would forbid replicas
    assert not archive.get("ports"), "replicas are reached through the proxy, not published"
    assert "/api/health" in " ".join(archive["healthcheck"]["test"])


def test_health_check_path_is_the_real_endpoint(services: dict[str, dict[str, Any]]) -> None:
    from api.routes.health import router

    paths = {route.path for route in router.routes}
    test = " ".join(services["archive"]["healthcheck"]["test"])
    assert any(path in test for path in paths), (paths, test)


def test_three_opensearch_nodes_form_one_cluster(services: dict[str, dict[str, Any]]) -> None:
    nodes = {name: s for name, s in services.items() if str(s.get("image", "")).startswith("opensearchproject/opensearch:")}
    assert sorted(nodes) == ["opensearch-1", "opensearch-2", "opensearch-3"]
    envs = [environment(service) for service in nodes.values()]
    assert len({env["cluster.name"] for env in envs}) == 1
    assert {env["node.name"] for env in envs} == set(nodes)
    for service, env in zip(nodes.values(), envs):
        assert str(service["image"]).split(":", 1)[1].startswith("2.")
        assert set(env["discovery.seed_hosts"].split(",")) == set(nodes)
        assert set(env["cluster.initial_cluster_manager_nodes"].split(",")) == set(nodes)
        assert env["bootstrap.memory_lock"] == "true"
        assert service["ulimits"]["memlock"] == {"soft": -1, "hard": -1}
        assert "-Xms" in env["OPENSEARCH_JAVA_OPTS"] and "-Xmx" in env["OPENSEARCH_JAVA_OPTS"]
    # Each node keeps its own data.
    volumes = [volume_sources(service) for service in nodes.values()]
    assert all(len(v) == 1 for v in volumes) and len(set.union(*volumes)) == 3


def test_security_plugin_disabled_only_with_a_production_warning() -> None:
    text = COMPOSE_FILE.read_text()
    if "DISABLE_SECURITY_PLUGIN" in text:
        assert re.search(r"production must enable", text, re.IGNORECASE)


def test_edge_data_is_never_mounted_by_the_archive(services: dict[str, dict[str, Any]]) -> None:
    edge = services["edge"]
    words = command_words(edge)
    assert words[:3] == ["casebank", "edge", "run"]
    edge_data = environment(edge)["CASEBANK_DATA"]
    edge_volumes = {
        source for source in volume_sources(edge)
        if any(str(v).startswith(f"{source}:{edge_data}") for v in edge["volumes"])
    }
    assert edge_volumes, "the edge keeps its data on a volume of its own"
    archive_side = archive_services(services)
    assert {"archive", "migrate"} <= set(archive_side)
    for name, service in archive_side.items():
        shared = edge_volumes & volume_sources(service)
        assert not shared, f"{name} mounts the edge's identified data {shared}"
    # ... nor by anything else.
    for name, service in services.items():
        if name != "edge":
            assert not edge_volumes & volume_sources(service), name


def test_edge_command_uses_real_flags(services: dict[str, dict[str, Any]]) -> None:
    """The flags must exist in `casebank edge run` (parse them with the real CLI parser)."""
    from api.cli import build_parser

    try:
        args = build_parser().parse_args(command_words(services["edge"])[1:])
    except SystemExit:
        pytest.fail(f"`casebank edge run` rejects the edge's command: {command_words(services['edge'])}")
    assert args.archive == "CASEBANK@proxy:11112"
    assert args.pacs.endswith("@orthanc:4242")


def test_every_dependency_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or []
        for dependency in depends:
            assert dependency in services, f"{name} depends on missing service {dependency}"
    depends = services["archive"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert command_words(services["migrate"])[:2] == ["casebank", "migrate"]
    for dependency, spec in depends.items():
        if spec["condition"] == "service_healthy":
            assert "healthcheck" in services[dependency], dependency


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source in volume_sources(service):
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_orthanc_knows_the_edge(services: dict[str, dict[str, Any]]) -> None:
    import json

    modalities = json.loads(environment(services["orthanc"])["ORTHANC__DICOM_MODALITIES"])
    words = command_words(services["edge"])
    port = int(words[words.index("--port") + 1])
    ae = words[words.index("--edge-ae") + 1] if "--edge-ae" in words else "CASEBANK-EDGE"
    assert [ae, "edge", port] in modalities.values()


def test_required_variables_are_listed_in_env_example() -> None:
    text = COMPOSE_FILE.read_text()
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert referenced <= listed, f"missing from compose/.env.example: {sorted(referenced - listed)}"
    for required in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text):
        assert required in listed


def test_proxy_config_balances_http_and_dicom() -> None:
    conf = (COMPOSE_DIR / "nginx.conf").read_text()
    assert re.search(r"^stream\s*\{", conf, re.MULTILINE)
    assert re.search(r"listen\s+11112;", conf)
    assert re.search(r"server\s+archive:8000\b", conf)
    assert re.search(r"server\s+archive:11112\b", conf)
