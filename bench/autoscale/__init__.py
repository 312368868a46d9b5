"""The autoscaling simulator (`python -m bench.autoscale`): a stack's rendered HPAs and KEDA
ScaledObjects, the Kubernetes HPA algorithm, pods, nodes and their cost, under a load profile."""
