"""Transitional: these moved to harness.provision; import them from there (then delete this)."""

from harness.provision import (
    UnsafeDatabaseError,
    alembic_config,
    root_connection,
    throwaway_database,
    throwaway_name,
)

__all__ = [
    "UnsafeDatabaseError",
    "alembic_config",
    "root_connection",
    "throwaway_database",
    "throwaway_name",
]
