"""A local emulator of the parts of Meta's Graph / Marketing API this project uses.

Run it with ``python -m meta_sandbox`` (see README.md). The package depends only on the standard
library and PyYAML, never on Airflow, so it can run anywhere the pipeline's tests run.
"""

DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 - a public, documented sandbox credential
DEFAULT_APP_ID = "sandbox-app"
DEFAULT_APP_SECRET = "sandbox-secret"  # noqa: S105 - public sandbox credential
API_VERSION = "v26.0"

__all__ = ["API_VERSION", "DEFAULT_APP_ID", "DEFAULT_APP_SECRET", "DEFAULT_TOKEN"]
