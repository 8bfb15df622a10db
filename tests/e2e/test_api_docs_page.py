"""The API docs (Swagger UI at ``/docs``) in a real browser cut off from the internet, as on an
offline site: every request that leaves the gateway is refused, and the docs render all the same."""

from playwright.sync_api import Page, Route, expect

from ..conftest import Stack


def test_api_docs_render_with_no_internet(page: Page, stack: Stack) -> None:
    outside: list[str] = []

    def refuse_outside(route: Route) -> None:
        if route.request.url.startswith(stack.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", refuse_outside)
    answer = page.goto(f"{stack.url}/docs")
    assert answer is not None
    assert answer.ok
    expect(page.get_by_text("Anonymize one image").filter(visible=True).first).to_be_visible()
    assert outside == []
