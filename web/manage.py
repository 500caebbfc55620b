"""The one place that builds `app`, for `hypercorn manage:app`, `quart run` and `quart shell`."""

import sys

from counter import create_app
from counter.config import SettingsError, load_quartenv

load_quartenv()
try:
    app = create_app()
except SettingsError as err:
    # One line that names the variable, not a traceback through the server's loader.
    print(f"counter: configuration error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
