"""The one place that builds `app`, for `hypercorn manage:app`, `quart run` and `quart shell`."""

from counter import create_app
from counter.config import Settings, SettingsError, load_quartenv
from counter.observe import configure_logging

load_quartenv()
try:
    settings = Settings.from_env()
except SettingsError as err:
    raise SystemExit(f"counter: configuration error: {err}") from None
configure_logging(settings)
app = create_app(settings)
