"""deploy/ agrees with the code: settings, routes, commands, metrics, the image's user.

`make deploy-check` validates each file against its own schema (hadolint, the Compose
specification, Kubernetes, promtool); these tests check what no schema knows: that the
files name settings, routes, commands and metrics Assay really has, and that the
hardening every manifest promises is there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from prometheus_client import REGISTRY

import assay.app
from assay.app import create_app
from assay.cli import app as cli_app
from assay.core.config_check import production_problems
from assay.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"

# Named in deploy/ ahead of the code that is being written for them (issue 15): the
# jobs worker (`assay worker` and its broker setting), the job metrics and the circuit
# breakers. Each is allowed whether or not it exists yet; once it has landed, the entry
# can go.
PENDING_SETTINGS: frozenset[str] = frozenset()
PENDING_COMMANDS: frozenset[str] = frozenset()
PENDING_METRICS: frozenset[str] = frozenset()

ENV_NAME = re.compile(r"\bASSAY_[A-Z0-9_]+\b")
METRIC_NAME = re.compile(r"\bassay_[a-z0-9_]+\b")
# Recording rules of deploy/prometheus/alerts.yml are named level:metric:operations.
RECORDED = re.compile(r"\bassay:[a-z0-9_:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}")


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose() -> dict[str, Any]:
    return load_all(DEPLOY / "compose.yaml")[0]


def kubernetes_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        for doc in load_all(path):
            if isinstance(doc, dict):
                yield path, doc


def base_workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment and Job in the kustomize base."""
    for path in sorted((KUBERNETES / "base").glob("*.yaml")):
        for doc in load_all(path):
            if doc.get("kind") in {"Deployment", "Job"}:
                yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def dockerfile_runtime_stage() -> list[str]:
    """The instructions of the Dockerfile's last stage, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_runtime_stage():
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_uid() -> int:
    users = [line.split()[1] for line in dockerfile_runtime_stage() if line.startswith("USER ")]
    assert users, "the runtime stage sets no USER: the image would run as root"
    return int(users[-1].split(":")[0])


def setting_variables() -> set[str]:
    return {f"ASSAY_{name.upper()}" for name in Settings.model_fields}


def deploy_text_files() -> Iterator[Path]:
    """Every file of deploy/ that can name a setting, and the page that explains them."""
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".example", ".json", ""}:
            yield path
    yield REPO / "docs" / "deployment.md"


def cli_commands() -> set[str]:
    group = typer.main.get_command(cli_app)
    return set(group.list_commands(click.Context(group)))


def exposed_metric_names() -> set[str]:
    """Every sample name Prometheus could scrape from this process's registry."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        elif family.type == "info":
            names.add(f"{family.name}_info")
    return names


def referenced_metrics() -> dict[str, set[str]]:
    """Metric names each Prometheus and Grafana file uses, by file."""
    files = [
        DEPLOY / "prometheus" / "alerts.yml",
        *sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")),
    ]
    found: dict[str, set[str]] = {}
    for path in files:
        text = RECORDED.sub("", path.read_text())
        found[path.relative_to(REPO).as_posix()] = set(METRIC_NAME.findall(text))
    return found


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, as `docker compose` does."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"{name} is required: {arg}"
        return arg if op == ":-" else ""

    return INTERPOLATION.sub(replace, value).replace("$$", "$")


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")]
    return dict(pairs)


def settings_from(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    """The settings Assay reads from exactly this environment (and no .env file)."""
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    known = setting_variables()
    for name, value in environment.items():
        if name in known:
            monkeypatch.setenv(name, value)
    return load_settings()


def real_values() -> dict[str, str]:
    """env.example with every secret replaced, as an operator fills it in."""
    values = env_example()
    for name, value in values.items():
        if value == "replace-with-a-generated-secret":
            values[name] = secrets.token_urlsafe(48)
    return values


def compose_assay_environment(variables: dict[str, str]) -> dict[str, str]:
    """What the Assay containers see: the image's ENV, then compose's environment."""
    environment = dict(dockerfile_env())
    for name, value in compose()["x-assay"]["environment"].items():
        if value is None:  # passed on from deploy/.env only when set there
            if variables.get(name):
                environment[name] = variables[name]
        else:
            environment[name] = interpolate(str(value), variables)
    return environment


def strip_histogram_suffix(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


# --- the image -----------------------------------------------------------------------


def test_image_runs_as_a_fixed_non_root_user() -> None:
    assert image_uid() >= 1000


def test_image_healthcheck_asks_livez_and_starts_assay_serve() -> None:
    stage = dockerfile_runtime_stage()
    healthchecks = [line for line in stage if line.startswith("HEALTHCHECK ")]
    assert len(healthchecks) == 1
    assert "/livez" in healthchecks[0]
    assert "curl" not in healthchecks[0]  # not in the slim base
    assert 'ENTRYPOINT ["assay"]' in stage
    assert 'CMD ["serve"]' in stage


def test_image_writes_only_to_its_volumes() -> None:
    env = dockerfile_env()
    volumes = next(line for line in dockerfile_runtime_stage() if line.startswith("VOLUME "))
    declared = set(json.loads(volumes.removeprefix("VOLUME ")))
    assert {env["ASSAY_DATA_DIR"], env["TMPDIR"]} <= declared
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_image_listens_on_every_address_at_the_exposed_port() -> None:
    env = dockerfile_env()
    exposed = next(line for line in dockerfile_runtime_stage() if line.startswith("EXPOSE "))
    assert env["ASSAY_HOST"] == "0.0.0.0"
    assert exposed.split()[1] == env["ASSAY_PORT"]


def test_every_image_is_pinned_to_a_version() -> None:
    images = [
        line.split()[1]
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG PYTHON_IMAGE=")
    ]
    images = [image.removeprefix("PYTHON_IMAGE=") for image in images]
    images += [
        service["image"]
        for service in compose()["services"].values()
        if not service["image"].startswith("${")
    ]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name, f"{image} has no tag"
        assert tag != "latest"
        assert re.search(r"\d+\.\d+", tag), f"{image}: pin a version, not a moving tag"


# --- settings, routes and commands ---------------------------------------------------


@pytest.mark.parametrize(
    "path", list(deploy_text_files()), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_every_assay_variable_in_deploy_is_a_setting(path: Path) -> None:
    unknown = set(ENV_NAME.findall(path.read_text())) - setting_variables() - PENDING_SETTINGS
    assert not unknown, f"{path.relative_to(REPO)} names variables Assay has no setting for"


def test_every_secret_setting_in_compose_comes_from_the_env_file() -> None:
    environment = compose()["x-assay"]["environment"]
    secrets = {
        f"ASSAY_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    for name in secrets & set(environment):
        value = environment[name]
        assert value is None or str(value).startswith("${"), f"{name} has a value in compose.yaml"


def test_env_example_holds_placeholders_only() -> None:
    for line in (DEPLOY / "env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if line.startswith("#") or not value:
            continue
        if "SECRET" in name or "KEY" in name or "PASSWORD" in name or "TOKEN" in name:
            assert value == "replace-with-a-generated-secret", name


def test_no_kubernetes_secret_is_committed() -> None:
    for path, doc in kubernetes_documents():
        assert doc.get("kind") != "Secret", path
        assert "secretGenerator" not in doc, path


def test_probe_paths_are_routes_of_the_app(settings_factory: Callable[..., Settings]) -> None:
    paths = create_app(settings_factory()).openapi()["paths"]
    routes = {path for path, operations in paths.items() if "get" in operations}
    probes: set[str] = set()
    for _, pod in base_workloads():
        for container in pod["containers"]:
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if kind in container:
                    probes.add(container[kind]["httpGet"]["path"])
    for service in compose()["services"].values():
        test = " ".join(map(str, service.get("healthcheck", {}).get("test", [])))
        probes.update(re.findall(r"127\.0\.0\.1:8000(/[a-z]+)", test))
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    probes.update(re.findall(r"health_uri (\S+)", caddyfile))
    probes.update(re.findall(r"(/[a-z]+)'", " ".join(dockerfile_runtime_stage())))
    assert {"/livez", "/readyz"} <= probes
    assert probes <= routes


def test_commands_run_by_deploy_are_assay_commands() -> None:
    commands = cli_commands() | PENDING_COMMANDS
    used: list[list[str]] = [
        list(service["command"])
        for service in compose()["services"].values()
        if service.get("image", "").startswith("${DEPLOY_IMAGE")
    ]
    used += [container["args"] for _, pod in base_workloads() for container in pod["containers"]]
    assert used
    for argv in used:
        assert argv[0] in commands, argv
    assert ["migrate", "upgrade"] in used


def test_compose_environment_passes_every_production_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from(compose_assay_environment(real_values()), monkeypatch, tmp_path)
    assert settings.is_production
    assert production_problems(settings) == []
    assert settings.effective_database_url.startswith("postgresql")
    assert settings.redis_url


def test_compose_never_sets_a_setting_to_an_empty_value() -> None:
    # An empty ASSAY_SMTP_USERNAME is a user name of "", not "no authentication".
    for name, value in compose()["x-assay"]["environment"].items():
        assert value is None or ":-}" not in str(value), name
    for value in compose_assay_environment(env_example()).values():
        assert value != ""


def test_compose_with_the_example_values_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from(compose_assay_environment(env_example()), monkeypatch, tmp_path)
    problems = " ".join(production_problems(settings))
    for name in ("TOKEN_SIGNING_KEY", "SESSION_SECRET", "ENCRYPTION_KEY", "METRICS_TOKEN"):
        assert f"ASSAY_{name}" in problems


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_configuration_passes_every_production_check(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = dict(dockerfile_env())
    environment.update(load_all(KUBERNETES / "base" / "configmap.yaml")[0]["data"])
    environment.update(load_all(KUBERNETES / "overlays" / overlay / "config.yaml")[0]["data"])
    (pod,) = [pod for name, pod in base_workloads() if name == "assay-api"]
    for variable in pod["containers"][0]["env"]:
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "assay-secrets"
        assert reference["key"] == variable["name"]
        environment[variable["name"]] = secrets.token_urlsafe(48)
    environment["ASSAY_DATABASE_URL"] = "postgresql://assay:pw@db.internal/assay"
    environment["ASSAY_REDIS_URL"] = "redis://cache.internal:6379/0"
    environment["ASSAY_JOBS_BROKER"] = "redis://cache.internal:6379/1"
    settings = settings_from(environment, monkeypatch, tmp_path)
    assert production_problems(settings) == []


# --- hardening -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, _ in base_workloads()])
def test_kubernetes_workload_is_hardened(name: str) -> None:
    pod = dict(base_workloads())[name]
    uid = image_uid()
    env = dockerfile_env()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {env["ASSAY_DATA_DIR"], env["TMPDIR"]} <= mounts


def base_documents() -> list[dict[str, Any]]:
    return [doc for path, doc in kubernetes_documents() if path.parent.name == "base"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    matched = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        matched = matched and labels.get(expression["key"]) in expression["values"]
    return matched


def test_kubernetes_selectors_and_references_reach_real_workloads() -> None:
    docs = base_documents()
    pods = {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"]
        for doc in docs
        if doc["kind"] in {"Deployment", "Job"}
    }
    deployments = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Deployment"}
    scaled = set()
    for doc in docs:
        kind, spec = doc["kind"], doc.get("spec", {})
        if kind in {"PodDisruptionBudget", "NetworkPolicy"}:
            key = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            assert any(selects(spec[key], labels) for labels in pods.values()), doc
        elif kind == "Service":
            selector = {"matchLabels": spec["selector"]}
            assert any(selects(selector, labels) for labels in pods.values()), doc
        elif kind == "HorizontalPodAutoscaler":
            scaled.add(spec["scaleTargetRef"]["name"])
        elif kind == "Ingress":
            backend = spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
            assert backend in {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    # The autoscaler owns the count: a replicas field would reset it at every apply.
    assert scaled == set(deployments)
    assert all("replicas" not in deployment["spec"] for deployment in deployments.values())


def test_api_pods_have_every_probe_and_outlast_the_shutdown_grace() -> None:
    pod = dict(base_workloads())["assay-api"]
    (container,) = pod["containers"]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container)
    config = load_all(KUBERNETES / "base" / "configmap.yaml")[0]["data"]
    grace = float(config["ASSAY_SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > grace + 5  # the preStop pause


def test_compose_assay_services_are_read_only_non_root_and_checked() -> None:
    services = compose()["services"]
    uid = image_uid()
    env = dockerfile_env()
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        if not service["image"].startswith("${DEPLOY_IMAGE"):
            continue
        assert service["user"] == f"{uid}:{uid}"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert any(entry.startswith(env["TMPDIR"] + ":") for entry in service["tmpfs"])
        assert any(entry.endswith(":" + env["ASSAY_DATA_DIR"]) for entry in service["volumes"])
        if service["healthcheck"].get("disable"):
            assert service["restart"] == "no", f"{name}: only the one-shot may go unchecked"


def test_proxy_and_prometheus_reach_exactly_the_api_services() -> None:
    services = compose()["services"]
    api = {name for name, service in services.items() if service.get("command") == ["serve"]}
    assert len(api) >= 2
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams
    assert {target.split(":")[0] for target in upstreams.group(1).split()} == api
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "assay-api"]
    targets = {t.split(":")[0] for config in job["static_configs"] for t in config["targets"]}
    assert targets == api
    # Production refuses unknown Host headers on /metrics; Prometheus sends the target's.
    allowed = services["api-1"]["environment"]["ASSAY_ALLOWED_HOSTS"].split(",")
    assert targets <= set(allowed)
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert compose()["secrets"]["metrics_token"]["environment"] == "ASSAY_METRICS_TOKEN"


def test_proxies_accept_the_largest_body_assay_accepts() -> None:
    largest = Settings.model_fields["max_upload_bytes"].default
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    caddy_limit = re.search(r"max_size (\d+)MiB", caddyfile)
    assert caddy_limit
    assert int(caddy_limit.group(1)) * 2**20 == largest
    (ingress,) = load_all(KUBERNETES / "base" / "api-ingress.yaml")
    nginx_limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(nginx_limit.removesuffix("m")) * 2**20 == largest


# --- metrics -------------------------------------------------------------------------


def test_metrics_in_alerts_and_dashboards_exist_or_are_announced() -> None:
    assert assay.app  # importing the app registers every metric its modules define
    known = exposed_metric_names()
    for path, names in referenced_metrics().items():
        assert names, path
        unknown = {n for n in names if n not in known and n not in PENDING_METRICS}
        unknown = {n for n in unknown if strip_histogram_suffix(n) not in PENDING_METRICS}
        assert not unknown, f"{path} uses metrics Assay does not expose"


def test_dashboard_panels_use_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    (source,) = provisioned["datasources"]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "assay.json").read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


def test_dashboard_covers_the_operator_questions() -> None:
    names = set().union(*referenced_metrics().values())
    for needed in (
        "assay_http_requests_total",
        "assay_http_request_duration_seconds_bucket",
        "assay_model_request_duration_seconds_bucket",
        "assay_jobs_queue_depth",
        "assay_job_duration_seconds_bucket",
        "assay_circuit_breaker_state",
        "assay_model_integrity_failures_total",
    ):
        assert needed in names
