"""The Bedrock backend: the pod role may invoke the configured model, and only that, and only
when the backend is bedrock."""

from __future__ import annotations

import json

import pytest

from tests.infra.pulumi_harness import config_error, run_program

POLICY = "aws:iam/rolePolicy:RolePolicy"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def bedrock_statements(graph) -> list[dict]:
    (policy,) = [p for p in graph.of_type(POLICY) if p.name == "workload-bedrock-invoke"]
    role = graph.one("aws:iam/role:Role", "workload-irsa")
    assert policy.get("role") == role.id
    return json.loads(policy.get("policy"))["Statement"]


@pytest.mark.parametrize("backend", [{}, {"modelBackend": "openai",
                                          "modelUrl": "https://api.openai.com/v1"}])  # fmt: skip
def test_no_bedrock_permission_unless_the_backend_is_bedrock(backend):
    graph = run_program("dev", backend)
    assert [p.name for p in graph.of_type(POLICY) if "bedrock" in p.get("policy")] == []


def test_a_foundation_model_is_granted_in_this_region_only():
    graph = run_program("dev", {"modelBackend": "bedrock", "modelId": HAIKU})
    assert bedrock_statements(graph) == [
        {
            "Sid": "InvokeModel",
            "Effect": "Allow",
            "Action": ACTIONS,
            "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        }
    ]
    data = graph.one("kubernetes:core/v1:ConfigMap").get("data")
    assert (data["MODEL_BACKEND"], data["MODEL_ID"]) == ("bedrock", HAIKU)


def test_an_inference_profile_is_granted_with_its_model_in_every_destination_region():
    graph = run_program("prod", {"modelBackend": "bedrock", "modelId": PROFILE})
    profile = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{PROFILE}"
    assert bedrock_statements(graph) == [
        {"Sid": "InvokeInferenceProfile", "Effect": "Allow", "Action": ACTIONS,
         "Resource": profile},
        {"Sid": "InvokeModelThroughProfile", "Effect": "Allow", "Action": ACTIONS,
         "Resource": "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
         "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": profile}}},
    ]  # fmt: skip


def test_pods_start_after_their_bedrock_permission():
    graph = run_program("dev", {"modelBackend": "bedrock", "modelId": HAIKU})
    (policy,) = [p for p in graph.of_type(POLICY) if p.name == "workload-bedrock-invoke"]
    for resource in graph.of_type("kubernetes:apps/v1:Deployment"):
        assert graph.depends_on(resource, policy), resource.name


@pytest.mark.parametrize(
    ("model_id", "says"),
    [
        (None, "agent-platform:modelId: empty while modelBackend is bedrock; allowed: a Bedrock "
               "model id such as anthropic.claude-3-haiku-20240307-v1:0"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",
         "is an ARN (application inference profiles are not supported)"),
        ("claude", "agent-platform:modelId: 'claude' is not a Bedrock model id"),
    ],
)  # fmt: skip
def test_the_bedrock_model_must_be_an_id_the_policy_can_name(model_id, says):
    message = config_error("dev", {"modelBackend": "bedrock", "modelId": model_id})
    assert says in message
