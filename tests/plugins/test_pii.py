"""PII normalisation, hashing and the keep/hash/drop rule of lead answers."""

from __future__ import annotations

import hashlib

import pytest
from meta_ads_elt.pii import (
    PiiPolicy,
    form_question_options,
    hash_email,
    hash_phone,
    normalize_email,
    normalize_phone,
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Meta's own examples: Conversions API, Customer Information Parameters (``em``: trim, lower-case;
# ``ph``: digits with the country code, no symbols, letters or leading zeros),
# https://developers.facebook.com/documentation/ads-commerce/conversions-api/parameters/customer-information-parameters
# and the same cases in the tests of Meta's Parameter Builder SDK (github.com/facebook/capi-param-builder).
META_EMAIL_EXAMPLES = [
    ("     John_Smith@gmail.com    ", "john_smith@gmail.com"),
    ("NICK@EMAIL.com", "nick@email.com"),
]
META_PHONE_EXAMPLES = [
    ("+1 (616) 954-78 88", "16169547888"),
    ("1(650)123-4567", "16501234567"),  # the country code written without "+": only symbols go
    ("+001 (616) 954-78 88", "16169547888"),
    ("01(650)123-4567", "16501234567"),  # leading zeros go
    ("4792813113", "4792813113"),
    ("+44 20 7946 0958", "442079460958"),
    ("+49 30 12345678", "493012345678"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [*META_EMAIL_EXAMPLES, ("  Joe@Example.COM ", "joe@example.com"), ("a@b.c", "a@b.c"), ("   ", None)],
)
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert normalize_email(raw) == expected


def test_email_hash_is_sha256_of_the_normalized_address():
    assert hash_email(" Joe@Example.com") == _sha("joe@example.com")


@pytest.mark.parametrize(("raw", "expected"), META_PHONE_EXAMPLES)
def test_phone_follows_metas_documented_examples(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        ("+1 (555) 123-4567", None, "15551234567"),
        ("+34 612 34 56 78", "1", "34612345678"),  # an explicit code wins over the default
        ("0034 612345678", None, "34612345678"),
        # "00" is the international prefix and "(0)" the German trunk prefix: E.164 is 49 30 1234567.
        ("0049 (0)30 1234567", None, "49301234567"),
        ("+49 (0)30 1234567", None, "49301234567"),
        ("030 1234567", "49", "49301234567"),  # national number: the trunk 0 goes, the code comes
        ("06 1234 5678", "39", "390612345678"),  # Italy keeps its leading 0 (no trunk prefix there)
        ("011 49 30 1234567", "1", "49301234567"),  # the US international prefix
        ("555-123-4567", "+1", "15551234567"),
        ("5551234567", None, "5551234567"),  # no code known: digits as they are
        ("0612 345", None, "612345"),  # ... without leading zeros (Meta's rule)
        ("n/a", None, None),
    ],
)
def test_phone_is_e164_digits_with_the_country_code(raw, default, expected):
    assert normalize_phone(raw, default) == expected


def test_phone_hash_is_sha256_of_the_e164_digits():
    assert hash_phone("0049 (0)30 1234567") == _sha("49301234567")


def test_default_policy_hashes_email_and_phone_and_drops_names_and_free_text():
    field_data = [
        {"name": "full_name", "values": ["Joe Example"]},
        {"name": "email", "values": ["Joe@Example.com "]},
        {"name": "phone_number", "values": ["+1 555 123 4567"]},
        {"name": "comments", "values": ["call me after 5, I live at 1 Main St"]},
    ]
    pii = PiiPolicy.build().apply(field_data)
    assert pii.email_sha256 == _sha("joe@example.com")
    assert pii.phone_sha256 == _sha("15551234567")
    by_question = {a.question: a for a in pii.answers}
    assert by_question["full_name"].value is None
    assert by_question["comments"].value is None
    assert by_question["email"].value == pii.email_sha256 and by_question["email"].value_is_hashed
    assert by_question["phone_number"].value == pii.phone_sha256
    assert "Joe" not in repr(pii)


def test_declared_options_are_kept_but_typed_or_sensitive_values_are_not():
    options = form_question_options(
        [
            {
                "key": "budget",
                "options": [{"key": "low", "value": "Under 1k"}, {"key": "high", "value": "1k+"}],
            },
            {"key": "gender", "options": [{"key": "f", "value": "F"}]},
            {"key": "city"},
        ]
    )
    field_data = [
        {"name": "budget", "values": ["low"]},
        {"name": "gender", "values": ["f"]},
        {"name": "city", "values": ["Springfield"]},
    ]
    answers = {a.question: a.value for a in PiiPolicy.build().apply(field_data, options).answers}
    assert answers == {"budget": "low", "gender": None, "city": None}
    typed = PiiPolicy.build().apply([{"name": "budget", "values": ["my name is Joe"]}], options)
    assert typed.answers[0].value is None


def test_allow_list_keeps_raw_values_and_still_fills_the_hashes():
    policy = PiiPolicy.build(allow_list=["Email", "full_name"])
    pii = policy.apply([{"name": "email", "values": ["A@b.co"]}, {"name": "full_name", "values": ["Ann"]}])
    assert [(a.question, a.value, a.value_is_hashed) for a in pii.answers] == [
        ("email", "A@b.co", False),
        ("full_name", "Ann", False),
    ]
    assert pii.email_sha256 == _sha("a@b.co")


def test_every_value_of_a_multi_select_is_one_answer_row():
    options = form_question_options([{"key": "topics", "options": [{"key": "a"}, {"key": "b"}]}])
    pii = PiiPolicy.build().apply([{"name": "topics", "values": ["a", "b"]}], options)
    assert [a.value for a in pii.answers] == ["a", "b"]
