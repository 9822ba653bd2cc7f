"""Lead-form PII: normalisation, SHA-256 hashing and the rule that decides what reaches the lake.

What is guaranteed, for every answer of a lead's ``field_data`` (one :class:`Answer` per value):

* **Email** questions (key ``email`` or containing ``email``, e.g. ``work_email``): only
  ``sha256(normalize_email(value))`` is stored, ``value_is_hashed=True``. Normalisation as Meta
  specifies it for its match keys (Conversions API "Customer Information Parameters", ``em``): trim
  surrounding whitespace, lower-case.
* **Phone** questions (key containing ``phone``): only ``sha256(normalize_phone(value))``.
  Meta's rule (``ph``): digits only, *with* the country code, no leading zeros, no symbols or
  letters, i.e. the E.164 number without its ``+``. The number is parsed with ``phonenumbers``
  (Google's libphonenumber), which knows each country's trunk prefix:

  - ``+<code> ...`` or ``00<code> ...``: international already (``0049 (0)30 1234567`` ->
    ``49301234567``: the ``00`` and the national trunk ``(0)`` go);
  - otherwise, with a configured ``default_country_code`` (a calling code such as ``"49"``): parsed
    as a national number of that country (``030 1234567`` -> ``49301234567``; Italy keeps its
    leading 0: ``06 1234 5678`` -> ``390612345678``);
  - otherwise (no country known) or when the library cannot parse it: Meta's literal rule, digits
    with leading zeros removed. Meta's lead forms deliver phone numbers in international form
    (``+15551234567``), so this only happens to hand-typed custom questions; such a hash will not
    match one made elsewhere with a country code, which is why the default can be configured;
  - a value without any digit hashes to nothing (``None``).
* **Multiple-choice** answers are kept raw when the form declares the question with options
  and the value is one of those options (by option ``key`` or ``value``), and the question is not
  one of the sensitive standard questions (:data:`SENSITIVE_KEYS`: date of birth, gender,
  marital/relationship/military status, national ids). The rule: a value that is one of the form's
  own options was chosen, not typed, so it cannot carry a person's name, address or free text.
* **Everything else** (names, addresses, cities, postcodes, job titles, free text, custom questions
  without options, options the form does not declare) is dropped: the answer row is kept with
  ``value=None`` so analyses can still see that the question was answered.
* The **allow-list** (config ``pii_allow_list``, question keys, case-insensitive) keeps the raw value
  of those questions, email and phone included (``value_is_hashed=False``), for users with a lawful
  need. The ``leads`` dataset's ``email_sha256`` / ``phone_sha256`` are filled either way.

Nothing here logs values; callers must not either.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import phonenumbers

SENSITIVE_KEYS = frozenset(
    {
        "date_of_birth",
        "dob",
        "gender",
        "marital_status",
        "relationship_status",
        "military_status",
        # national identity numbers of Meta's standard questions
        "cpf",
        "cnpj",
        "dni",
        "cuit",
        "ruc",
        "rut",
        "nit",
        "ci",
        "id_cpf",
        "id_ar_dni",
        "id_cl_rut",
        "id_co_cc",
        "id_ec_ci",
        "id_pe_dni",
        "id_mx_rfc",
    }
)
"""Standard question keys never kept raw, even when the form offers them as options."""

_NON_DIGITS = re.compile(r"\D+")
_INTERNATIONAL_00 = re.compile(r"^00(?=\s*\(?[1-9])")
"""``00`` + a country code: the international call prefix most countries use, written for ``+``."""


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text (lower-case hex, 64 characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_email(value: str) -> str | None:
    """Trimmed, lower-cased email; ``None`` for an empty value."""
    normalized = value.strip().lower()
    return normalized or None


def normalize_phone(value: str, default_country_code: str | None = None) -> str | None:
    """E.164 digits without the ``+`` (rules in the module docstring); ``None`` without digits."""
    digits = _NON_DIGITS.sub("", value)
    if not digits:
        return None
    text = _INTERNATIONAL_00.sub("+", value.strip(), count=1)
    region = None
    if default_country_code:
        region = phonenumbers.region_code_for_country_code(
            int(_NON_DIGITS.sub("", default_country_code) or 0)
        )
    if text.startswith("+") or region not in (None, phonenumbers.UNKNOWN_REGION):
        try:
            number = phonenumbers.parse(text, None if text.startswith("+") else region)
        except phonenumbers.NumberParseException:
            pass
        else:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    return digits.lstrip("0") or None


def hash_email(value: str) -> str | None:
    normalized = normalize_email(value)
    return sha256_hex(normalized) if normalized else None


def hash_phone(value: str, default_country_code: str | None = None) -> str | None:
    normalized = normalize_phone(value, default_country_code)
    return sha256_hex(normalized) if normalized else None


def is_email_key(key: str) -> bool:
    return "email" in key.lower()


def is_phone_key(key: str) -> bool:
    return "phone" in key.lower()


@dataclass(frozen=True)
class Answer:
    """One value of one question of one lead, as it may be stored."""

    question: str
    value: str | None
    value_is_hashed: bool


@dataclass(frozen=True)
class LeadPii:
    """What a lead's ``field_data`` becomes: the identity hashes and the answer rows."""

    email_sha256: str | None
    phone_sha256: str | None
    answers: list[Answer]


@dataclass(frozen=True)
class PiiPolicy:
    """The allow-list and phone default of one pipeline, plus the forms' declared options.

    ``form_options`` maps ``form_id -> {question key -> {allowed option keys and values}}``
    (from the forms' ``questions``); questions absent from it have no options.
    """

    allow_list: frozenset[str] = frozenset()
    default_country_code: str | None = None

    @classmethod
    def build(cls, allow_list: Iterable[str] = (), default_country_code: str | None = None) -> PiiPolicy:
        return cls(frozenset(k.strip().lower() for k in allow_list), default_country_code)

    def apply(
        self, field_data: Iterable[Mapping], options: Mapping[str, frozenset[str]] | None = None
    ) -> LeadPii:
        """Turn one lead's ``field_data`` into stored answers (one per value) and identity hashes."""
        options = options or {}
        email_hash: str | None = None
        phone_hash: str | None = None
        answers: list[Answer] = []
        for item in field_data:
            key = str(item.get("name") or "")
            if not key:
                continue
            lowered = key.lower()
            for raw in item.get("values") or [None]:
                value = None if raw is None else str(raw)
                hashed = self._hash(lowered, value)
                if hashed is not None and is_email_key(lowered) and email_hash is None:
                    email_hash = hashed
                if hashed is not None and is_phone_key(lowered) and phone_hash is None:
                    phone_hash = hashed
                answers.append(self._answer(key, lowered, value, hashed, options.get(key)))
        return LeadPii(email_hash, phone_hash, answers)

    def _hash(self, lowered_key: str, value: str | None) -> str | None:
        if value is None:
            return None
        if is_email_key(lowered_key):
            return hash_email(value)
        if is_phone_key(lowered_key):
            return hash_phone(value, self.default_country_code)
        return None

    def _answer(
        self, key: str, lowered: str, value: str | None, hashed: str | None, options: frozenset[str] | None
    ) -> Answer:
        if value is None:
            return Answer(key, None, False)
        if lowered in self.allow_list:
            return Answer(key, value, False)
        if is_email_key(lowered) or is_phone_key(lowered):
            return Answer(key, hashed, hashed is not None)
        if options and lowered not in SENSITIVE_KEYS and value in options:
            return Answer(key, value, False)
        return Answer(key, None, False)


def form_question_options(questions: Iterable[Mapping] | None) -> dict[str, frozenset[str]]:
    """``{question key: {option keys and values}}`` from a form's ``questions`` (only those with options)."""
    result: dict[str, frozenset[str]] = {}
    for question in questions or ():
        key = question.get("key")
        opts = question.get("options") or []
        if isinstance(opts, Mapping):  # field expansion may wrap lists as {"data": [...]}
            opts = opts.get("data") or []
        values: set[str] = set()
        for option in opts:
            if isinstance(option, Mapping):
                values.update(str(option[f]) for f in ("key", "value") if option.get(f))
            elif option not in (None, ""):
                values.add(str(option))
        if key and values:
            result[str(key)] = frozenset(values)
    return result
