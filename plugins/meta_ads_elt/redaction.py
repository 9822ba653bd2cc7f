"""One scrub function for every log line, exception message and stored URL.

The SDK puts ``access_token`` and ``appsecret_proof`` in the query string of every request (POST and
batch included) and real ``paging.next`` URLs carry the token too, so anything that may hold a URL or
a request dump goes through :func:`scrub` before it is logged, raised or stored. Secrets we know by
value (tokens read from a Connection, Page tokens, proofs) are also registered with Airflow's
secrets masker, so Airflow's own log handlers hide them even in lines we did not write.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

REDACTED = "***"

# Query-string, form, JSON and repr spellings of the secret parameters.
_PARAM_NAMES = r"(?:access_token|appsecret_proof|client_secret|app_secret|input_token|fb_exchange_token)"
_PATTERNS = (
    # access_token=XYZ in URLs / form bodies / curl lines (value ends at &, quote, space, comma, bracket)
    re.compile(rf"({_PARAM_NAMES}=)[^&\s'\"<>,;)\]}}]+", re.IGNORECASE),
    # "access_token": "XYZ" and 'access_token': 'XYZ' in JSON or dict reprs
    re.compile(rf"""(['"]{_PARAM_NAMES}['"]\s*:\s*['"])[^'"]*""", re.IGNORECASE),
    # Authorization: Bearer XYZ / OAuth XYZ
    re.compile(r"((?:Bearer|OAuth)\s+)[A-Za-z0-9._\-|]{8,}", re.IGNORECASE),
)

_known: set[str] = set()
_lock = threading.Lock()
# Secrets shorter than this are not masked by value (they would mangle ordinary words).
_MIN_LEN = 6


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`scrub` hides it anywhere, and tell Airflow's secrets masker."""
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
    try:  # Airflow's masker: also hides the value in lines written by Airflow and other libraries.
        from airflow.sdk.log import mask_secret

        mask_secret(value)
    except Exception:  # noqa: S110 - masking must never break a call; our own scrub still applies
        pass


def scrub(value: Any) -> str:
    """Return ``str(value)`` with tokens, proofs and registered secrets replaced by ``***``."""
    text = value if isinstance(value, str) else str(value)
    for pattern in _PATTERNS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_obj(value: Any) -> Any:
    """Scrub strings inside a JSON-like structure (dicts, lists), dropping secret-named keys' values."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if re.fullmatch(_PARAM_NAMES, str(k), re.IGNORECASE) else scrub_obj(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_obj(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record's final text through :func:`scrub`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to the handler's error path
            return True
        clean = scrub(message)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


# Loggers of the libraries under the SDK that write URLs (urllib3 logs every request line, query and all).
NOISY_LOGGERS = ("urllib3.connectionpool", "urllib3", "requests", "facebook_business", "aiohttp.client")
_filter = RedactingFilter()


def install_log_filter(*loggers: logging.Logger | str) -> None:
    """Attach the scrubbing filter to the HTTP libraries' loggers and to ``loggers`` (idempotent)."""
    for item in (*NOISY_LOGGERS, *loggers):
        logger = logging.getLogger(item) if isinstance(item, str) else item
        if not isinstance(logger, logging.Logger):
            continue  # structlog loggers (Airflow's task logs) are masked by Airflow's secrets masker
        if _filter not in logger.filters:
            logger.addFilter(_filter)
