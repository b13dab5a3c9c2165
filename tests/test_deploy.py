"""Checks of deploy/: every file parses, dashboards and alerts name only metrics the service
exports (with labels it has), probes and durability settings are what the runbook says.

Fast and offline: no Docker, no cluster. PyYAML is needed for the YAML checks (they skip
without it); promtool (Debian package ``prometheus``) is used when installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML belongs in the test extras
    yaml = None

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "dropserver.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
K8S = DEPLOY / "k8s"

needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML is not installed")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

# --------------------------------------------------------------------------- the contract
# The service's metric names (fixed; see the metrics section of the deployment brief) and the
# sample names Prometheus stores for each.
COUNTERS = {
    "dropserver_http_requests": {"route", "method", "status"},
    "dropserver_purchases": {"drop", "outcome"},
    "dropserver_holds_expired": {"drop"},
    "dropserver_pow_challenges_issued": {"drop"},
    "dropserver_pow_verifications": {"drop", "outcome"},
    "dropserver_ratelimit_rejections": {"drop", "kind"},
    "dropserver_lottery_entries": {"drop", "outcome"},
    "dropserver_redis_errors": set(),
    "dropserver_redis_redirects": set(),
    "dropserver_webhook_attempts": {"platform", "outcome"},
}
HISTOGRAMS = {
    "dropserver_http_request_duration_seconds": {"route", "method"},
    "dropserver_draw_duration_seconds": set(),
    "dropserver_redis_batch_size": set(),
    "dropserver_redis_roundtrip_seconds": set(),
    "dropserver_event_loop_lag_seconds": set(),
    "dropserver_webhook_seconds": {"platform"},
}
GAUGES = {
    "dropserver_stock_remaining": {"drop"},
    "dropserver_stock_held": {"drop"},
    "dropserver_stock_confirmed": {"drop"},
    "dropserver_stock_supply": {"drop"},
    "dropserver_pow_difficulty": {"drop"},
    "dropserver_pow_pool_stock": {"algorithm"},
}
# prometheus-client's ProcessCollector
PROCESS = {
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
}
# Series Prometheus makes itself.
PROMETHEUS_OWN = {"up", "ALERTS"}
# Labels every scraped series has, besides its own.
TARGET_LABELS = {"job", "instance"}


def sample_labels() -> dict[str, set[str]]:
    """Every dropserver sample name -> its label names."""
    out: dict[str, set[str]] = {}
    for name, labels in COUNTERS.items():
        out[f"{name}_total"] = set(labels)
    for name, labels in HISTOGRAMS.items():
        out[f"{name}_bucket"] = {*labels, "le"}
        out[f"{name}_sum"] = set(labels)
        out[f"{name}_count"] = set(labels)
    for name, labels in GAUGES.items():
        out[name] = set(labels)
    return out


DROPSERVER_SAMPLES = sample_labels()


def allowed_metric(name: str) -> bool:
    return (
        name in DROPSERVER_SAMPLES
        or name in PROCESS
        or name in PROMETHEUS_OWN
        or name.startswith("redis_")  # oliver006/redis_exporter
    )


# --------------------------------------------------------------------------- PromQL scanning
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\w)(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {m for m in _IDENT.findall(text) if m not in _KEYWORDS}


def selector_labels(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric, label names matched in its {...} selector) for each selector in expr."""
    text = _STRING.sub(lambda m: m.group(0).replace("{", "(").replace("}", ")"), expr)
    for match in _SELECTOR.finditer(text):
        yield match.group(1), set(_MATCHER_LABEL.findall(match.group(2)))


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for _, names in _GROUPING.findall(_STRING.sub('""', expr)):
        labels |= {n.strip() for n in names.split(",") if n.strip()}
    return labels


def test_promql_scanner() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(dropserver_http_request_duration_"
        'seconds_bucket{route=~"/v1/drops/{id}/x", instance=~"$instance"}[$__rate_interval])))'
        " / on (job) group_left sum(up) or vector(0)"
    )
    assert metric_names(expr) == {"dropserver_http_request_duration_seconds_bucket", "up"}
    assert dict(selector_labels(expr)) == {
        "dropserver_http_request_duration_seconds_bucket": {"route", "instance"}
    }
    assert grouping_labels(expr) == {"le", "route", "job"}


# --------------------------------------------------------------------------- loading
def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"})


def load_yaml_docs(path: Path) -> list[Any]:
    assert yaml is not None
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def dashboard_exprs() -> list[tuple[str, str, str]]:
    """(panel title, legend, expr) of every query of the dashboard, annotations included."""
    board = dashboard()
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target.get("legendFormat", ""), target["expr"]))
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            out.append(("annotation " + annotation["name"], "", annotation["expr"]))
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert inner, f"variable {var['name']}: unexpected query {query!r}"
            out.append((f"variable {var['name']}", "", inner.group(1)))
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml_docs(ALERTS)[0]
    return [rule for group in doc["groups"] for rule in group["rules"]]


def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- parsing
def test_every_json_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.json"))
    assert DASHBOARD in files
    for path in files:
        json.loads(path.read_text())


@needs_yaml
def test_every_yaml_file_parses() -> None:
    files = _yaml_files()
    assert len(files) >= 10
    for path in files:
        assert load_yaml_docs(path), f"{path} is empty"


def test_compose_toml_parses() -> None:
    config = tomllib.loads((DEPLOY / "dropserver.compose.toml").read_text())
    assert config["redis"]["url"].startswith("redis://redis:")
    assert config["server"]["host"] == "0.0.0.0"


# --------------------------------------------------------------------------- metric names
@needs_yaml
def test_alerts_name_only_exported_metrics_and_labels() -> None:
    for rule in alert_rules():
        check_expr(f"alert {rule['alert']}", rule["expr"])


def test_dashboard_names_only_exported_metrics_and_labels() -> None:
    for title, legend, expr in dashboard_exprs():
        check_expr(f"panel {title!r}", expr, legend)


def check_expr(where: str, expr: str, legend: str = "") -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = sorted(n for n in names if not allowed_metric(n))
    assert not unknown, f"{where}: metrics the service does not export: {unknown}"
    for metric, labels in selector_labels(expr):
        if metric in DROPSERVER_SAMPLES:
            extra = labels - DROPSERVER_SAMPLES[metric] - TARGET_LABELS
            assert not extra, f"{where}: {metric} has no label(s) {sorted(extra)}"
    ours = [n for n in names if n in DROPSERVER_SAMPLES]
    if ours and len(ours) == len(names - PROMETHEUS_OWN):
        known = set().union(*(DROPSERVER_SAMPLES[n] for n in ours)) | TARGET_LABELS
        missing = grouping_labels(expr) - known
        assert not missing, f"{where}: grouping by label(s) no metric has: {sorted(missing)}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert legend_labels <= known, f"{where}: legend uses unknown {legend_labels - known}"


def test_the_service_exports_what_deploy_uses() -> None:
    """When the service's metrics module exists, its registry is the ground truth."""
    metrics_module = pytest.importorskip("dropserver.metrics")
    from prometheus_client.metrics import MetricWrapperBase

    from dropserver.tally import Tally

    instance = metrics_module.Metrics()
    # Collector-made families show their labels only on samples: give them one request.
    instance.requests.record("/v1/drops/{id}", "GET", 200, 0.001)
    exported: dict[str, set[str]] = {}
    for family in instance.registry.collect():
        if family.type == "counter":
            exported[f"{family.name}_total"] = set()
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                exported[family.name + suffix] = set()
        else:
            exported[family.name] = set()
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    for value in vars(instance).values():
        if isinstance(value, MetricWrapperBase):
            # the family name and its labels (not public API)
            name, label_names = value._name, value._labelnames
        elif isinstance(value, Tally):
            name, label_names = value.name, value.label_names
        else:
            continue
        for sample in exported:
            if sample == name or sample.rsplit("_", 1)[0] == name:
                exported[sample] |= set(label_names)
    missing = sorted(set(DROPSERVER_SAMPLES) - set(exported))
    assert not missing, f"metrics of the contract the service does not export: {missing}"
    for sample, labels in DROPSERVER_SAMPLES.items():
        got = exported[sample] - {"le"}
        assert got == labels - {"le"}, f"{sample}: labels {sorted(got)}, expected {sorted(labels)}"
    used = {n for _, _, e in dashboard_exprs() for n in metric_names(e)}
    if yaml is not None:
        used |= {n for rule in alert_rules() for n in metric_names(rule["expr"])}
    not_exported = sorted(
        n for n in used if n.startswith(("dropserver_", "process_")) and n not in exported
    )
    assert not not_exported, (
        f"deploy/ uses metrics the service's registry does not export: {not_exported} "
        "(process_*: register prometheus_client.ProcessCollector on the app's registry)"
    )


# --------------------------------------------------------------------------- alerts
@needs_yaml
def test_every_alert_is_actionable() -> None:
    rules = alert_rules()
    assert len(rules) >= 15
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
    # the alerts the runbook in deploy/README.md promises
    for expected in (
        "DropserverHigh5xxRatio",
        "DropserverPurchaseLatencyHigh",
        "DropserverRedisErrors",
        "DropserverStockNegative",
        "DropserverStockAccountingMismatch",
        "DropserverNotReady",
        "DropserverPowPoolEmpty",
        "DropserverRateLimitSurge",
        "DropserverHoldsExpiringEnMasse",
    ):
        assert expected in names
    readme = (DEPLOY / "README.md").read_text()
    for name in names:
        assert name in readme, f"{name} is not described in deploy/README.md"


@needs_promtool
def test_promtool_config_rules_and_rule_unit_tests() -> None:
    prom = DEPLOY / "prometheus"
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        run = subprocess.run(
            [str(PROMTOOL), *args], cwd=prom, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, f"promtool {' '.join(args)}:\n{run.stdout}\n{run.stderr}"


@needs_promtool
@needs_yaml
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    assert yaml is not None
    rules = []
    for i, (_, _, expr) in enumerate(dashboard_exprs()):
        concrete = (
            expr.replace("$__rate_interval", "1m").replace("$drop", ".*").replace("$instance", ".*")
        )
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


@needs_yaml
def test_prometheusrule_is_rendered_from_alerts() -> None:
    rule = load_yaml_docs(K8S / "optional" / "prometheusrule.yaml")[0]
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load_yaml_docs(ALERTS)[0]["groups"], (
        "run: python deploy/k8s/optional/render_prometheusrule.py"
    )


# --------------------------------------------------------------------------- dashboard
def test_dashboard_is_generated_by_its_script() -> None:
    module = load_module(DEPLOY / "grafana" / "build_dashboard.py")
    assert module.render() == DASHBOARD.read_text(), "run: python deploy/grafana/build_dashboard.py"


def test_dashboard_is_importable() -> None:
    board = dashboard()
    assert board["uid"] == "dropserver" and board["title"]
    assert isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["drop"]["multi"] and variables["drop"]["includeAll"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = {p["title"] for p in board["panels"]}
    for wanted in (
        "Request rate by route",
        "Latency p50 / p99 by route",
        "Purchases by outcome",
        "Stock: $drop",
        "PoW pool stock",
        "Rate-limit rejections by kind",
        "Redis batch size (script calls per round trip)",
        "Redis round trip latency",
        "Lottery entries by outcome",
        "Lottery draw duration",
    ):
        assert wanted in titles
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    stock = next(p for p in board["panels"] if p["title"] == "Stock: $drop")
    assert stock["repeat"] == "drop"


@needs_yaml
def test_grafana_provisioning_points_at_the_dashboards() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    source = load_yaml_docs(prov / "datasources" / "prometheus.yml")[0]["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = load_yaml_docs(prov / "dashboards" / "dropserver.yml")[0]["providers"][0]
    compose = load_yaml_docs(DEPLOY / "docker-compose.yml")[0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


# --------------------------------------------------------------------------- kubernetes
@needs_yaml
def test_deployment_probes_security_and_shutdown() -> None:
    objects = k8s_objects()
    deployment = objects[("Deployment", "dropserver")]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8080
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8080)

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/dropserver"]]["secret"]["secretName"] == "dropserver-config"
    assert "podAntiAffinity" in pod["affinity"]
    assert container["resources"]["requests"]["cpu"]

    # SIGTERM comes after preStop; both must fit in the grace period with the drain time.
    env = objects[("ConfigMap", "dropserver-env")]["data"]
    drain = float(env["DROPSERVER_SERVER_SHUTDOWN_TIMEOUT"])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


@needs_yaml
def test_selectors_match_the_pods() -> None:
    objects = k8s_objects()
    pod_labels = objects[("Deployment", "dropserver")]["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return all(pod_labels.get(k) == v for k, v in selector.items())

    service = objects[("Service", "dropserver")]
    assert selects(service["spec"]["selector"])
    assert selects(
        objects[("PodDisruptionBudget", "dropserver")]["spec"]["selector"]["matchLabels"]
    )
    hpa = objects[("HorizontalPodAutoscaler", "dropserver")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "dropserver",
    }
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    monitor = objects[("ServiceMonitor", "dropserver")]["spec"]
    assert selects(monitor["selector"]["matchLabels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= service_ports
    for (kind, name), obj in objects.items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "dropserver", (kind, name)


@needs_yaml
def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml_docs(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@needs_yaml
def test_secret_toml_is_valid_config() -> None:
    secret = k8s_objects()[("Secret", "dropserver-config")]
    text = secret["stringData"]["dropserver.toml"]
    check_service_config(text)
    for key in ("DROPSERVER_POW_SECRET", "DROPSERVER_POW_KEY_SIGNATURE_SECRET"):
        assert len(secret["stringData"][key]) >= 16


def test_compose_toml_is_valid_config() -> None:
    check_service_config((DEPLOY / "dropserver.compose.toml").read_text())


def check_service_config(text: str) -> None:
    tomllib.loads(text)
    config = pytest.importorskip("dropserver.config")
    settings = config.parse_settings(tomllib.loads(text))
    assert settings.redis.url is not None, "a deployment must name its Redis"
    assert settings.server.host == "0.0.0.0"


# --------------------------------------------------------------------------- redis durability
def _redis_conf(text: str) -> dict[str, str]:
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key] = value.strip()
    return conf


@needs_yaml
def test_redis_is_durable_and_never_evicts() -> None:
    configmap = k8s_objects()[("ConfigMap", "redis-config")]
    for text in ((DEPLOY / "redis" / "redis.conf").read_text(), configmap["data"]["redis.conf"]):
        conf = _redis_conf(text)
        assert conf["appendonly"] == "yes"
        assert conf["appendfsync"] in {"everysec", "always"}
        assert conf["maxmemory-policy"] == "noeviction"
        assert conf["dir"] == "/data"
    statefulset = k8s_objects()[("StatefulSet", "redis")]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {
        m["mountPath"]: m["name"]
        for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts["/data"] == claim["metadata"]["name"]


# --------------------------------------------------------------------------- compose, docker
@needs_yaml
def test_compose_stack() -> None:
    compose = load_yaml_docs(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    assert {"redis", "dropserver-1", "dropserver-2", "prometheus", "grafana"} <= set(services)
    assert "redis-data:/data" in services["redis"]["volumes"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build:
            assert (
                DEPLOY / build["context"] / build["dockerfile"]
            ).resolve() == DEPLOY / "Dockerfile"
    prometheus = load_yaml_docs(DEPLOY / "prometheus" / "prometheus.yml")[0]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = {
        t.split(":")[0] for sc in jobs["dropserver"]["static_configs"] for t in sc["targets"]
    }
    assert targets == {"dropserver-1", "dropserver-2"}
    assert "redis" in jobs


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert '"dropserver", "serve", "--config", "/etc/dropserver/dropserver.toml"' in text
    assert "pip install -e ." in text
    # Everything the Dockerfile copies from the context (the repository root) must exist.
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing in the repository"
