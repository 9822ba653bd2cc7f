"""What Airflow's ProvidersManager learns about this package (entry point ``apache_airflow_provider``).

Airflow finds connection types only through providers: installed (``pip install -e .``, which ``make
venv`` does), this registers the ``meta_graph_api`` connection type with its form, declared the Airflow
3 way (``conn-fields`` and ``ui-field-behaviour``; the UI reads them without importing the hook), so
Admin -> Connections offers "Meta Graph API" with labelled fields and a working Test button.

Kept free of imports: Airflow calls it while it discovers providers.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "meta_graph_api"
DEFAULT_API_VERSION = "v26.0"
DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_INSTAGRAM_CALLS_PER_SECOND = 2
"""Meta's quota: "Instagram Conversations API: 2 calls per second per IG professional account" (research/
meta_api_facts.md section 2.2); each batch item is a call."""

CONNECTION_FIELDS: dict[str, dict[str, Any]] = {
    # Stored in the Connection's extra under these names (the hook reads them from there).
    "app_id": {
        "label": "App ID",
        "description": "Your Meta app's id (App settings -> Basic). Optional.",
        "schema": {"type": ["string", "null"]},
    },
    "app_secret": {
        "label": "App secret",
        "description": "With an app secret every call carries appsecret_proof (required when the app "
        "enforces 'Require App Secret').",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "api_version": {
        "label": "API version",
        "description": f"Graph API version, e.g. {DEFAULT_API_VERSION}.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_API_VERSION},
    },
    "base_url": {
        "label": "Base URL",
        "description": f"Leave {DEFAULT_BASE_URL} for Meta; the bundled sandbox is http://127.0.0.1:8765.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_BASE_URL},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per HTTP request.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT_SECONDS, "minimum": 1},
    },
    "instagram_calls_per_second": {
        "label": "Instagram calls per second",
        "description": f"Meta's quota for Instagram conversations: {DEFAULT_INSTAGRAM_CALLS_PER_SECOND} calls a "
        "second per Instagram account, batch items counted. Raise it only for a server that allows more "
        "(the bundled sandbox started with a larger 'instagram' budget).",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_INSTAGRAM_CALLS_PER_SECOND, "minimum": 1},
    },
}
"""The Connection form's own fields (``conn-fields``), one declaration for the UI and the docs."""

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The access token lives in the (masked) password field; nothing else of the standard form is used.
    "hidden-fields": ["host", "schema", "login", "port", "extra"],
    "relabeling": {"password": "Access token"},
    "placeholders": {"password": "a long-lived user or system-user access token"},
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "meta-ads-elt",
        "name": "Meta Ads ELT",
        "description": "Meta (Facebook / Instagram) Marketing API, Lead Ads and conversations: hooks, "
        "operators and triggers of the meta-ads-elt pipeline.",
        "integrations": [
            {
                "integration-name": "Meta Graph API",
                "external-doc-url": "https://developers.facebook.com/docs/graph-api/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Meta Graph API", "python-modules": ["meta_ads_elt.hooks.graph_api"]}],
        "operators": [
            {
                "integration-name": "Meta Graph API",
                "python-modules": [
                    "meta_ads_elt.operators.insights",
                    "meta_ads_elt.operators.ad_objects",
                    "meta_ads_elt.operators.leads",
                    "meta_ads_elt.operators.conversations",
                ],
            }
        ],
        "triggers": [
            {"integration-name": "Meta Graph API", "python-modules": ["meta_ads_elt.triggers.insights"]}
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "meta_ads_elt.hooks.graph_api.MetaGraphApiHook",
                "hook-name": "Meta Graph API",
                "conn-fields": CONNECTION_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
