"""Drive a SAML sign-in without a browser: a requests.Session that follows the HTML forms.

SP confirm form (/accounts/saml/<org>/login/) -> redirect to the IdP -> IdP sign-in form ->
auto-posting form carrying SAMLResponse -> the SP's /acs/ -> /acs/finish/ -> the app. A hook
may replace the SAMLResponse before it is posted (tests/sso/tamper.py builds the variants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag in ("input", "button") and self.forms and values.get("name"):
            if values.get("type") in ("checkbox", "radio") and "checked" not in values:
                return
            self.forms[-1].fields.setdefault(values["name"], values.get("value", ""))


def forms_of(response: requests.Response) -> list[Form]:
    parser = _FormParser()
    parser.feed(response.text)
    for form in parser.forms:
        form.action = urljoin(response.url, form.action or response.url)
    return parser.forms


def form_with(response: requests.Response, name: str) -> Form:
    """The form that has a field ``name`` (raises with the page's start when there is none)."""
    for form in forms_of(response):
        if name in form.fields:
            return form
    raise AssertionError(
        f"no form with {name!r} at {response.url} ({response.status_code}): {response.text[:500]}"
    )


Alter = Callable[[str], str]


@dataclass
class SsoResult:
    acs_response: requests.Response  # the last response after posting to /acs/
    saml_response: str  # what was posted (after the hook)
    original_saml_response: str  # what the IdP produced
    relay_state: str

    @property
    def status(self) -> int:
        return self.acs_response.status_code


class SsoDriver:
    """One browser: a cookie jar talking to the live gateway and the test IdP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- the steps --------------------------------------------------------------------------
    def start(self, org_slug: str, *, next_url: str | None = None) -> requests.Response:
        """Open the SP's confirm page and submit it; returns the IdP's sign-in page."""
        params = {"next": next_url} if next_url else None
        page = self.http.get(
            self.url(f"/accounts/saml/{org_slug}/login/"), params=params, timeout=10
        )
        assert page.status_code == 200, f"confirm page: {page.status_code} {page.text[:300]}"
        confirm = next(f for f in forms_of(page) if f.method == "post")
        idp_page = self.http.post(confirm.action, data=confirm.fields, timeout=10)
        return idp_page

    def idp_sign_in(self, idp_page: requests.Response, username: str, password: str) -> Form:
        """Fill the IdP's form; returns the auto-posting form that carries SAMLResponse."""
        login = form_with(idp_page, "username")
        login.fields.update(username=username, password=password)
        reply = self.http.post(login.action, data=login.fields, timeout=10)
        return form_with(reply, "SAMLResponse")

    def post_acs(self, form: Form, saml_response: str | None = None) -> requests.Response:
        """Post (possibly another) SAMLResponse to the form's ACS and follow the redirects."""
        data = dict(form.fields)
        if saml_response is not None:
            data["SAMLResponse"] = saml_response
        return self._follow_local(
            self.http.post(form.action, data=data, allow_redirects=False, timeout=10)
        )

    def post_raw(
        self, acs_url: str, saml_response: str, relay_state: str = ""
    ) -> requests.Response:
        """What an IdP-initiated post (or an attacker's) looks like: no prior AuthnRequest."""
        data = {"SAMLResponse": saml_response}
        if relay_state:
            data["RelayState"] = relay_state
        return self._follow_local(
            self.http.post(acs_url, data=data, allow_redirects=False, timeout=10)
        )

    def _follow_local(self, reply: requests.Response) -> requests.Response:
        """Follow redirects within the gateway only: a redirect elsewhere (an open redirect)
        is returned as is, for the test to see, instead of being fetched."""
        history: list[requests.Response] = []
        while reply.is_redirect:
            target = urljoin(reply.url, reply.headers["Location"])
            if not target.startswith(self.base_url + "/"):
                break
            history.append(reply)
            reply = self.http.get(target, allow_redirects=False, timeout=10)
        reply.history = history
        return reply

    # -- the whole flow ---------------------------------------------------------------------
    def capture(
        self, org_slug: str, username: str, password: str, *, next_url: str | None = None
    ) -> Form:
        """Run the flow up to the point where the browser would post SAMLResponse."""
        return self.idp_sign_in(self.start(org_slug, next_url=next_url), username, password)

    def sign_in(
        self,
        org_slug: str,
        username: str,
        password: str,
        *,
        alter: Alter | None = None,
        next_url: str | None = None,
    ) -> SsoResult:
        form = self.capture(org_slug, username, password, next_url=next_url)
        original = form.fields["SAMLResponse"]
        posted = alter(original) if alter else original
        reply = self.post_acs(form, posted)
        return SsoResult(reply, posted, original, form.fields.get("RelayState", ""))

    # -- the app ----------------------------------------------------------------------------
    def session_user_pk(self) -> int | None:
        """Whose session this browser holds, read from the server-side session store."""
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import SESSION_KEY

        key = self.http.cookies.get(settings.SESSION_COOKIE_NAME)
        if not key:
            return None
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        value = store.get(SESSION_KEY)
        return int(value) if value is not None else None

    def is_signed_in(self) -> bool:
        """The dashboard answers 200 (not a redirect to the login page)."""
        reply = self.http.get(self.url("/"), allow_redirects=False, timeout=10)
        return reply.status_code == 200

    def logout(self) -> requests.Response:
        token = self.http.cookies.get("csrftoken", "")
        if not token:  # a page with a form sets it
            self.http.get(self.url("/login/"), timeout=10)
            token = self.http.cookies.get("csrftoken", "")
        return self.http.post(
            self.url("/logout/"),
            data={"csrfmiddlewaretoken": token},
            headers={"Referer": self.url("/")},
            timeout=10,
        )
