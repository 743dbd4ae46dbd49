"""The HTML the test IdP serves: its sign-in form and the auto-posting form (HTTP-POST
binding) that carries SAMLResponse to the SP."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.sso.idp import Issued


# Both pages declare an empty icon: otherwise Chromium fetches /favicon.ico, gets a 404, and
# the browser test's "no console errors" check fails for the IdP's sake.
def login_page(action: str, key: str, error: str) -> str:
    error_html = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title>
<link rel="icon" href="data:,"></head>
<body><h1>Test IdP</h1>{error_html}
<form method="post" action="{html.escape(action)}">
<input type="hidden" name="key" value="{html.escape(key)}">
<label for="username">Username</label> <input id="username" name="username" autocomplete="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit">Sign in</button>
</form></body></html>"""


def post_form(issued: Issued) -> str:
    """The auto-posting page that carries SAMLResponse to the SP's ACS (HTTP-POST binding)."""
    fields = {"SAMLResponse": issued.saml_response}
    if issued.relay_state:
        fields["RelayState"] = issued.relay_state
    inputs = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue</title>
<link rel="icon" href="data:,"></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{html.escape(issued.destination)}">{inputs}
<noscript><button type="submit">Continue</button></noscript></form></body></html>"""
