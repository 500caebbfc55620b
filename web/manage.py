"""The one place that builds `app`, for `hypercorn manage:app`, `quart run` and `quart shell`."""

from counter import create_app
from counter.config import SettingsError, load_quartenv

load_quartenv()
try:
    app = create_app()
except SettingsError as err:
    raise SystemExit(f"counter: configuration error: {err}") from None
