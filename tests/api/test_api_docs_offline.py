"""The API docs pages load every script, stylesheet and icon from the gateway itself: a site with
no internet still gets working docs, as it gets a working web page."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

# A scheme-relative or absolute URL: '//cdn.example.org/...', 'https://...'.
OUTSIDE_HOST = re.compile(r"//[\w-]+(?:\.[\w-]+)+")


class _AssetLinks(HTMLParser):
    """Every ``src`` and ``href`` of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, _tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def asset_links(page: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(page)
    return parser.links


def test_api_docs_page_loads_assets_from_the_gateway_only(client):
    page = client.get("/docs")
    assert page.status_code == 200
    links = asset_links(page.text)
    assert any(link.endswith(".js") for link in links), links
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme, link
        assert not parts.netloc, link
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert asset.content, link


def test_api_docs_page_names_no_outside_host_anywhere(client):
    """Its inline script names URLs too (the OpenAPI document), outside any src or href."""
    assert OUTSIDE_HOST.findall(client.get("/docs").text) == []


def test_redoc_is_not_served(client):
    """ReDoc's bundle fetches its logo from a CDN even when served locally; /docs is the docs."""
    assert client.get("/redoc").status_code == 404
