"""Load, capacity and fault benchmarks for the agent service (`make bench`, `python -m bench`)."""
