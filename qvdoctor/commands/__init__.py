"""CLI commands. Each module defines ``register(app)`` and imports its implementation lazily."""
