"""Tax ID formats: valid and invalid examples per type, normalisation, the ABN checksum."""

from __future__ import annotations

import pytest

from app.portal.details import tax_ids

VALID = [
    # (type, typed, stored)
    ("eu_vat", "DE123456789", "DE123456789"),
    ("eu_vat", "de 123 456 789", "DE123456789"),
    ("eu_vat", "FR AB 123456789", "FRAB123456789"),
    ("eu_vat", "FR12345678901", "FR12345678901"),
    ("eu_vat", "NL123456789B01", "NL123456789B01"),
    ("eu_vat", "NL 1234.56.789.B01", "NL123456789B01"),
    ("eu_vat", "ATU12345678", "ATU12345678"),
    ("eu_vat", "BE0123456789", "BE0123456789"),
    ("eu_vat", "ESX1234567Z", "ESX1234567Z"),
    ("eu_vat", "EL123456789", "EL123456789"),
    ("eu_vat", "GR123456789", "EL123456789"),
    ("eu_vat", "IE1234567AB", "IE1234567AB"),
    ("eu_vat", "IE1A23456B", "IE1A23456B"),
    ("eu_vat", "SE123456789101", "SE123456789101"),
    ("eu_vat", "PL-123-456-78-90", "PL1234567890"),
    ("gb_vat", "GB123456789", "GB123456789"),
    ("gb_vat", "GB 123 4567 89", "GB123456789"),
    ("gb_vat", "123456789", "GB123456789"),
    ("gb_vat", "GB123456789012", "GB123456789012"),
    ("gb_vat", "GBGD001", "GBGD001"),
    ("gb_vat", "GBHA599", "GBHA599"),
    ("us_ein", "12-3456789", "12-3456789"),
    ("us_ein", "123456789", "12-3456789"),
    ("us_ein", "12 345 6789", "12-3456789"),
    ("au_abn", "51 824 753 556", "51824753556"),
    ("au_abn", "51824753556", "51824753556"),
    ("ca_bn", "123456789", "123456789"),
    ("ca_bn", "123 456 789", "123456789"),
    ("ch_vat", "CHE-123.456.789 MWST", "CHE-123.456.789 MWST"),
    ("ch_vat", "che123456789tva", "CHE-123.456.789 TVA"),
    ("ch_vat", "CHE 123 456 789 IVA", "CHE-123.456.789 IVA"),
]

INVALID = [
    ("eu_vat", "DE12345678"),  # 8 digits
    ("eu_vat", "DE1234567890"),  # 10 digits
    ("eu_vat", "123456789"),  # no prefix
    ("eu_vat", "US123456789"),  # not an EU country
    ("eu_vat", "FRO1123456789"),  # O is not allowed in the French key
    ("eu_vat", "NL123456789C01"),
    ("eu_vat", "ATE12345678"),
    ("gb_vat", "GB12345678"),
    ("gb_vat", "GBGD500"),
    ("gb_vat", "GBHA499"),
    ("gb_vat", "DE123456789"),
    ("us_ein", "12-345678"),
    ("us_ein", "AB-3456789"),
    ("au_abn", "51 824 753 557"),  # checksum
    ("au_abn", "12345678912"),  # checksum
    ("au_abn", "5182475355"),  # 10 digits
    ("ca_bn", "12345678"),
    ("ca_bn", "123456789RT0001"),
    ("ch_vat", "CHE-123.456.789"),  # no MWST/TVA/IVA
    ("ch_vat", "CHE-123.456.78 MWST"),
    ("ch_vat", "DE123456789"),
]


@pytest.mark.parametrize(("type_code", "typed", "stored"), VALID)
def test_valid(type_code: str, typed: str, stored: str) -> None:
    assert tax_ids.check(type_code, typed) == (stored, None)


@pytest.mark.parametrize(("type_code", "typed"), INVALID)
def test_invalid_with_an_example(type_code: str, typed: str) -> None:
    value, message = tax_ids.check(type_code, typed)
    assert value == typed
    assert message
    assert any(ch.isdigit() for ch in message)  # every message shows an example


def test_country_specific_message() -> None:
    _, message = tax_ids.check("eu_vat", "DE12345")
    assert message == "This does not look like a VAT number from Germany. Example: DE123456789."
    _, message = tax_ids.check("eu_vat", "NL123")
    assert "NL123456789B12" in message


def test_empty_and_unknown() -> None:
    assert tax_ids.check("us_ein", " ")[1] == "Enter the tax ID, like 12-3456789."
    assert tax_ids.check("xx_vat", "123")[1] == "Choose the type of tax ID."
    assert tax_ids.check("eu_vat", "DE" + "1" * 80)[1]


@pytest.mark.parametrize(
    ("abn", "ok"),
    [("51824753556", True), ("53004085616", True), ("51824753557", False),
     ("01824753556", False), ("5182475355", False)],
)  # fmt: skip
def test_abn_checksum(abn: str, ok: bool) -> None:
    assert tax_ids.abn_checksum_ok(abn) is ok


def test_every_eu_country_has_a_working_example() -> None:
    assert len(tax_ids.EU_VAT) == 28  # the EU-27 plus XI (Northern Ireland)
    for prefix, (_pattern, example) in tax_ids.EU_VAT.items():
        assert example.startswith(prefix)
        assert tax_ids.check("eu_vat", example) == (example, None), prefix


def test_choices() -> None:
    codes = [code for code, _label in tax_ids.choices()]
    assert codes == ["eu_vat", "gb_vat", "us_ein", "au_abn", "ca_bn", "ch_vat"]
