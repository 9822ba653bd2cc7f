"""One scrub function for every log path."""

from __future__ import annotations

from meta_ads_elt.redaction import register_secret, scrub, scrub_obj


def test_query_string_tokens_and_proofs_are_scrubbed():
    url = "http://127.0.0.1:1/v26.0/act_1/insights?access_token=EAAB123456&appsecret_proof=deadbeef99&limit=5"
    out = scrub(url)
    assert "EAAB123456" not in out and "deadbeef99" not in out
    assert "limit=5" in out


def test_json_and_repr_spellings_are_scrubbed():
    assert "tok12345" not in scrub('{"access_token": "tok12345"}')
    assert "tok12345" not in scrub("{'access_token': 'tok12345', 'id': '1'}")
    assert "tok12345678" not in scrub("Authorization: OAuth tok12345678")


def test_registered_secrets_are_scrubbed_anywhere():
    register_secret("page-token-xyz-123")
    assert scrub("got page-token-xyz-123 back") == "got *** back"


def test_scrub_obj_blanks_secret_keys():
    out = scrub_obj(
        {"access_token": "abcdefgh", "paging": {"next": "https://x/?access_token=abcdefgh&after=Q"}}
    )
    assert out["access_token"] == "***"
    assert "abcdefgh" not in out["paging"]["next"]
