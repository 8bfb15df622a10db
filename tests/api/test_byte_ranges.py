"""Which bytes a `Range` header asks for: in process, no server."""

import pytest

from fpg_api.byte_ranges import ByteRange, limited, requested_range
from fpg_api.errors import ApiError


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=0-0", ByteRange(0, 0)),
    ],
)
def test_one_range_is_the_bytes_it_names_within_the_result(header, wanted):
    assert requested_range(header, 1000) == wanted


@pytest.mark.parametrize("header", [None, "", "bytes=-", "bytes=0-1,5-9", "items=0-1", "bytes=x-"])
def test_no_range_or_one_not_understood_gets_the_whole(header):
    assert requested_range(header, 1000) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=9-3", "bytes=-0"])
def test_a_range_beyond_the_result_is_416_with_its_size(header):
    with pytest.raises(ApiError) as refused:
        requested_range(header, 1000)
    assert refused.value.status == 416
    assert refused.value.headers == {"Content-Range": "bytes */1000"}


def test_limited_stops_reading_at_the_length():
    read = []

    def chunks():
        for chunk in (b"abcd", b"efgh", b"ijkl"):
            read.append(chunk)
            yield chunk

    assert b"".join(limited(chunks(), 6)) == b"abcdef"
    assert read == [b"abcd", b"efgh"]
