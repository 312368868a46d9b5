"""HTTP layer: thin routers over the core services, JSON errors, request middleware."""
