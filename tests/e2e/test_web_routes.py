"""The page's routes over plain HTTP (no browser): what is served, with which headers, and that
the API document stays about the API."""

import httpx
import pytest


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # The server's limits are filled in; nothing points outside the host.
    assert 'data-max-image-bytes="5242880"' in page.text
    assert "{{" not in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript"),
        ("strings.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_static_files_have_their_media_type(
    client: httpx.Client, name: str, media_type: str
) -> None:
    answer = client.get(f"/static/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    assert "content-security-policy" in answer.headers


@pytest.mark.parametrize("name", ["index.html", "..%2Fmain.py", "%2e%2e%2fmain.py", "nope.js"])
def test_nothing_else_is_served_from_static(client: httpx.Client, name: str) -> None:
    answer = client.get(f"/static/{name}")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_the_page_stays_out_of_the_api_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/static") for path in paths)
