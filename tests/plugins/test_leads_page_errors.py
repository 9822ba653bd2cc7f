"""Errors of the Page-level operators name the Page and the permission it needs."""

from __future__ import annotations

from meta_ads_elt.errors import (
    MetaParameterError,
    MetaPermissionError,
    MetaRetryableError,
    MetaTokenError,
    classify,
)
from meta_ads_elt.leadgen_budget import LeadRetrievalBudgetExceeded
from meta_ads_elt.operators._pages import page_error


def _meta(code: int, message: str, subcode: int | None = None):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "T"}
    if subcode:
        error["error_subcode"] = subcode
    return classify(400, {"error": error})


def test_a_missing_permission_names_the_page_and_the_permission():
    err = page_error(
        _meta(10, "(#10) This endpoint requires the 'pages_messaging' permission."), "42", "pages_messaging"
    )
    assert isinstance(err, MetaPermissionError)
    assert str(err).startswith("Page 42: permission 'pages_messaging' is missing")


def test_a_user_token_on_a_page_edge_is_explained():
    err = page_error(
        _meta(190, "(#190) This method must be called with a Page Access Token"), "42", "leads_retrieval"
    )
    assert isinstance(err, MetaPermissionError)
    assert "Page 42: this call needs a Page access token" in str(err) and "leads_retrieval" in str(err)


def test_a_page_token_in_the_connection_is_explained():
    exc = _meta(
        100,
        "(#100) Tried accessing nonexisting field (access_token) on node type (Page) with a Page access token",
    )
    err = page_error(exc, "42", "leads_retrieval")
    assert isinstance(err, MetaTokenError) and "connection holds a Page access token" in str(err)


def test_an_unknown_page_is_named():
    err = page_error(
        _meta(100, "Unsupported get request. Object with ID '42' does not exist", 33), "42", "leads_retrieval"
    )
    assert isinstance(err, MetaParameterError) and str(err).startswith("Page 42 was not found")


def test_other_errors_keep_their_type():
    transient = _meta(2, "Service temporarily unavailable")
    assert isinstance(transient, MetaRetryableError)
    assert page_error(transient, "42", "leads_retrieval") is transient
    budget = LeadRetrievalBudgetExceeded("42", reported_pct=100.0)
    assert page_error(budget, "42", "leads_retrieval") is budget
