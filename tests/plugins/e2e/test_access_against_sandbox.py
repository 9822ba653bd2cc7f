"""The per-run access check (``meta_ads_elt.access.preflight``) against the sandbox over HTTP: every
problem it finds is named with its id and fix, all at once, before any extraction."""

from __future__ import annotations

import pytest
import requests
from meta_ads_elt.access import AccessCheckError, PageAccess, form_of_another_page, preflight
from meta_ads_elt.errors import MetaRetryableError
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
from sandbox_lake import use_connection

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("calm_governor")]


def pages_of(world) -> list[PageAccess]:
    return [PageAccess(p["id"]) for p in world["pages"]]


def check(monkeypatch, sandbox, pages, token="sandbox-token"):  # noqa: S107 (the sandbox token)
    use_connection(monkeypatch, sandbox, token=token)
    return preflight(MetaGraphApiHook(meta_conn_id="meta_default"), True, pages)


def test_the_default_token_passes_and_reports_the_page_tasks(sandbox, world, monkeypatch):
    report = check(monkeypatch, sandbox, pages_of(world))
    assert {
        "ads_read",
        "leads_retrieval",
        "pages_messaging",
        "instagram_manage_messages",
    } <= report.permissions
    assert set(report.pages) == {p["id"] for p in world["pages"]}
    assert all("MESSAGING" in page["tasks"] for page in report.pages.values())


def test_missing_permissions_are_each_named_with_what_needs_them(sandbox, world, monkeypatch):
    with pytest.raises(AccessCheckError) as caught:
        check(
            monkeypatch,
            sandbox,
            pages_of(world),
            token="sandbox-token-without-leads_retrieval+instagram_basic",
        )
    problems = caught.value.problems
    assert any("permission 'leads_retrieval' is not granted" in p and "leads of Page" in p for p in problems)
    assert any(
        "permission 'instagram_basic' is not granted" in p and "instagram conversations" in p
        for p in problems
    )
    assert len(problems) == 2, "an edge needing a missing permission is not probed (and reported) again"


def test_every_permission_reading_leads_needs_is_checked_not_only_leads_retrieval(
    sandbox, world, monkeypatch
):
    """Retrieving Leads (meta_api_facts.md section 5.2) needs leads_retrieval, ads_management,
    pages_show_list, pages_read_engagement and pages_manage_ads: a token lacking pages_manage_ads lists the
    forms but is refused the leads, so the check names it instead of letting every leads task fail."""
    with pytest.raises(AccessCheckError) as caught:
        check(monkeypatch, sandbox, pages_of(world), token="sandbox-token-without-pages_manage_ads")
    (problem,) = caught.value.problems
    assert "permission 'pages_manage_ads' is not granted" in problem and "leads of Page" in problem


def test_a_user_without_the_messaging_task_is_named_per_page(sandbox, world, monkeypatch):
    with pytest.raises(AccessCheckError) as caught:
        check(monkeypatch, sandbox, pages_of(world)[:2], token="sandbox-token-without-MESSAGING+MODERATE")
    problems = caught.value.problems
    assert len(problems) == 2
    for page, problem in zip(world["pages"][:2], problems, strict=True):
        assert f"Page {page['id']}" in problem and "MESSAGING or MODERATE task (seed 004)" in problem
        assert "Messages task" in problem


def test_bad_ids_and_a_foreign_form_are_all_named_at_once(sandbox, world, monkeypatch):
    page, other = world["pages"][0], world["pages"][1]
    pages = [
        PageAccess(page["forms"][0]),  # a lead form's id where a Page id belongs
        PageAccess("999000111"),  # nothing at all
        PageAccess(page["id"], forms=(other["forms"][0],)),  # a form of another Page
    ]
    with pytest.raises(AccessCheckError) as caught:
        check(monkeypatch, sandbox, pages)
    message = str(caught.value)
    assert f"pages[].id {page['forms'][0]} is not a Page: Meta says it is a leadgenform" in message
    assert "Page 999000111 was not found" in message
    assert f"lead form {other['forms'][0]} belongs to Page {other['id']}, not to Page {page['id']}" in message
    assert "nothing was extracted" in message


def test_a_form_lookup_still_failing_after_the_retries_is_raised_not_called_a_foreign_form(
    sandbox_factory, world, monkeypatch
):
    """A configured form the Page's listing does not show is looked up by id (the leads task and the
    access check). A transient error (code 1/2, HTTP 500) that outlives the hook's retries is raised as
    retryable, naming the form: it is no config problem ("not a lead form"), which would fail the leads
    task for good and leave the Page out of the run."""
    sb = sandbox_factory()
    use_connection(monkeypatch, sb)
    page, other = sb.world()["pages"][0], sb.world()["pages"][1]
    foreign = other["forms"][0]
    hook = MetaGraphApiHook(meta_conn_id="meta_default", max_attempts=2, backoff_base=0.01)
    sb.set_faults({"transient_error_rate": 1.0, "endpoints": ["GET /{id}"]})

    with pytest.raises(MetaRetryableError, match=rf"pages\[{page['id']}\]\.forms: form {foreign} could not"):
        form_of_another_page(hook, foreign, page["id"])

    sb.clear_faults()  # the retry reads it and says what it is
    problem = form_of_another_page(hook, foreign, page["id"])
    assert problem is not None and f"belongs to Page {other['id']}, not to Page {page['id']}" in problem


def test_a_page_token_in_the_connection_names_its_page(sandbox, world, monkeypatch):
    owner = world["pages"][0]
    token = requests.get(
        f"{sandbox.url}/v26.0/{owner['id']}", params={"access_token": "sandbox-token", "fields": "access_token"},
        timeout=30,
    ).json()["access_token"]  # fmt: skip
    with pytest.raises(
        AccessCheckError, match=rf"holds the Page access token of Page {owner['id']} \(Acme Solar\)"
    ):
        check(monkeypatch, sandbox, pages_of(world), token=token)


def test_standard_access_cannot_be_seen_by_any_call(sandbox, world, monkeypatch):
    """Seed 004: the edges answer normally, so the check passes; the marts flag it instead
    (tests/plugins/e2e/test_marts_against_sandbox.py)."""
    report = check(monkeypatch, sandbox, pages_of(world), token="sandbox-token-standard-access")
    assert not report.problems
