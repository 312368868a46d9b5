"""schemathesis against the live service's own OpenAPI schema: generated requests to every
operation, authenticated, and no 5xx, no undeclared status, content type or body shape."""

from __future__ import annotations

import uuid

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import AUTH, ServiceFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
EXAMPLES_PER_OPERATION = 40


@pytest.mark.slow
def test_generated_requests_get_declared_answers_and_no_5xx(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    _, base = start_service(shared_database, shared_redis)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    examples = 0
    operations = 0
    labels: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        labels.append(operation.label)

        # Deterministic (CI reruns see the same requests), bounded, no shrinking.
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal examples
            examples += 1
            case.call_and_validate(base_url=base, headers=AUTH, checks=CHECKS)

        try:
            run()
        except (Exception, FailureGroup) as exc:  # report every failing operation
            failures.append(f"{operation.label}: {exc}")
    print(f"schemathesis: {operations} operations, {examples} examples, {len(failures)} failed")
    assert operations >= 11
    # Metrics are served on METRICS_PORT, not on this (the public) port.
    assert "GET /health" in labels
    assert not [label for label in labels if label.endswith("/metrics")], labels
    assert examples >= operations * 10
    assert failures == [], "\n".join(failures)


def test_undeclared_methods_get_405_with_allow(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    """What the schema cannot declare (a method a path does not have) is still a JSON 405
    naming the methods it does have."""
    _, base = start_service(shared_database, shared_redis)
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        path = template.replace("{session_id}", str(uuid.uuid4()))
        path = path.replace("{task_id}", str(uuid.uuid4()))
        declared = {m.upper() for m in operations}
        for method in sorted(METHODS - declared):
            response = httpx.request(method, base + path, headers=AUTH)
            assert response.status_code == 405, (method, template)
            assert response.json()["error"]["code"] == "method_not_allowed"
            assert set(response.headers["allow"].split(", ")) == declared
            checked += 1
    assert checked >= 20
