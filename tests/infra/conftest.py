"""Fixtures of the infra suite: the program's graph per stack, rendered once per session."""

from __future__ import annotations

import pytest

from infra.offline.mocking import Graph
from tests.infra.pulumi_harness import STACKS, graph_of


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
