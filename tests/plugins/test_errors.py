"""Error classification: retryable / throttled / too much data / fatal with actionable messages."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt.errors import (
    MetaAppSecretProofError,
    MetaDataTooLargeError,
    MetaFatalError,
    MetaParameterError,
    MetaPermissionError,
    MetaRetryableError,
    MetaThrottledError,
    MetaTokenError,
    classify,
)


def body(code, message="m", subcode=None, **extra):
    err = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "T1", **extra}
    if subcode:
        err["error_subcode"] = subcode
    return {"error": err}


@pytest.mark.parametrize("code", [1, 2])
def test_unknown_and_service_errors_are_retryable(code):
    err = classify(500, body(code, "An unexpected error has occurred"))
    assert type(err) is MetaRetryableError
    assert err.kind == "retryable"


def test_is_transient_flag_makes_any_code_retryable():
    assert type(classify(400, body(9999, is_transient=True))) is MetaRetryableError


def test_http_5xx_without_body_is_retryable():
    assert type(classify(502, None)) is MetaRetryableError


@pytest.mark.parametrize("code", [4, 17, 32, 341, 613, 80000, 80004, 80006, 80014])
def test_rate_limit_codes_are_throttled(code):
    err = classify(400, body(code, f"(#{code}) too many calls", 2446079))
    assert isinstance(err, MetaThrottledError)
    assert err.kind == "throttled"


def test_throttle_wait_comes_from_regain_time_in_headers():
    headers = {
        "X-Business-Use-Case-Usage": json.dumps(
            {
                "123": [
                    {
                        "type": "ads_insights",
                        "call_count": 100,
                        "total_cputime": 10,
                        "total_time": 10,
                        "estimated_time_to_regain_access": 3,
                    }
                ]
            }
        )
    }
    err = classify(400, body(80000, subcode=2446079), headers)
    assert err.retry_after == 180.0


def test_expired_token_is_fatal_and_says_refresh():
    err = classify(
        400, body(190, "Error validating access token: Session has expired", 463), conn_id="meta_default"
    )
    assert isinstance(err, MetaTokenError)
    assert isinstance(err, AirflowFailException)  # Airflow must not retry the task either
    assert "Refresh the token" in str(err)
    assert "meta_default" in str(err)


@pytest.mark.parametrize("code", [10, 200, 294, 299])
def test_permission_errors_name_the_missing_permission(code):
    err = classify(403, body(code, f"(#{code}) Requires ads_read permission to manage the object"))
    assert isinstance(err, MetaPermissionError)
    assert "ads_read" in str(err)


def test_bad_parameter_is_fatal_and_quotes_meta():
    err = classify(400, body(100, "(#100) time_range must be a dict"))
    assert isinstance(err, MetaParameterError)
    assert "time_range" in str(err)


def test_bad_appsecret_proof_points_at_the_app_secret():
    err = classify(400, body(100, "Invalid appsecret_proof provided in the API argument"))
    assert isinstance(err, MetaAppSecretProofError) and not isinstance(err, MetaParameterError)
    assert str(err).startswith("Meta refused the appsecret_proof")
    assert "app_secret" in str(err)
    required = classify(400, body(100, "API calls from the server require an appsecret_proof argument"))
    assert isinstance(required, MetaAppSecretProofError) and "add the app's secret" in str(required)


def test_too_much_data_is_its_own_kind():
    assert isinstance(classify(400, body(100, "too many rows", 1487534)), MetaDataTooLargeError)
    reduce = classify(
        500, body(1, "Please reduce the amount of data you're asking for, then retry your request")
    )
    assert isinstance(reduce, MetaDataTooLargeError)


def test_unknown_4xx_is_fatal():
    err = classify(400, body(3, "Unknown method"))
    assert isinstance(err, MetaFatalError)


def test_messages_never_carry_tokens():
    err = classify(
        400,
        body(
            100,
            "bad url https://graph.facebook.com/v26.0/1?access_token=EAAsecretsecret&appsecret_proof=abc123",
        ),
    )
    assert "EAAsecretsecret" not in str(err)
    assert "abc123" not in str(err)


def test_errors_pickle_round_trip():
    import pickle

    err = classify(400, body(190, "expired", 463))
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert type(back) is MetaTokenError and back.code == 190 and str(back) == str(err)
