"""Writes prometheusrule.yaml (next to this file) from deploy/prometheus/alerts.yml.

The alert rules have one source, deploy/prometheus/alerts.yml (loaded directly by the compose
stack's Prometheus). prometheus-operator wants them wrapped in a PrometheusRule resource; run

    python deploy/k8s/optional/render_prometheusrule.py

after editing alerts.yml. tests/test_deploy.py fails if the two differ. Needs PyYAML.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "prometheus" / "alerts.yml"
OUT = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by render_prometheusrule.py: do not edit.
# OPTIONAL: needs prometheus-operator. Set the `release` label to whatever your
# Prometheus' ruleSelector matches.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    rules = yaml.safe_load(SOURCE.read_text())
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "dropserver",
            "namespace": "dropserver",
            "labels": {
                "app.kubernetes.io/name": "dropserver",
                "app.kubernetes.io/part-of": "dropserver",
                "release": "prometheus",
            },
        },
        "spec": {"groups": rules["groups"]},
    }
    body = yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
