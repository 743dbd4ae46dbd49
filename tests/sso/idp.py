"""A real SAML identity provider for the SSO tests: pysaml2's ``saml2.server.Server``.

Served by wsgiref in a thread of the test process on a free port. It speaks the two bindings
the SP uses: an AuthnRequest arrives by HTTP-Redirect, the user signs in on an HTML form
(labels "Username"/"Password", button "Sign in"), and the signed Response leaves by HTTP-POST
through an auto-posting form. Signatures are real (xmlsec1, RSA-SHA256 over SHA-256 digests);
the key and certificate are generated per instance into a temporary folder.

Two instances can run at once (distinct entity ids and keys), one per organisation.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_UNSPECIFIED, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.sso.idp_pages import login_page, post_form
from tests.sso.keys import KeyPair, make_key_pair

__all__ = ["IdpUser", "Issued", "KeyPair", "TestIdp", "make_key_pair", "post_form"]

AUTHN_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
Reply = tuple[str, str, str]  # status, content type, body (for a 302: the Location)


def _first_values(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query).items()}


@dataclass
class IdpUser:
    password: str
    # Every attribute is multi-valued on the wire; single values are one-element lists.
    attributes: dict[str, list[str]]

    @property
    def uid(self) -> str:
        return self.attributes["uid"][0]


@dataclass
class Issued:
    """One response the IdP produced (kept so tests can inspect or replay it)."""

    saml_response: str  # base64, as posted
    xml: bytes
    destination: str
    relay_state: str


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the suite's output stays readable; failures show up in assertions


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


# Keep attribute names exactly as given ("uid", "displayName", "groups"): with an empty map,
# pysaml2's converter emits every key unchanged instead of translating it to an OID.
def _plain_converter() -> AttributeConverter:
    converter = AttributeConverter(NAME_FORMAT_UNSPECIFIED)
    converter._to, converter._fro = {}, {}
    return converter


@dataclass
class TestIdp:
    """A pysaml2 IdP on ``http://127.0.0.1:<port>/<name>``; use as a context manager."""

    name: str
    workdir: Path
    users: dict[str, IdpUser] = field(default_factory=dict)
    sign_response: bool = True
    sign_assertion: bool = True
    issued: list[Issued] = field(default_factory=list)
    logged_out: list[str] = field(default_factory=list)  # NameIDs of LogoutRequests served
    keys: KeyPair = field(init=False)
    base_url: str = field(init=False, default="")
    _sp_metadata: list[str] = field(init=False, default_factory=list)
    _server: Server | None = field(init=False, default=None)
    _pending: dict[str, tuple[Any, str]] = field(init=False, default_factory=dict)
    _httpd: WSGIServer | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    __test__ = False  # not a pytest test class despite the name

    def __post_init__(self) -> None:
        self.keys = make_key_pair(f"{self.name} test IdP")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "idp.key").write_bytes(self.keys.key_pem)
        (self.workdir / "idp.crt").write_bytes(self.keys.cert_pem)

    # -- addresses ------------------------------------------------------------------------
    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/{self.name}/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/{self.name}/sso/redirect"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/{self.name}/slo/redirect"

    @property
    def login_url(self) -> str:
        return f"{self.base_url}/{self.name}/login"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> TestIdp:
        self._httpd = make_server(
            "127.0.0.1", 0, self._wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.base_url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._rebuild()
        # A short poll interval makes stop() quick (wsgiref's default waits up to 0.5 s).
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> TestIdp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- trust ----------------------------------------------------------------------------
    def trust_sp_metadata(self, xml: str, *, replace: bool = False) -> None:
        """Trust one more SP (or only this one), from its metadata document."""
        if replace:
            self._sp_metadata.clear()
        self._sp_metadata.append(xml)
        self._reload_metadata()

    def trust_sp_metadata_url(self, url: str, *, replace: bool = False) -> str:
        """Fetch the SP's metadata from its /metadata/ URL and trust it; returns the XML."""
        reply = requests.get(url, timeout=10)
        reply.raise_for_status()
        self.trust_sp_metadata(reply.text, replace=replace)
        return reply.text

    def forget_sps(self) -> None:
        self._sp_metadata.clear()
        self._reload_metadata()

    def metadata_xml(self) -> str:
        return create_metadata_string(None, config=self._config(), valid=None).decode()

    def _config(self) -> IdPConfig:
        conf: dict[str, Any] = {
            "entityid": self.entity_id,
            "key_file": str(self.workdir / "idp.key"),
            "cert_file": str(self.workdir / "idp.crt"),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "delete_tmpfiles": True,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                        "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
                    },
                    # Without these two pysaml2 signs with RSA-SHA1, which the SP must refuse.
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 5},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_UNSPECIFIED,
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": False,
                }
            },
            "metadata": {"inline": list(self._sp_metadata)},
        }
        config = IdPConfig()
        config.load(conf)
        config.attribute_converters = [_plain_converter(), *config.attribute_converters]
        return config

    def _rebuild(self) -> None:
        with self._lock:
            self._server = Server(config=self._config())

    def _reload_metadata(self) -> None:
        # Cheaper than a new Server (which re-reads and re-validates the RSA key, ~0.1 s):
        # pysaml2 swaps the metadata store in place, for the entity and its security context.
        with self._lock:
            self.server.reload_metadata({"inline": list(self._sp_metadata)})

    @property
    def server(self) -> Server:
        assert self._server is not None, "start() the IdP first"
        return self._server

    # -- users ----------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        *,
        email: str,
        display_name: str,
        groups: Iterable[str] = (),
        uid: str | None = None,
        password: str | None = None,
    ) -> IdpUser:
        user = IdpUser(
            password=password or f"idp-{username}-pw",
            attributes={
                "uid": [uid or username],
                "email": [email],
                "displayName": [display_name],
                "groups": list(groups),
            },
        )
        self.users[username] = user
        return user

    # -- responses ------------------------------------------------------------------------
    def build_response(
        self,
        username: str,
        *,
        in_response_to: str | None,
        sp_entity_id: str,
        acs_url: str,
        relay_state: str = "",
    ) -> Issued:
        """A signed Response for ``username``; ``in_response_to=None`` makes it unsolicited."""
        user = self.users[username]
        identity = {k: list(v) for k, v in user.attributes.items() if v}
        name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, text=user.uid)
        xml = self.server.create_authn_response(
            identity,
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=name_id,
            authn={"class_ref": AUTHN_PASSWORD, "authn_auth": self.entity_id},
            sign_response=self.sign_response,
            sign_assertion=self.sign_assertion,
        )
        raw = str(xml).encode()
        issued = Issued(
            saml_response=base64.b64encode(raw).decode(),
            xml=raw,
            destination=acs_url,
            relay_state=relay_state,
        )
        self.issued.append(issued)
        return issued

    def unsolicited_response(self, username: str, *, sp_entity_id: str, acs_url: str) -> Issued:
        """An IdP-initiated response (no AuthnRequest, no InResponseTo)."""
        return self.build_response(
            username, in_response_to=None, sp_entity_id=sp_entity_id, acs_url=acs_url
        )

    # -- WSGI -----------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        path = environ.get("PATH_INFO", "")
        prefix = f"/{self.name}"
        route = path.removeprefix(prefix) if path.startswith(prefix + "/") else ""
        query = _first_values(environ.get("QUERY_STRING", ""))
        try:
            if route == "/metadata":
                reply = ("200 OK", "application/samlmetadata+xml", self.metadata_xml())
            elif route == "/sso/redirect":
                reply = self._sso(query)
            elif route == "/login" and environ["REQUEST_METHOD"] == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                reply = self._login(_first_values(environ["wsgi.input"].read(length).decode()))
            elif route == "/slo/redirect":
                reply = self._slo(query)
            else:
                reply = ("404 Not Found", TEXT, "not found")
        except Exception as exc:  # the IdP says what broke instead of dropping the connection
            reply = ("400 Bad Request", TEXT, f"IdP error: {exc!r}")
        status, content_type, body = reply
        headers = [("Content-Type", content_type)]
        if status.startswith("302"):
            headers = [("Location", body)]
            body = ""
        start_response(status, headers)
        return iter([body.encode()])

    def _sso(self, query: dict[str, str]) -> Reply:
        request = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        key = secrets.token_urlsafe(16)
        self._pending[key] = (request.message, query.get("RelayState", ""))
        return "200 OK", HTML, login_page(self.login_url, key, "")

    def _login(self, form: dict[str, str]) -> Reply:
        key = form.get("key", "")
        if key not in self._pending:
            return "400 Bad Request", TEXT, "unknown or used login request"
        user = self.users.get(form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            return "200 OK", HTML, login_page(self.login_url, key, "Wrong username or password.")
        message, relay_state = self._pending.pop(key)
        args = self.server.response_args(message, [BINDING_HTTP_POST])
        issued = self.build_response(
            form["username"],
            in_response_to=args["in_response_to"],
            sp_entity_id=args["sp_entity_id"],
            acs_url=args["destination"],
            relay_state=relay_state,
        )
        return "200 OK", HTML, post_form(issued)

    def _slo(self, query: dict[str, str]) -> Reply:
        request = self.server.parse_logout_request(
            query["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=query.get("RelayState")
        )
        self.logged_out.append(request.message.name_id.text)
        reply = self.server.create_logout_response(request.message, [BINDING_HTTP_REDIRECT])
        args = self.server.response_args(request.message, [BINDING_HTTP_REDIRECT])
        http = self.server.apply_binding(
            BINDING_HTTP_REDIRECT, str(reply), args["destination"], query.get("RelayState", ""),
            response=True,
        )  # fmt: skip
        return "302 Found", "", dict(http["headers"])["Location"]
