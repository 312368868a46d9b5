"""The agent service: sessions, chat and background tasks on PostgreSQL and Redis."""

__version__ = "0.1.0"
