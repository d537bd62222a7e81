"""Any bytes at all become a request object or an invalid_payload refusal, never another exception."""

from __future__ import annotations

import pytest

from kartud.rules.errors import CommandError
from kartud.service.commands import parse_request

NOT_JSON_WE_READ = {
    "a number of 5000 digits": b'{"count": ' + b"9" * 5000 + b"}",
    "nested past the recursion limit": b"[" * 100000 + b"]" * 100000,
    "not UTF-8": b'{"note": "\xff"}',
    "not JSON": b"{count: 1}",
}


@pytest.mark.parametrize("raw", NOT_JSON_WE_READ.values(), ids=NOT_JSON_WE_READ.keys())
def test_what_cannot_be_read_is_invalid_payload(raw):
    with pytest.raises(CommandError) as caught:
        parse_request(raw, 4 * 1024 * 1024)
    assert caught.value.code == "invalid_payload" and caught.value.details["problems"][0]["field"] == ""


def test_a_number_just_readable_is_read():
    assert parse_request(b'{"count": ' + b"9" * 4000 + b"}", 1 << 20)["count"] > 0
