"""Transitional: these moved to the harness package; import them from there (then delete this)."""

from harness.provision import WEB_DIR
from harness.tools import require_tool

__all__ = ["WEB_DIR", "require_tool"]
