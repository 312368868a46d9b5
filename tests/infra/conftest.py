"""Fixtures of the infra suite: the program's graph per stack, rendered once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_harness import STACKS, run_program  # noqa: E402

from infra.mocking import Graph  # noqa: E402

_GRAPHS: dict[str, Graph] = {}


def graph_of(stack: str) -> Graph:
    """The stack's graph with its committed config (cached: runs are deterministic)."""
    if stack not in _GRAPHS:
        _GRAPHS[stack] = run_program(stack)
    return _GRAPHS[stack]


@pytest.fixture(params=STACKS)
def graph(request) -> Graph:
    """The graph of each committed stack (dev, staging, prod)."""
    return graph_of(request.param)


@pytest.fixture
def dev() -> Graph:
    """The dev stack's graph."""
    return graph_of("dev")


@pytest.fixture
def prod() -> Graph:
    """The prod stack's graph."""
    return graph_of("prod")
