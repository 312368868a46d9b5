"""Entry point the Pulumi CLI runs: serves the agent-platform policy pack over gRPC.

Constructing `PolicyPack` starts the server and blocks, so nothing else lives here: the
policies are in the importable package `agent_platform_policies`.
"""

from agent_platform_policies import ALL_POLICIES, PACK_NAME
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=ALL_POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
