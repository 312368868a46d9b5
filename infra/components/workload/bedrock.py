"""The pod role's permission to call Bedrock: the configured model only (modelBackend bedrock).

The service calls Converse and ConverseStream, which need `bedrock:InvokeModel` and
`bedrock:InvokeModelWithResponseStream` on what it names
(https://docs.aws.amazon.com/bedrock/latest/userguide/conversation-inference-call.html):

- a foundation model id (`anthropic.claude-3-haiku-20240307-v1:0`): that model in this region;
- a cross-Region inference profile id (`us.anthropic.claude-3-5-haiku-20241022-v1:0`): the
  profile in this region, and the model in each Region the profile routes to ("you must also
  specify the foundation model in each Region associated with it",
  https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html). The
  model is granted in any Region (`*`, which also matches the empty Region of `global.`
  profiles) but only through this profile (`bedrock:InferenceProfileArn`).

Application inference profiles (ARNs) are refused by the configuration.
"""

from __future__ import annotations

import json

ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
# The geography prefixes of system-defined (cross-Region) inference profile ids.
PROFILE_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")


def inference_profile(model_id: str) -> bool:
    """Whether `model_id` names a cross-Region inference profile rather than a model."""
    return model_id.split(".", 1)[0] in PROFILE_PREFIXES


def invoke_policy(model_id: str, region: str, account_id: str, partition: str) -> str:
    """The policy document (JSON) that lets the service invoke exactly `model_id`."""
    if not inference_profile(model_id):
        model = f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"
        statements = [{"Sid": "InvokeModel", "Effect": "Allow", "Action": ACTIONS,
                       "Resource": model}]  # fmt: skip
    else:
        profile = f"arn:{partition}:bedrock:{region}:{account_id}:inference-profile/{model_id}"
        model = f"arn:{partition}:bedrock:*::foundation-model/{model_id.split('.', 1)[1]}"
        statements = [
            {"Sid": "InvokeInferenceProfile", "Effect": "Allow", "Action": ACTIONS,
             "Resource": profile},
            {"Sid": "InvokeModelThroughProfile", "Effect": "Allow", "Action": ACTIONS,
             "Resource": model,
             "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": profile}}},
        ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
