"""Listings: parameters, the name walk (against a brute-force oracle), and Swift's exact bodies."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from common.timestamp import Timestamp
from storage_node.listing import (
    ListingParams,
    ListingRequestError,
    NameRange,
    Subdir,
    account_listing_xml,
    container_listing_xml,
    container_record,
    decode_query,
    extract_swift_bytes,
    filter_sorted_names,
    get_param,
    list_entries,
    listing_body,
    listing_content_type,
    listing_json,
    listing_plain,
    name_range_sql,
    object_record,
    parse_listing_params,
    prefix_upper_bound,
    subdir_record,
)

# ---- parameters --------------------------------------------------------------------------------


def test_decode_query_keeps_blank_values_and_last_repeat():
    query = decode_query("prefix=&limit=5&limit=7&marker=a%2Fb&delimiter=%2F&x")
    assert query == {"prefix": "", "limit": "7", "marker": "a/b", "delimiter": "/", "x": ""}
    assert get_param(query, "prefix") == ""
    assert get_param(query, "missing") is None


def test_get_param_decodes_utf8_and_refuses_bad_bytes():
    query = decode_query("prefix=%C3%A9t%C3%A9&marker=%FF")
    assert get_param(query, "prefix") == "été"
    with pytest.raises(ListingRequestError) as caught:
        get_param(query, "marker")
    assert (caught.value.status, caught.value.body) == (400, '"marker" parameter not valid UTF-8')


@pytest.mark.parametrize("text, expected", [
    ("", 10000), ("limit=0", 0), ("limit=1", 1), ("limit=10000", 10000),
    # Swift ignores a limit that is not a plain number and uses the maximum.
    ("limit=abc", 10000), ("limit=-1", 10000), ("limit=1.5", 10000), ("limit=%C2%B2", 10000),
])
def test_limit(text, expected):
    assert parse_listing_params(decode_query(text), 10000).limit == expected


def test_limit_above_maximum_is_412():
    with pytest.raises(ListingRequestError) as caught:
        parse_listing_params(decode_query("limit=10001"), 10000)
    assert (caught.value.status, caught.value.body) == (412, "Maximum limit is 10000")


def test_listing_params_fields():
    params = parse_listing_params(decode_query(
        "prefix=p&delimiter=/&marker=m&end_marker=z&reverse=On&path=d"), 100)
    assert params == ListingParams(limit=100, marker="m", end_marker="z", prefix="p",
                                   delimiter="/", path="d", reverse=True)
    assert parse_listing_params(decode_query("reverse=no&path=d"), 100,
                                allow_path=False) == ListingParams(limit=100)
    with pytest.raises(ListingRequestError):
        parse_listing_params(decode_query("delimiter=%FE"), 100)


@pytest.mark.parametrize("format_value, accept, expected", [
    (None, None, "text/plain"),
    ("json", None, "application/json"),
    ("JSON", "application/xml", "application/json"),
    ("xml", None, "application/xml"),
    ("plain", "application/json", "text/plain"),
    ("nonsense", None, "text/plain"),
    (None, "application/json", "application/json"),
    (None, "*/*", "text/plain"),
    (None, "application/*", "application/json"),
    (None, "text/xml", "text/xml"),
    (None, "application/json;q=0.5, application/xml;q=0.9", "application/xml"),
    (None, "text/*;q=0.9, application/json", "application/json"),
])
def test_content_type_negotiation(format_value, accept, expected):
    assert listing_content_type(format_value, accept) == expected


@pytest.mark.parametrize("accept, status", [
    ("image/png", 406), ("garbage", 400), ("application/json;q=x", 400),
    ("text/plain;q=1;q=2", 400),
])
def test_content_type_errors(accept, status):
    with pytest.raises(ListingRequestError) as caught:
        listing_content_type(None, accept)
    assert caught.value.status == status


# ---- the walk ----------------------------------------------------------------------------------


def reference_listing(names: list[str], params: ListingParams) -> list[str | Subdir]:
    """The obvious definition of a listing, by brute force over every name."""
    lower, upper = params.marker, params.end_marker
    if params.reverse:
        lower, upper = params.end_marker, params.marker
    prefix, delimiter = params.prefix, params.delimiter
    if params.path is not None:
        prefix = params.path.rstrip("/") + "/" if params.path else ""
        delimiter = "/"
    chosen = sorted(name for name in names
                    if (not lower or name > lower) and (not upper or name < upper)
                    and (not prefix or name.startswith(prefix))
                    and (params.allow_reserved or not name.startswith("\x00")))
    if params.reverse:
        chosen.reverse()
    out: list[str | Subdir] = []
    for name in chosen:
        if delimiter:
            end = name.find(delimiter, len(prefix or ""))
            if params.path is not None:
                if name == prefix or (end >= 0 and len(name) > end + len(delimiter)):
                    continue
            elif end >= 0:
                subdir = Subdir(name[:end + len(delimiter)])
                # A subdir equal to the lower marker was the last entry of the previous page.
                if subdir.name != lower and (not out or out[-1] != subdir):
                    out.append(subdir)
                continue
        out.append(name)
    return out[:params.limit]


def walk(names: list[str], params: ListingParams) -> list[str | Subdir]:
    rows = [(name,) for name in sorted(names)]
    entries = list_entries(lambda r: filter_sorted_names(rows, r, params.allow_reserved), params)
    return [entry if isinstance(entry, Subdir) else entry[0] for entry in entries]


NAMES = ["a", "a/", "a/b", "a/b/c", "a/b/d", "a/c", "a-b", "a0", "b", "b/x/y", "b/z", "ba/",
         "c--d", "c--e--f", "c-", "d/", "d//e", "ph/2023/", "ph/2023/x", "ph/2024/a", "ph/z",
         "ph", "ph0", "é", "é/ü", "日本/語", "\U0001f600/x", "\x00reserved", "z"]


def test_walk_matches_reference_on_every_combination():
    prefixes = [None, "", "a", "a/", "ph/", "b", "c-", "é", "zz"]
    delimiters = [None, "/", "-", "--", "b"]
    markers = ["", "a", "a/", "a/b", "ph/2023/", "b/", "é", "zz"]
    end_markers = [None, "", "a/c", "b/z", "ph/2024", "é/", "\U0001f600"]
    paths = [None, "", "a", "a/", "ph", "ph/2023", "b/x"]
    checked = 0
    for prefix, delimiter, marker, end_marker, reverse, limit in itertools.product(
            prefixes, delimiters, markers, end_markers, (False, True), (1, 3, 100)):
        params = ListingParams(limit=limit, marker=marker, end_marker=end_marker,
                               prefix=prefix, delimiter=delimiter, reverse=reverse)
        assert walk(NAMES, params) == reference_listing(NAMES, params), params
        checked += 1
    for path, marker, reverse, limit in itertools.product(paths, markers, (False, True),
                                                           (1, 2, 100)):
        params = ListingParams(limit=limit, marker=marker, path=path, reverse=reverse)
        assert walk(NAMES, params) == reference_listing(NAMES, params), params
        checked += 1
    assert checked > 10000


def test_walk_matches_reference_on_random_names():
    rng = random.Random(20261121)
    alphabet = "ab/-é"
    for _ in range(300):
        names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
                 for _ in range(rng.randint(0, 40))}
        names = sorted(names)
        params = ListingParams(
            limit=rng.choice([1, 2, 5, 1000]),
            marker=rng.choice(["", *names[:3], "a/", "b"]),
            end_marker=rng.choice([None, "", *names[-3:], "b/"]),
            prefix=rng.choice([None, "", "a", "a/", "b-", "é"]),
            delimiter=rng.choice([None, "/", "-", "a/"]),
            path=rng.choice([None, None, None, "", "a", "b/"]),
            reverse=rng.random() < 0.5)
        assert walk(names, params) == reference_listing(names, params), (names, params)


def test_paging_through_a_delimited_listing_visits_everything_once():
    names = [f"{d}/{i}" for d in "abcdef" for i in range(5)] + list("uvwxyz")
    marker, pages = "", []
    while True:
        page = walk(names, ListingParams(limit=4, marker=marker, delimiter="/"))
        if not page:
            break
        pages.extend(page)
        last = page[-1]
        marker = last.name if isinstance(last, Subdir) else last
    assert pages == [Subdir(f"{d}/") for d in "abcdef"] + list("uvwxyz")


def test_reverse_is_the_forward_listing_backwards():
    for params in (ListingParams(limit=1000), ListingParams(limit=1000, delimiter="/"),
                   ListingParams(limit=1000, prefix="ph/", delimiter="/"),
                   ListingParams(limit=1000, path="ph")):
        forward = walk(NAMES, params)
        backward = walk(NAMES, ListingParams(**{**params.__dict__, "reverse": True}))
        assert backward == forward[::-1]


def test_reserved_names_only_when_allowed():
    assert "\x00reserved" not in walk(NAMES, ListingParams(limit=100))
    assert walk(NAMES, ListingParams(limit=1, allow_reserved=True)) == ["\x00reserved"]


def test_prefix_upper_bound():
    assert prefix_upper_bound("abc") == "abd"
    assert prefix_upper_bound("a/") == "a0"
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"          # never a surrogate
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff") is None
    # A prefix of U+10FFFF still lists (Swift's chr() overflow would fail).
    names = ["\U0010ffff", "\U0010ffffa", "z"]
    assert walk(names, ListingParams(limit=10, prefix="\U0010ffff")) == names[:2]


def test_name_range_sql():
    assert name_range_sql(NameRange("m", False, "p", False, 5), allow_reserved=False) == (
        ["name < ?", "name > ?", "name >= ?"], ["p", "m", "\x01"])
    assert name_range_sql(NameRange("m", True, None, True, 5), allow_reserved=True) == (
        ["name >= ?"], ["m"])
    assert name_range_sql(NameRange(None, False, None, False, 5), True) == ([], [])


# ---- records and bodies ------------------------------------------------------------------------

WHEN = Timestamp("1700000000.12345")


def test_extract_swift_bytes_as_swift():
    assert extract_swift_bytes("text/plain") == ("text/plain", None)
    assert extract_swift_bytes("text/plain;swift_bytes=123") == ("text/plain", "123")
    # The other parameters are rewritten without spaces, as Swift does.
    assert extract_swift_bytes("text/plain; charset=utf-8; swift_bytes=9") == (
        "text/plain;charset=utf-8", "9")


def test_object_record_folds_swift_bytes_into_bytes():
    assert object_record("o", WHEN, 0, "application/x;swift_bytes=4096", "e") == {
        "bytes": 4096, "hash": "e", "name": "o", "content_type": "application/x",
        "last_modified": "2023-11-14T22:13:20.123450"}


def sample_container_records():
    return [object_record("a&b<c>\"d'", WHEN, 3, "text/plain", "0cc175b9c0f1b6a831c399e269772661"),
            subdir_record("dir/"),
            object_record("日本", Timestamp("1700000001"), 0, "application/octet-stream",
                          "d41d8cd98f00b204e9800998ecf8427e")]


def test_container_json_exact():
    assert listing_json(sample_container_records()) == (
        b'[{"bytes": 3, "hash": "0cc175b9c0f1b6a831c399e269772661", "name": "a&b<c>\\"d\'", '
        b'"content_type": "text/plain", "last_modified": "2023-11-14T22:13:20.123450"}, '
        b'{"subdir": "dir/"}, '
        b'{"bytes": 0, "hash": "d41d8cd98f00b204e9800998ecf8427e", "name": "\\u65e5\\u672c", '
        b'"content_type": "application/octet-stream", '
        b'"last_modified": "2023-11-14T22:13:21.000000"}]')
    assert listing_json([]) == b"[]"
    assert json.loads(listing_json(sample_container_records()))[2]["name"] == "日本"


def test_container_xml_exact():
    assert container_listing_xml(sample_container_records(), "c&<>\"") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<container name="c&amp;&lt;&gt;&quot;">'
        b"<object><name>a&amp;b&lt;c&gt;\"d'</name>"
        b"<hash>0cc175b9c0f1b6a831c399e269772661</hash><bytes>3</bytes>"
        b"<content_type>text/plain</content_type>"
        b"<last_modified>2023-11-14T22:13:20.123450</last_modified></object>"
        b'<subdir name="dir/"><name>dir/</name></subdir>'
        b"<object><name>\xe6\x97\xa5\xe6\x9c\xac</name>"
        b"<hash>d41d8cd98f00b204e9800998ecf8427e</hash><bytes>0</bytes>"
        b"<content_type>application/octet-stream</content_type>"
        b"<last_modified>2023-11-14T22:13:21.000000</last_modified></object>"
        b"</container>")
    assert container_listing_xml([], "c") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c" />')


def test_plain_exact():
    assert listing_plain(sample_container_records()) == \
        "a&b<c>\"d'\ndir/\n日本\n".encode()
    assert listing_plain([]) == b""


def test_account_bodies_exact():
    records = [container_record("c1", 2, 30, WHEN, "gold"), subdir_record("d/"),
               container_record("ü", 0, 0, Timestamp("1700000001"), None)]
    assert listing_json(records) == (
        b'[{"name": "c1", "count": 2, "bytes": 30, '
        b'"last_modified": "2023-11-14T22:13:20.123450", "storage_policy": "gold"}, '
        b'{"subdir": "d/"}, {"name": "\\u00fc", "count": 0, "bytes": 0, '
        b'"last_modified": "2023-11-14T22:13:21.000000"}]')
    assert account_listing_xml(records, "AUTH_a") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n'
        b"<container><name>c1</name><count>2</count><bytes>30</bytes>"
        b"<last_modified>2023-11-14T22:13:20.123450</last_modified>"
        b"<storage_policy>gold</storage_policy></container>\n"
        b'<subdir name="d/" />\n'
        b"<container><name>\xc3\xbc</name><count>0</count><bytes>0</bytes>"
        b"<last_modified>2023-11-14T22:13:21.000000</last_modified></container>\n"
        b"</account>")
    assert listing_plain(records) == "c1\nd/\nü\n".encode()


def test_listing_body_dispatches_on_type():
    records = [subdir_record("x/")]
    assert listing_body(records, "application/json", "container", "c") == b'[{"subdir": "x/"}]'
    assert listing_body(records, "text/xml", "account", "a").startswith(b"<?xml")
    assert listing_body(records, "text/plain", "container", "c") == b"x/\n"
