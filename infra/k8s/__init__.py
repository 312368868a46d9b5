"""Builders of the Kubernetes objects and IAM trust the cluster pieces share (plain data)."""
