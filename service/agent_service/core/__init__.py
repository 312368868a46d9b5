"""Plain services: sessions, chat, tasks, model backends and the Redis-or-memory building blocks."""
