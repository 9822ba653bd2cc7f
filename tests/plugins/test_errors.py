"""Error classification: retryable / throttled / too much data / fatal with actionable messages."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt.errors import (
    MetaAppSecretProofError,
    MetaBeyondRetentionError,
    MetaDataTooLargeError,
    MetaFatalError,
    MetaParameterError,
    MetaPermissionError,
    MetaRetryableError,
    MetaThrottledError,
    MetaTokenError,
    classify,
    from_event,
    in_context,
    is_invalid_request,
    is_missing_object,
    is_report_not_ready,
    is_token_refusal,
    to_event,
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


@pytest.mark.parametrize(
    ("status", "reply", "invalid"),
    [
        (400, body(100, "Unsupported get request. Object with ID '1234' does not exist", subcode=33), True),
        (400, body(100, "(#100) Tried accessing nonexisting field (owned_ad_accounts)"), True),
        (400, body(100, "Invalid appsecret_proof provided in the API argument"), True),
        (400, body(100, "Please reduce the amount of data you're asking for", subcode=1487534), True),
        (400, body(190, "Error validating access token"), False),
        (403, body(200, "Requires business_management permission"), False),
        (400, body(4, "Application request limit reached"), False),
        (500, body(2, "Service temporarily unavailable"), False),
    ],
)
def test_an_invalid_request_is_code_100_whatever_its_subcode_and_class(status, reply, invalid):
    err = classify(status, reply)
    assert is_invalid_request(err) is invalid
    assert is_invalid_request(from_event(to_event(err))) is invalid, "read from the fields, not the message"


@pytest.mark.parametrize(
    ("reply", "missing"),
    [
        (body(100, "Unsupported get request. Object with ID '1234' does not exist", subcode=33), True),
        (body(100, "Invalid appsecret_proof provided in the API argument"), False),
        (body(100, "API calls from the server require an appsecret_proof argument"), False),
        (body(100, "(#100) Tried accessing nonexisting field (owned_ad_accounts)"), False),
        (body(100, "Please reduce the amount of data you're asking for", subcode=1487534), False),
        (body(190, "Error validating access token", subcode=33), False),
    ],
)
def test_only_100_33_means_no_such_object_for_this_token(reply, missing):
    """Code 100 also refuses a proof or a parameter: those must not be worded "does not exist"."""
    err = classify(400, reply)
    assert is_missing_object(err) is missing
    assert is_missing_object(from_event(to_event(err))) is missing
    assert not is_missing_object(ValueError("100/33"))


@pytest.mark.parametrize(
    ("status", "reply", "refusal"),
    [
        (400, body(190, "Error validating access token: Session has expired", subcode=463), True),
        (400, body(102, "Session key invalid or no longer valid"), True),
        (400, body(100, "Invalid appsecret_proof provided in the API argument"), True),
        (400, body(100, "API calls from the server require an appsecret_proof argument"), True),
        (403, body(200, "(#200) Requires ads_read permission to manage the object"), True),
        (403, body(10, "(#10) This endpoint requires the 'pages_read_engagement' permission"), True),
        (403, body(200, "(#200) Permissions error"), False),  # also what one account the token lost answers
        (400, body(100, "Unsupported get request. Object with ID '1' does not exist", subcode=33), False),
        (400, body(100, "(#100) Tried accessing nonexisting field (promote_pages)"), False),
        (500, body(2, "Service temporarily unavailable", is_transient=True), False),
    ],
)
def test_a_token_refusal_is_the_token_the_proof_or_a_named_permission(status, reply, refusal):
    err = classify(status, reply)
    assert is_token_refusal(err) is refusal
    assert is_token_refusal(from_event(to_event(err))) is refusal, "decided by the class and its fields"


def test_only_a_graph_error_can_be_a_token_refusal():
    assert not is_token_refusal(None)
    assert not is_token_refusal(ValueError("190"))
    assert not is_token_refusal(MetaPermissionError("built without the permissions Meta named"))


def test_only_a_graph_error_can_be_an_invalid_request():
    assert not is_invalid_request(ValueError("code 100"))
    assert not is_invalid_request(MetaFatalError("no code"))


@pytest.mark.parametrize(
    ("reply", "not_ready"),
    [
        (body(2601, "Error accessing adreport job.", subcode=1815107, is_transient=True), True),
        (body(2601, "Error accessing adreport job.", subcode=1815108, is_transient=True), False),
        (body(2, "Service temporarily unavailable", subcode=1815107, is_transient=True), False),
    ],
)
def test_a_report_not_ready_is_2601_1815107_whatever_its_class(reply, not_ready):
    err = classify(400, reply)
    assert isinstance(err, MetaRetryableError), "still transient: only the probe declines to retry it"
    assert is_report_not_ready(err) is not_ready
    assert is_report_not_ready(from_event(to_event(err))) is not_ready
    assert not is_report_not_ready(ValueError("2601"))


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


def _every_error_class():
    """Every MetaApiError class the plugins declare (their modules imported, so subclasses register)."""
    import importlib
    import pkgutil

    import meta_ads_elt
    from meta_ads_elt.errors import MetaApiError

    for module in pkgutil.walk_packages(meta_ads_elt.__path__, "meta_ads_elt."):
        importlib.import_module(module.name)
    found, todo = set(), [MetaApiError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


def _sample(cls):
    kwargs = {"failed_dates": ["2026-11-01"]} if "failed_dates" in cls.__init__.__code__.co_varnames else {}
    return cls(
        f"{cls.__name__} on GET /act_1 access_token=EAAsecret [code 17]",
        code=17,
        subcode=2446079,
        http_status=400,
        fbtrace_id="T1",
        is_transient=True,
        retry_after=61.5,
        body={"error": {"code": 17}},
        **kwargs,
    )


def test_every_error_class_survives_the_event_codec():
    from meta_ads_elt.errors import from_event, to_event

    classes = _every_error_class()
    assert len(classes) >= 15  # the hook's, the operators' (discovery...) and the trigger's errors
    for cls in classes:
        err = _sample(cls)
        event = json.loads(json.dumps(to_event(err)))  # plain JSON, as the triggerer stores it
        back = from_event(event)
        assert type(back) is cls, cls
        assert str(back) == str(err) and back.message == err.message and "EAAsecret" not in back.message
        assert back.kind == err.kind
        assert isinstance(back, AirflowFailException) == isinstance(err, AirflowFailException)
        for field in ("code", "subcode", "http_status", "fbtrace_id", "is_transient", "retry_after"):
            assert getattr(back, field) == getattr(err, field), (cls, field)
        assert getattr(back, "failed_dates", None) == getattr(err, "failed_dates", None)


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_an_error_in_context_keeps_its_class_and_fields_and_names_the_context(cls):
    err = _sample(cls)
    framed = in_context(err, "act_1 ads: id 42 access_token=EAAsecret")
    assert type(framed) is cls and framed.kind == err.kind
    assert {k: v for k, v in vars(framed).items() if k != "message"} == {
        k: v for k, v in vars(err).items() if k != "message"
    }
    assert str(framed).startswith("act_1 ads: id 42") and err.message in str(framed)
    assert "EAAsecret" not in str(framed)


def test_an_error_class_unknown_to_the_reader_keeps_its_kind():
    from meta_ads_elt.errors import MetaApiError, from_event, to_event

    event = to_event(MetaTokenError("expired", code=190))
    fatal = from_event({**event, "class": "elsewhere.RenamedTokenError"})
    assert type(fatal) is MetaFatalError and fatal.code == 190 and fatal.message == "expired"
    retryable = from_event({**to_event(MetaRetryableError("x")), "class": "gone.Error"})
    assert type(retryable) is MetaRetryableError
    unexpected = from_event(to_event(RuntimeError("boom access_token=EAAsecret")))
    assert type(unexpected) is MetaApiError and "boom" in unexpected.message
    assert "EAAsecret" not in unexpected.message


def test_every_error_that_cannot_succeed_on_retry_fails_the_task_at_once():
    from meta_ads_elt.access import AccessCheckError
    from meta_ads_elt.batches import BatchFailedFatally
    from meta_ads_elt.discovery import DiscoveryError
    from meta_ads_elt.errors import (
        DataContractError,
        MetaAppSecretProofError,
        MetaArgumentError,
        MetaConfigError,
        MetaDaysFailedError,
        MetaJobFailedError,
        MetaObjectAccessError,
        MetaRateLimitWaitError,
        is_retryable,
    )
    from meta_ads_elt.failures import ExtractionsFailedError
    from meta_ads_elt.lake.rows import LakeSchemaError
    from meta_ads_elt.leadgen_budget import LeadRetrievalBudgetExceeded

    non_retryable = [
        MetaFatalError,
        MetaTokenError,
        MetaPermissionError,
        MetaParameterError,
        MetaObjectAccessError,
        MetaConfigError,
        MetaArgumentError,
        MetaAppSecretProofError,
        MetaBeyondRetentionError,
        MetaJobFailedError,
        MetaDaysFailedError,
        MetaRateLimitWaitError,
        DiscoveryError,
        DataContractError,
        LakeSchemaError,
        LeadRetrievalBudgetExceeded,
        AccessCheckError,
        ExtractionsFailedError,
        BatchFailedFatally,
    ]
    for cls in non_retryable:
        assert issubclass(cls, AirflowFailException), cls
    for cls in (c for c in _every_error_class() if issubclass(c, MetaFatalError)):
        assert cls in non_retryable, f"{cls.__name__}: add it to this list"
        assert not is_retryable(_sample(cls))
    assert is_retryable(_sample(MetaRetryableError)) and is_retryable(_sample(MetaThrottledError))
    assert not is_retryable(_sample(MetaDataTooLargeError))  # the caller reads less instead


def test_a_lake_contract_error_names_the_fix_and_stays_a_value_error():
    from meta_ads_elt.lake.rows import LakeSchemaError

    err = LakeSchemaError("insights: column 'spend' is required but 2 row(s) lack it")
    assert isinstance(err, ValueError) and isinstance(err, AirflowFailException)
    assert "column 'spend'" in str(err) and "not retried" in str(err) and "schema" in str(err)


def test_operator_argument_errors_fail_at_once_naming_argument_and_value():
    import datetime as dt

    from meta_ads_elt.errors import MetaArgumentError
    from meta_ads_elt.operators._pages import interval_day, utc_window

    with pytest.raises(MetaArgumentError, match=r"lookback_days = 0: .*1 or more") as info:
        utc_window(dt.date(2026, 11, 1), 0)
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, ValueError)
    with pytest.raises(MetaArgumentError, match="data_interval_day='YYYY-MM-DD'"):
        interval_day({}, None)


def test_meta_s_full_stop_is_not_doubled_before_the_fix():
    err = classify(400, {"error": {"code": 100, "message": "(#100) Tried accessing nonexisting field (x)."}})
    assert "nonexisting field (x). Fix the parameter" in err.message
    assert ".." not in err.message
