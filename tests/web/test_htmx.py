"""Page or fragment (design.md §3): one helper decides, and every answer says Vary: HX-Request."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jinja2_fragments.litestar import HTMXBlockTemplate

from app.web.htmx import page, wants_fragment
from tests.helpers import HX, JENNY, without_html


def _request(htmx) -> SimpleNamespace:
    return SimpleNamespace(htmx=htmx)


@pytest.mark.parametrize(
    ("htmx", "fragment"),
    [
        (None, False),
        (False, False),
        (SimpleNamespace(boosted=False, history_restore_request=False), True),
        (SimpleNamespace(boosted=True, history_restore_request=False), False),
        (SimpleNamespace(boosted=False, history_restore_request=True), False),
    ],
)
def test_wants_fragment(htmx, fragment):
    assert wants_fragment(_request(htmx)) is fragment  # type: ignore[arg-type]


def test_a_request_without_htmx_details():
    assert wants_fragment(SimpleNamespace()) is False  # type: ignore[arg-type]


async def test_full_page_or_fragment(portal):
    cases = [
        ({}, False),
        (HX, True),
        ({**HX, "HX-Boosted": "true"}, False),
        ({**HX, "HX-History-Restore-Request": "true"}, False),
    ]
    for headers, fragment in cases:
        response = await portal.client.get(portal.login_path, headers=headers)
        assert response.status_code == 200
        assert response.headers["vary"] == "HX-Request"
        if fragment:
            assert without_html(response.text), headers
            assert '<section id="login-panel"' in response.text
        else:
            assert response.text.lstrip().lower().startswith("<!doctype html>"), headers


async def test_after_a_post_303_or_hx_redirect(portal):
    response = await portal.request_code(JENNY)
    assert response.status_code == 303  # not Litestar's default 302
    assert response.headers["vary"] == "HX-Request"
    assert response.content == b""

    await portal.sign_in(JENNY)
    token = await portal.csrf()
    response = await portal.client.post("/portal/sign-out", data={"_csrf_token": token}, headers=HX)
    assert response.status_code == 200
    assert response.headers["hx-redirect"].startswith(portal.login_path)
    assert response.headers["vary"] == "HX-Request"


async def test_every_page_can_be_loaded_directly(portal):
    """A URL htmx pushes into the address bar (HX-Push-Url) answers with a whole page."""
    response = await portal.request_code(JENNY, htmx=True)
    pushed = response.headers["hx-push-url"]
    page = await portal.client.get(pushed)
    assert page.status_code == 200
    assert "<html" in page.text
    assert 'id="login-panel"' in page.text


async def test_the_htmx_setup_on_every_page(portal):
    page = (await portal.client.get(portal.login_path)).text
    assert '"allowEval":false' in page
    assert '"allowScriptTags":false' in page
    assert '"historyCacheSize":0' in page
    assert '{"code":"422","swap":true}' in page  # re-rendered forms are swapped in
    assert 'hx-headers=\'{"x-csrftoken": ' in page  # formless requests carry the token


HTMX_REQUEST = SimpleNamespace(boosted=False, history_restore_request=False)


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(200, True), (201, True), (422, True), (429, True), (400, False), (403, False),
     (404, False), (409, False), (500, False), (502, False), (503, False)],
)  # fmt: skip
def test_page_is_a_fragment_only_for_statuses_htmx_swaps_into_the_target(status, fragment):
    """htmx-config swaps 2xx, 422 and 429 into the target; any other status replaces <body>, so
    it must come as the whole page."""
    answer = page(_request(HTMX_REQUEST), "t.html", fragment="main_content", status=status)  # type: ignore[arg-type]
    assert isinstance(answer, HTMXBlockTemplate) is fragment
    assert answer.status_code == status
    assert answer.context["as_fragment"] is fragment
    assert answer.headers["Vary"] == "HX-Request"
    plain = page(_request(None), "t.html", fragment="main_content", status=status)  # type: ignore[arg-type]
    assert not isinstance(plain, HTMXBlockTemplate)
    assert plain.context["as_fragment"] is False
