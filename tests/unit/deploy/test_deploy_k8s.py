"""deploy/k8s: `kubectl kustomize` renders the base and the production overlay, and what it
renders validates against the Kubernetes schemas (strict) and KEDA's ScaledObject CRD."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from lookout_shared.settings import DEV_JWT_SECRET, ServiceSettings
from lookout_shared.weak_secrets import url_password
from pydantic import ValidationError

from tests.unit.deploy.deploy_files import PORTS, ROOT

K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/production")
BIN = Path(sys.executable).parent
KEDA_CRD = Path(__file__).parent / "data" / "keda-scaledobject-crd.yaml"
# The oldest Kubernetes the manifests promise to work on, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
Doc = dict[str, Any]


@cache
def render(target: str) -> tuple[Doc, ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: scripts/install.sh installs it (kubernetes-client)"
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", version, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def strict_keda_schema() -> Doc:
    """The CRD's openAPIV3Schema, closed like kubernetes-validate --strict closes the core
    schemas: an object with declared properties accepts no others (the API server would
    silently prune them, which is how a misspelt field goes unnoticed)."""
    crd = yaml.safe_load(KEDA_CRD.read_text())
    [version] = crd["spec"]["versions"]
    schema: Doc = version["schema"]["openAPIV3Schema"]

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    schema["properties"]["apiVersion"]["enum"] = ["keda.sh/v1alpha1"]
    schema["properties"]["kind"]["enum"] = ["ScaledObject"]
    return schema


def keda_validate(tmp_path: Path, scaled_object: Doc) -> subprocess.CompletedProcess[str]:
    schema = tmp_path / "scaledobject.schema.json"
    schema.write_text(json.dumps(strict_keda_schema()))
    instance = tmp_path / "scaledobject.json"
    instance.write_text(json.dumps(scaled_object))
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(schema), str(instance)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_deploy_k8s_renders_valid_kubernetes_objects(
    target: str, version: str, tmp_path: Path
) -> None:
    docs = render(target)
    core = [d for d in docs if d["apiVersion"] != "keda.sh/v1alpha1"]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    done = kubernetes_validate(manifest, version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == len(core)
    template = kubernetes_validate(K8S / "base" / "secret.template.yaml", version)
    assert template.returncode == 0, template.stdout + template.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_k8s_renders_without_a_deprecation_warning(target: str) -> None:
    """No deprecated kustomize field (commonLabels, bases, patchesStrategicMerge, ...):
    kustomize warns on stderr today and drops them some day."""
    kubectl = shutil.which("kubectl")
    assert kubectl
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_k8s_api_trusts_only_the_configured_proxies(target: str) -> None:
    [config] = of_kind(render(target), "ConfigMap").values()
    assert "LOOKOUT_FORWARDED_ALLOW_IPS" in config["data"]


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_k8s_scaled_object_matches_the_keda_crd(target: str, tmp_path: Path) -> None:
    [scaled] = of_kind(render(target), "ScaledObject").values()
    done = keda_validate(tmp_path, scaled)
    assert done.returncode == 0, done.stdout + done.stderr


def test_deploy_k8s_validators_reject_misspelt_fields(tmp_path: Path) -> None:
    docs = render("overlays/production")
    [scaled] = of_kind(docs, "ScaledObject").values()
    typo = json.loads(json.dumps(scaled))
    typo["spec"]["minReplicas"] = typo["spec"].pop("minReplicaCount")
    assert keda_validate(tmp_path, typo).returncode != 0

    deployment = json.loads(json.dumps(of_kind(docs, "Deployment")["lookout-api"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    assert kubernetes_validate(manifest, KUBERNETES_VERSIONS[-1]).returncode != 0


def test_deploy_k8s_deployments_are_probed_limited_and_locked_down() -> None:
    docs = render("overlays/production")
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == {f"lookout-{s}" for s in PORTS}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        port = PORTS[name.removeprefix("lookout-")]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), name
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts  # the only writable path besides the snapshots volume
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OTEL_SERVICE_NAME"] == name
        refs = {next(iter(r)): next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"configMapRef": "lookout-config", "secretRef": "lookout-secrets"}
        assert container["image"].startswith(f"registry.example.com/lookout/{name}:")
    configs = of_kind(docs, "ConfigMap")
    assert configs["lookout-config"]["data"]["LOOKOUT_ENVIRONMENT"] == "production"
    for name in ("lookout-api", "lookout-snapshot-worker"):
        volumes = deployments[name]["spec"]["template"]["spec"]["volumes"]
        claims = {
            v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
        }
        assert claims == {"lookout-snapshots"}
    assert set(of_kind(docs, "PersistentVolumeClaim")) == {"lookout-snapshots"}
    assert all(
        d["metadata"].get("namespace") == "lookout" for d in docs if d["kind"] != "Namespace"
    )


def test_deploy_k8s_scaling_and_disruption_budgets() -> None:
    docs = render("overlays/production")
    deployments = of_kind(docs, "Deployment")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"lookout-api", "lookout-notifier"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert "replicas" not in deployments[name]["spec"]  # the HPA owns the count
    [scaled] = of_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "lookout-snapshot-worker"
    assert "replicas" not in deployments["lookout-snapshot-worker"]["spec"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == "snapshot.capture"
    assert trigger["metadata"]["mode"] == "QueueLength"
    # The scaler reads the AMQP URL from the worker's environment: the Secret provides it.
    template = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())
    assert trigger["metadata"]["hostFromEnv"] in template["stringData"]
    pdbs = of_kind(docs, "PodDisruptionBudget")
    assert set(pdbs) == set(deployments)
    for name, pdb in pdbs.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = of_kind(docs, "Service")
    for name, service in services.items():
        assert service["spec"]["selector"].items() <= (
            deployments[name]["spec"]["template"]["metadata"]["labels"].items()
        )


def test_deploy_k8s_migration_job_runs_dbmate_from_the_api_image() -> None:
    docs = render("overlays/production")
    job = of_kind(docs, "Job")["lookout-migrate"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.example.com/lookout/lookout-api:")
    assert container["command"][0] == "dbmate" and container["command"][-1] == "up"
    assert "/app/migrations" in container["command"]
    [env] = container["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "lookout-secrets", "key": "DATABASE_URL"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_deploy_k8s_secret_template_names_every_secret_setting() -> None:
    template = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())
    keys = set(template["stringData"])
    assert keys == {
        "LOOKOUT_DATABASE_URL",
        "LOOKOUT_REDIS_URL",
        "LOOKOUT_AMQP_URL",
        "LOOKOUT_JWT_SECRET",
        "DATABASE_URL",
    }
    example = (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    lines = [line for line in example.splitlines() if line and not line.startswith("#")]
    assert {line.split("=")[0] for line in lines} == keys
    # Never rendered: a placeholder Secret must not reach a cluster.
    for target in TARGETS:
        assert not of_kind(render(target), "Secret")


def production_config() -> dict[str, str]:
    data: dict[str, str] = of_kind(render("overlays/production"), "ConfigMap")["lookout-config"][
        "data"
    ]
    return data


def test_deploy_k8s_ships_production_and_no_secret_values() -> None:
    """Every pod runs as production, and secrets come only from lookout-secrets: nothing
    rendered carries the JWT secret or a password."""
    docs = render("overlays/production")
    assert production_config()["LOOKOUT_ENVIRONMENT"] == "production"
    plain: dict[str, str] = dict(production_config())
    for deployment in [*of_kind(docs, "Deployment").values(), *of_kind(docs, "Job").values()]:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            plain |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    assert plain.get("LOOKOUT_ENVIRONMENT", "production") == "production"
    assert "LOOKOUT_JWT_SECRET" not in plain
    assert all(url_password(v) is None for v in plain.values()), plain
    text = (
        "\n".join(p.read_text() for p in K8S.rglob("*.y*ml"))
        + (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    )
    assert DEV_JWT_SECRET not in text and "lookout:lookout@" not in text


def _template_values() -> dict[str, str]:
    values: dict[str, str] = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())[
        "stringData"
    ]
    return values


def _example_values() -> dict[str, str]:
    path = K8S / "overlays" / "production" / "secrets.env.example"
    return {k: v or "" for k, v in dotenv_values(path).items()}


@pytest.mark.parametrize("values", [_template_values, _example_values], ids=["template", "example"])
def test_deploy_k8s_placeholder_secrets_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, values: Callable[[], dict[str, str]]
) -> None:
    for name, value in (production_config() | values()).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        ServiceSettings()
    for setting in ("LOOKOUT_JWT_SECRET", "LOOKOUT_DATABASE_URL", "LOOKOUT_AMQP_URL"):
        assert setting in str(raised.value)
    assert "CHANGE-ME" not in str(raised.value)
