"""The bench's sizing figures: chats per second per vCPU and service CPU dollars per million
chats, on the type prod's API pods run on, at its price in infra/data/prices.json."""

from __future__ import annotations

from bench import sizing


def test_prod_api_pods_are_priced_on_the_cheapest_vcpu_of_their_pool() -> None:
    # c6i: $0.0425 a vCPU-hour; c7i $0.044625, m6i $0.048, m7i $0.0504 (us-east-1).
    assert sizing.prod_node_type() == "c6i.large"


def test_a_millisecond_chat_on_c6i_large() -> None:
    figures = sizing.figures(1000.0, "c6i.large")
    assert figures["chats_per_second_per_vcpu"] == 1000
    # $0.085 an hour for 2 vCPUs: $0.0425 per vCPU-hour; a million chats use 1,000 CPU-s.
    assert figures["service_cpu_usd_per_million_chats"] == 0.0118
    assert (figures["node_usd_per_hour"], figures["node_vcpus"]) == (0.085, 2)


def test_a_millisecond_chat_on_t3_large() -> None:
    # The system group's type (and the Cluster Autoscaler group's): $0.0832 for 2 vCPUs.
    assert sizing.figures(1000.0, "t3.large")["service_cpu_usd_per_million_chats"] == 0.0116


def test_half_the_cpu_is_half_the_dollars() -> None:
    assert sizing.figures(500.0)["chats_per_second_per_vcpu"] == 2000
    assert sizing.figures(500.0)["service_cpu_usd_per_million_chats"] == 0.0059
