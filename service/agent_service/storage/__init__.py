"""Storage: database engine, tables, repositories and Secrets Manager credentials."""
