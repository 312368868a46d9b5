"""The bench's sizing figures: chats per second per vCPU and service CPU dollars per million
chats, on prod's node type at its price in infra/ops/prices.json."""

from __future__ import annotations

from bench import sizing


def test_prod_nodes_are_the_priced_type() -> None:
    assert sizing.prod_node_type() == "t3.large"


def test_a_millisecond_chat_on_t3_large() -> None:
    figures = sizing.figures(1000.0, "t3.large")
    assert figures["chats_per_second_per_vcpu"] == 1000
    # $0.0832 an hour for 2 vCPUs: $0.0416 per vCPU-hour; a million chats use 1,000 CPU-s.
    assert figures["service_cpu_usd_per_million_chats"] == 0.0116
    assert (figures["node_usd_per_hour"], figures["node_vcpus"]) == (0.0832, 2)


def test_half_the_cpu_is_half_the_dollars() -> None:
    assert sizing.figures(500.0)["chats_per_second_per_vcpu"] == 2000
    assert sizing.figures(500.0)["service_cpu_usd_per_million_chats"] == 0.0058
