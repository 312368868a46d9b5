"""The agent service on Kubernetes: identity, config, rollout order, pods, scaling, network."""

from __future__ import annotations

import json

import pytest

from infra import contract
from infra.offline.mocking import Graph, RecordedResource
from tests.infra.pulumi_harness import graph_of, run_program

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
SECRET = "kubernetes:core/v1:Secret"
CONFIG = "kubernetes:core/v1:ConfigMap"
NAMESPACE = "agent"


def deployment(graph: Graph, name: str) -> RecordedResource:
    (found,) = [d for d in graph.of_type(DEPLOYMENT) if d.get("metadata.name") == name]
    return found


def named(graph: Graph, token: str, name: str) -> RecordedResource:
    (found,) = [r for r in graph.of_type(token) if r.get("metadata.name") == name]
    return found


def pod(graph: Graph, name: str) -> dict:
    return deployment(graph, name).get("spec.template.spec")


def pods(graph: Graph) -> list[dict]:
    specs = [d.get("spec.template.spec") for d in graph.of_type(DEPLOYMENT)]
    return [*specs, graph.one(JOB).get("spec.template.spec")]


# --- namespace and identity -----------------------------------------------------------------


def test_the_namespace_enforces_the_restricted_pod_security_standard(graph):
    namespace = graph.one("kubernetes:core/v1:Namespace")
    assert namespace.get("metadata.name") == NAMESPACE
    labels = namespace.get("metadata.labels")
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.36"


def test_api_pods_get_the_target_health_readiness_gate(graph):
    # The load balancer controller injects the gate into pods of this namespace that a
    # TargetGroupBinding's Service selects, when they are created: label first, binding first.
    labels = graph.one("kubernetes:core/v1:Namespace").get("metadata.labels")
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert len(labels) == 7  # the six Pod Security labels and the gate
    assert graph.depends_on(deployment(graph, "agent-api"), graph.one(TGB))


def test_every_namespaced_object_lives_in_the_service_namespace(graph):
    for resource in graph.resources:
        # Namespaces and Karpenter's node class and pools are cluster-scoped.
        namespaced = resource.type != "kubernetes:core/v1:Namespace" and "karpenter" not in (
            resource.type
        )
        if resource.type.startswith("kubernetes:") and "metadata" in resource.inputs and namespaced:
            assert resource.get("metadata.namespace") == NAMESPACE, resource.name


def test_the_service_account_assumes_a_role_trusted_only_for_it(graph):
    account = graph.one("kubernetes:core/v1:ServiceAccount")
    role = graph.one("aws:iam/role:Role", "workload-irsa")
    assert account.get("metadata.name") == "agent-service"
    assert account.get("metadata.annotations") == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    assert account.get("automountServiceAccountToken") is False
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    issuer = graph.outputs["oidcProviderArn"].split(":oidc-provider/", 1)[1]
    assert statement["Principal"] == {"Federated": graph.outputs["oidcProviderArn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:agent:agent-service",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }


def test_the_service_role_may_only_read_the_rds_managed_secret(graph):
    role = graph.one("aws:iam/role:Role", "workload-irsa")
    (policy,) = [
        p for p in graph.of_type("aws:iam/rolePolicy:RolePolicy") if p.get("role") == role.id
    ]
    assert json.loads(policy.get("policy")) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDatabaseSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": graph.outputs["dbSecretArn"],
            }
        ],
    }
    attachments = graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not [a for a in attachments if a.get("role") == role.outputs["name"]]


# --- configuration --------------------------------------------------------------------------


def test_the_config_map_carries_the_service_contract(prod):
    data = prod.one(CONFIG).get("data")
    assert data == {
        "PORT": "8000",
        "METRICS_PORT": "9090",
        "AGENT_TYPE": "conversational",
        "MAX_CONCURRENT_SESSIONS": "100",
        "WORKER_CONCURRENCY": "8",
        "MODEL_BACKEND": "local",
        "LOG_LEVEL": "INFO",
        "DB_SECRET_ARN": prod.outputs["dbSecretArn"],
        "DB_HOST": prod.outputs["dbAddress"],
        "DB_PORT": "5432",
        "DB_NAME": "agent",
        "DB_SSLMODE": "verify-full",
        "DB_SSLROOTCERT": "/app/certs/rds-global-bundle.pem",
        "AWS_REGION": "us-east-1",
        "SHUTDOWN_DRAIN_SECONDS": "5",
        "SHUTDOWN_TIMEOUT_SECONDS": "20",
        "KEEP_ALIVE_TIMEOUT_SECONDS": "155",
    }


def test_model_settings_reach_the_config_map_when_set():
    graph = run_program(
        "dev",
        {"modelBackend": "openai", "modelUrl": "https://api.openai.com/v1", "modelId": "gpt-x"},
    )
    data = graph.one(CONFIG).get("data")
    assert (data["MODEL_BACKEND"], data["MODEL_URL"], data["MODEL_ID"]) == (
        "openai",
        "https://api.openai.com/v1",
        "gpt-x",
    )


def test_the_secret_holds_redis_over_tls_and_the_keys_and_stays_secret():
    graph = run_program("prod", secrets={"apiKeys": "k-1,k-2", "modelApiKey": "sk-test"})
    secret = graph.one(SECRET, "workload-secrets")
    assert secret.is_secret("stringData")
    data = secret.get("stringData")
    token = graph.one("aws:elasticache/replicationGroup:ReplicationGroup").get("authToken")
    host = graph.outputs["redisPrimaryEndpoint"]
    assert data == {
        "REDIS_URL": f"rediss://:{token}@{host}:6379/0",
        "API_KEYS": "k-1,k-2",
        "MODEL_API_KEY": "sk-test",
    }
    assert "apiKeys" in graph.secret_outputs


def test_without_configured_api_keys_one_is_generated_and_kept_secret(dev):
    generated = dev.one("random:index/randomPassword:RandomPassword", "workload-api-key")
    assert generated.get("length") == 40
    secret = dev.one(SECRET, "workload-secrets")
    assert set(secret.get("stringData")) == {"REDIS_URL", "API_KEYS"}
    assert secret.get("stringData")["API_KEYS"] == generated.outputs["result"]
    assert "apiKeys" in dev.secret_outputs


def test_api_and_worker_read_config_map_and_secret_and_the_job_only_the_config_map(graph):
    config = graph.one(CONFIG).outputs["metadata"]["name"]
    secret = graph.one(SECRET, "workload-secrets").outputs["metadata"]["name"]
    both = [{"configMapRef": {"name": config}}, {"secretRef": {"name": secret}}]
    for name in ("agent-api", "agent-worker"):
        assert pod(graph, name)["containers"][0]["envFrom"] == both
    (job_container,) = graph.one(JOB).get("spec.template.spec.containers")
    assert job_container["envFrom"] == [{"configMapRef": {"name": config}}]


# --- rollout order --------------------------------------------------------------------------


def test_the_deployments_wait_for_the_migration_job(graph):
    job = graph.one(JOB)
    for name in ("agent-api", "agent-worker"):
        assert graph.depends_on(deployment(graph, name), job), name
    assert not graph.depends_on(job, deployment(graph, "agent-api"))


def test_the_migration_runs_the_migrate_command_once_per_change(graph):
    job = graph.one(JOB)
    assert "name" not in job.get("metadata")  # auto-named: a new image runs a new Job
    (container,) = job.get("spec.template.spec.containers")
    assert container["command"] == ["python", "-m", "agent_service.migrate"]
    assert job.get("spec.backoffLimit") == 3
    assert job.get("spec.activeDeadlineSeconds") == 600
    assert job.get("spec.template.spec.restartPolicy") == "Never"


def test_a_failed_migration_is_replaced_by_the_next_update_instead_of_awaited_forever(graph):
    job = graph.one(JOB)
    # pulumi-kubernetes: an unready Job is awaited again on the next update (the same failed
    # Job, never re-run) unless it carries this annotation; then it is replaced and runs again.
    assert job.get("metadata.annotations") == {"pulumi.com/replaceUnready": "true"}
    # Pulumi outwaits the Job's own deadline (600 s), so a slow migration fails with the Job's
    # reason rather than a provider timeout.
    assert job.custom_timeouts == {"create": "20m", "update": "20m"}


def test_the_migration_starts_after_the_permission_to_read_the_database_secret(graph):
    job = graph.one(JOB)
    secret_read = graph.one("aws:iam/rolePolicy:RolePolicy", "workload-db-secret-read")
    assert graph.depends_on(job, secret_read)
    for name in ("agent-api", "agent-worker"):
        assert graph.depends_on(deployment(graph, name), secret_read), name


def test_pods_start_only_after_nodes_dns_and_their_network_policies(graph):
    job = graph.one(JOB)
    waits_for = [graph.one("eks:index:ManagedNodeGroup"), *graph.of_type(NETPOL)]
    waits_for.append(next(a for a in graph.of_type("aws:eks/addon:Addon")
                          if a.get("addonName") == "coredns"))  # fmt: skip
    for other in waits_for:
        assert graph.depends_on(job, other), other.name


def test_the_target_group_binding_comes_after_the_load_balancer_controller(graph):
    binding = graph.one(TGB)
    controller = next(
        r for r in graph.of_type("kubernetes:helm.sh/v3:Release")
        if r.get("chart") == "aws-load-balancer-controller"
    )  # fmt: skip
    assert graph.depends_on(binding, controller)


# --- pods -----------------------------------------------------------------------------------


def test_every_pod_is_hardened(graph):
    for spec in pods(graph):
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == "agent-service"
        assert spec["enableServiceLinks"] is False
        assert spec["nodeSelector"] == {"agent-platform/pool": "general"}
        assert spec["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
        (container,) = spec["containers"]
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_resources_follow_the_config(graph):
    for spec in pods(graph):
        assert spec["containers"][0]["resources"] == {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        }
    bigger = run_program("dev", {"cpuRequest": "1", "cpuLimit": "1", "memoryLimit": "2Gi"})
    assert pod(bigger, "agent-api")["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }


def test_the_api_serves_8000_with_startup_liveness_and_readiness_probes(graph):
    (container,) = pod(graph, "agent-api")["containers"]
    assert container["command"] == ["python", "-m", "agent_service"]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    health = {"path": "/health", "port": "http", "scheme": "HTTP"}
    assert container["startupProbe"] == {
        "httpGet": health, "periodSeconds": 5, "failureThreshold": 24, "timeoutSeconds": 2,
    }  # fmt: skip
    assert container["livenessProbe"] == {
        "httpGet": health, "initialDelaySeconds": 30, "periodSeconds": 10,
        "timeoutSeconds": 5, "failureThreshold": 3,
    }  # fmt: skip
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 2,
    }  # fmt: skip


def test_shutdown_drains_before_the_kubelet_kills(graph):
    spec = pod(graph, "agent-api")
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}
    grace = spec["terminationGracePeriodSeconds"]
    assert grace == 45
    # preStop while the ALB deregisters, then the app's drain and in-flight timeout.
    busy = (
        contract.PRESTOP_SLEEP_SECONDS
        + contract.SHUTDOWN_DRAIN_SECONDS
        + contract.SHUTDOWN_TIMEOUT_SECONDS
    )
    assert busy < grace
    assert contract.PRESTOP_SLEEP_SECONDS < contract.DEREGISTRATION_DELAY_SECONDS < grace
    assert pod(graph, "agent-worker")["terminationGracePeriodSeconds"] == grace


def test_the_worker_runs_the_worker_command_serving_only_its_metrics_port(graph):
    (container,) = pod(graph, "agent-worker")["containers"]
    assert container["command"] == ["python", "-m", "agent_service.worker"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]


def test_the_worker_is_ready_while_it_consumes_its_queue(graph):
    (container,) = pod(graph, "agent-worker")["containers"]
    readiness = container["readinessProbe"]
    assert readiness["exec"]["command"] == [
        "python", "-m", "agent_service.readiness", "--max-age", "30",
    ]  # fmt: skip
    # Not ready within max-age + period x threshold = 90 s of the last successful read.
    assert (readiness["periodSeconds"], readiness["failureThreshold"]) == (20, 3)


def test_the_worker_is_alive_while_its_loop_beats(graph):
    (container,) = pod(graph, "agent-worker")["containers"]
    liveness = container["livenessProbe"]
    assert liveness["exec"]["command"] == [
        "python", "-m", "agent_service.heartbeat", "--max-age", "60",
    ]  # fmt: skip
    # A hung loop is restarted within max-age + period x threshold = 2 minutes.
    assert 60 + liveness["periodSeconds"] * liveness["failureThreshold"] == 120
    assert liveness["timeoutSeconds"] == 5


def test_replicas_are_left_to_the_autoscaler_and_rollouts_never_dip(graph):
    for name in ("agent-api", "agent-worker"):
        spec = deployment(graph, name).get("spec")
        assert "replicas" not in spec
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        }


def test_pods_spread_over_zones_and_nodes(graph):
    for name, component in (("agent-api", "api"), ("agent-worker", "worker")):
        constraints = pod(graph, name)["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == [
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        ]
        for constraint in constraints:
            assert constraint["maxSkew"] == 1
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
            assert constraint["labelSelector"]["matchLabels"] == {
                "app.kubernetes.io/name": "agent-service",
                "app.kubernetes.io/component": component,
            }


# --- scaling and disruption -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "api", "worker"), [("dev", (1, 3), (1, 2)), ("prod", (3, 20), (2, 10))]
)
def test_hpas_scale_on_cpu_70_and_memory_80_within_the_environment_bounds(stack, api, worker):
    graph = graph_of(stack)
    for name, (low, high) in (("agent-api", api), ("agent-worker", worker)):
        spec = named(graph, HPA, name).get("spec")
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
        }  # fmt: skip
        assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
        targets = {
            m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]
        }  # fmt: skip
        assert targets == {
            "cpu": {"type": "Utilization", "averageUtilization": 70},
            "memory": {"type": "Utilization", "averageUtilization": 80},
        }


def test_hpas_scale_down_slowly_and_up_quickly(graph):
    for name in ("agent-api", "agent-worker"):
        behavior = named(graph, HPA, name).get("spec.behavior")
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
        assert behavior["scaleDown"]["policies"] == [
            {"type": "Percent", "value": 50, "periodSeconds": 60}
        ]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert behavior["scaleUp"]["selectPolicy"] == "Max"


def test_hpa_targets_follow_the_config():
    graph = run_program("prod", {"hpaCpuTarget": 60, "apiMaxReplicas": 40})
    spec = named(graph, HPA, "agent-api").get("spec")
    assert spec["maxReplicas"] == 40
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_disruption_budgets_never_block_a_node_drain(graph):
    for name, component in (("agent-api", "api"), ("agent-worker", "worker")):
        spec = named(graph, PDB, name).get("spec")
        assert spec == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "agent-service",
                                         "app.kubernetes.io/component": component}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }  # fmt: skip


# --- traffic --------------------------------------------------------------------------------


def test_the_service_maps_80_to_the_api_port(graph):
    service = graph.one("kubernetes:core/v1:Service")
    assert service.get("metadata.name") == "agent-api"
    assert service.get("spec") == {
        "type": "ClusterIP",
        "selector": {"app.kubernetes.io/name": "agent-service",
                     "app.kubernetes.io/component": "api"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }  # fmt: skip


def test_the_binding_registers_api_pod_ips_in_the_albs_target_group(graph):
    binding = graph.one(TGB)
    assert binding.get("apiVersion") == "elbv2.k8s.aws/v1beta1"
    assert binding.get("spec") == {
        "targetGroupARN": graph.outputs["targetGroupArn"],
        "targetType": "ip",
        "serviceRef": {"name": "agent-api", "port": 80},
    }
    assert graph.outputs["serviceUrl"] == graph.outputs["albUrl"]


def policy(graph: Graph, name: str) -> dict:
    return named(graph, NETPOL, name).get("spec")


def test_everything_is_denied_unless_a_policy_opens_it(graph):
    assert {p.get("metadata.name") for p in graph.of_type(NETPOL)} == {
        "default-deny", "allow-dns", "api-ingress", "metrics-ingress", "app-egress",
        "migrate-egress",
    }  # fmt: skip
    assert policy(graph, "default-deny") == {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
    }  # fmt: skip


def test_only_the_api_accepts_8000_and_only_from_the_load_balancers_subnets(graph):
    ingress = [p for p in graph.of_type(NETPOL) if p.get("spec").get("ingress")]
    assert sorted(p.get("metadata.name") for p in ingress) == ["api-ingress", "metrics-ingress"]
    spec = policy(graph, "api-ingress")
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    public = [
        s.get("cidrBlock")
        for s in sorted(graph.of_type("aws:ec2/subnet:Subnet"), key=lambda s: s.name)
        if "-public-" in s.name
    ]
    assert public == ["10.0.192.0/22", "10.0.196.0/22", "10.0.200.0/22"]  # fmt: skip
    assert spec["ingress"] == [
        {
            # The ALB's nodes, not the whole VPC (kubelet probes come from the node's own IP,
            # which the VPC CNI's network policy agent always admits).
            "from": [{"ipBlock": {"cidr": c}} for c in public],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]


def test_pods_reach_only_dns_the_data_stores_and_https(graph):
    dns = policy(graph, "allow-dns")["egress"]
    assert dns[0]["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    database_cidrs = [
        s.get("cidrBlock")
        for s in sorted(graph.of_type("aws:ec2/subnet:Subnet"), key=lambda s: s.name)
        if s.name.startswith("network-database-")  # in AZ order, as the policy lists them
    ]
    assert len(database_cidrs) == 3
    https = {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    app = policy(graph, "app-egress")
    assert app["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "worker"]}
    ]
    assert app["egress"] == [
        {"to": [{"ipBlock": {"cidr": c}} for c in database_cidrs],
         "ports": [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 6379}]},
        https,
    ]  # fmt: skip
    assert policy(graph, "migrate-egress")["egress"] == [
        {"to": [{"ipBlock": {"cidr": c}} for c in database_cidrs],
         "ports": [{"protocol": "TCP", "port": 5432}]},
        https,
    ]  # fmt: skip
    for name in ("allow-dns", "app-egress", "migrate-egress"):
        assert policy(graph, name)["policyTypes"] == ["Egress"]
