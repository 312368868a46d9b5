"""The mocks harness every infra test uses: run the program for a stack, query what it made.

    graph = run_program("prod", {"azCount": 4})
    graph.of_type("aws:ec2/subnet:Subnet")            # every subnet
    rds = graph.one("aws:rds/instance:Instance")       # exactly one, or LookupError
    rds.get("multiAz"); rds.is_secret("password")      # plain values, secret-ness by path
    graph.outputs["albUrl"]; "redisAuthToken" in graph.secret_outputs

Config comes from Pulumi.<stack>.yaml and Pulumi.yaml exactly as the render reads it; overrides
use un-namespaced keys for `agent-platform:` (or full `ns:key` names) and Python values.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.config import NAMESPACE, ConfigError
from infra.offline import mocking, stackfiles
from infra.offline.mocking import Graph, Recorder
from infra.offline.networks import NetworkLookup
from infra.stack import build

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
# The day the program's EKS support calendar is checked against in these runs, so a plan does
# not change with the calendar (tests that mean the real date say so).
TODAY = date(2026, 12, 2)

_LOGGER = logging.getLogger("tests.infra.engine")
_LOGGER.propagate = False
_LOGGER.addHandler(logging.NullHandler())


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _full(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def stack_config(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str], set[str]]:
    """(project, config, secret keys) of `stack`, with overrides (None removes a key)."""
    files = stackfiles.load(ROOT, stack)
    config = dict(files.config)
    secret_keys = set(files.secret_keys)
    for key, value in {**(overrides or {}), **(secrets or {})}.items():
        if value is None:
            config.pop(_full(key), None)
        else:
            config[_full(key)] = _as_string(value)
    secret_keys |= {_full(k) for k in secrets or {}}
    return files.project, config, secret_keys


def run_program(
    stack: str = "dev",
    config_overrides: Mapping[str, Any] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
    program: Callable[[], Mapping[str, Any] | None] | None = None,
    zones: Sequence[str] | Mapping[str, str] | None = None,
    network: NetworkLookup | None = None,
    recorder: Recorder | None = None,
    today: date = TODAY,
) -> Graph:
    """Run `program` (default: the stack, its support calendar checked on `today`) under mocks;
    return every resource and output."""
    project, config, secret_keys = stack_config(stack, config_overrides, secrets)
    return mocking.run(
        program or functools.partial(build, today=today),
        project=project,
        stack=stack,
        config=config,
        secret_keys=secret_keys,
        zones=zones,
        network=network,
        recorder=recorder,
        logger=_LOGGER,
    )


_GRAPHS: dict[str, Graph] = {}


def graph_of(stack: str) -> Graph:
    """The stack's graph with its committed config (cached: runs are deterministic)."""
    if stack not in _GRAPHS:
        _GRAPHS[stack] = run_program(stack)
    return _GRAPHS[stack]


def config_error(
    stack: str,
    config_overrides: Mapping[str, Any] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
    zones: Sequence[str] | Mapping[str, str] | None = None,
    network: NetworkLookup | None = None,
    today: date = TODAY,
) -> str:
    """The ConfigError message of a run that must fail, checking nothing AWS was registered."""
    recorder = Recorder()
    with pytest.raises(ConfigError) as caught:
        run_program(
            stack, config_overrides, secrets=secrets, zones=zones, network=network,
            recorder=recorder, today=today,
        )  # fmt: skip
    registered = [r.type for r in recorder.records if r.type != "pulumi:providers:aws"]
    assert registered == [], f"resources registered before the config error: {registered}"
    message = str(caught.value)
    assert "\n" not in message
    return message
