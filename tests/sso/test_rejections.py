"""Responses the SP must refuse: each starts as a real response of the acme IdP to a real
AuthnRequest of this browser, with one thing changed (and re-signed with the IdP's own key
where the case needs a valid signature, so that only the change is under test).

None may sign anyone in, create an account, or answer 5xx.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable

import pytest
from lxml import etree

from tests.sso import tamper
from tests.sso.conftest import SsoWorld
from tests.sso.keys import make_key_pair
from tests.sso.support import Snapshot, assert_refused, sso_user

pytestmark = pytest.mark.django_db(transaction=True)

Change = Callable[[etree._Element, SsoWorld], object]  # the result is ignored
EVIL_KEYS = make_key_pair("attacker")  # its certificate travels in KeyInfo


def _resigned(change: Change) -> Change:
    def apply(root: etree._Element, world: SsoWorld) -> None:
        change(root, world)
        tamper.resign(root, world.acme.idp.keys)

    return apply


def _drop(xpath: str) -> Change:
    def apply(root: etree._Element, world: SsoWorld) -> None:
        for node in root.xpath(xpath, namespaces=tamper.NS):
            node.getparent().remove(node)

    return apply


def _set(xpath: str, attribute: str | None, value: Callable[[SsoWorld], str | None]) -> Change:
    def apply(root: etree._Element, world: SsoWorld) -> None:
        nodes = root.xpath(xpath, namespaces=tamper.NS)
        assert nodes, xpath
        for node in nodes:
            new = value(world)
            if attribute is None:
                node.text = new
            elif new is None:
                del node.attrib[attribute]
            else:
                node.set(attribute, new)

    return apply


def _in_seconds(seconds: int) -> str:
    instant = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _foreign_idp(root: etree._Element, world: SsoWorld) -> None:
    """Genuinely signed by another tenant's IdP (globex), posted to acme's ACS."""
    tamper.set_issuer(root, world.globex.idp.entity_id)
    tamper.resign(root, world.globex.idp.keys)


def _other_key(root: etree._Element, world: SsoWorld) -> None:
    tamper.resign(root, EVIL_KEYS)


def _sha1(root: etree._Element, world: SsoWorld) -> None:
    tamper.resign(root, world.acme.idp.keys, algorithm=tamper.RSA_SHA1)


CASES: dict[str, Change] = {
    "unsigned": lambda root, world: tamper.strip_signatures(root),
    "response-signed-assertion-not": lambda root, world: tamper.resign(
        root, world.acme.idp.keys, assertion_signed=False
    ),
    "attribute-edited-after-signing": lambda root, world: tamper.set_attribute(
        root, "groups", ["acme-admins"]
    ),
    "subject-edited-after-signing": lambda root, world: tamper.set_subject(root, "ben"),
    "signed-with-another-key": _other_key,
    "signed-by-another-tenants-idp": _foreign_idp,
    "rsa-sha1": _sha1,
    "xsw-extra-unsigned-assertion": lambda root, world: tamper.wrap_extra_assertion(root, "ben"),
    "xsw-signed-assertion-in-extensions": lambda root, world: tamper.wrap_in_extensions(
        root, "ben"
    ),
    "xsw-original-inside-ds-object": lambda root, world: tamper.wrap_in_object(root, "ben"),
    "wrong-audience": _resigned(_set("//saml:Audience", None, lambda w: w.globex.sp_entity_id)),
    "missing-audience": _resigned(_drop("//saml:AudienceRestriction")),
    "expired": _resigned(lambda root, world: tamper.shift_times(root, -900)),
    "not-yet-valid": _resigned(lambda root, world: tamper.shift_times(root, +900)),
    "wrong-destination": _resigned(
        _set("/samlp:Response", "Destination", lambda w: w.globex.acs_url)
    ),
    "missing-destination": _resigned(_set("/samlp:Response", "Destination", lambda w: None)),
    "wrong-recipient": _resigned(
        _set("//saml:SubjectConfirmationData", "Recipient", lambda w: w.globex.acs_url)
    ),
    "missing-subject-confirmation-expiry": _resigned(
        _set("//saml:SubjectConfirmationData", "NotOnOrAfter", lambda w: None)
    ),
    # Valid for two days: longer than the SP remembers assertion ids, so replayable later.
    "valid-for-too-long": _resigned(
        _set("//*[@NotOnOrAfter]", "NotOnOrAfter", lambda w: _in_seconds(2 * 86400))
    ),
    "wrong-issuer": _resigned(
        lambda root, world: tamper.set_issuer(root, "http://evil.example/idp")
    ),
    "unknown-in-response-to": _resigned(
        lambda root, world: tamper.set_in_response_to(root, tamper.new_id())
    ),
}


# Why each case must fail, as a pattern over the refusal's audit entry (code, reason,
# message): a case refused for another reason would not test what it names.
WHY = {
    "unsigned": r"not signed",
    "response-signed-assertion-not": r"not signed",
    "attribute-edited-after-signing": r"signature",
    "subject-edited-after-signing": r"signature",
    "signed-with-another-key": r"signature",
    "signed-by-another-tenants-idp": r"issuer|signature",
    "rsa-sha1": r"deprecated|sha1|algorithm",
    "xsw-extra-unsigned-assertion": r"assertion|signature",
    "xsw-signed-assertion-in-extensions": r"assertion|signature",
    "xsw-original-inside-ds-object": r"assertion|signature",
    "wrong-audience": r"audience",
    "missing-audience": r"audience",
    "expired": r"expired|time",
    "not-yet-valid": r"not yet valid|time",
    "wrong-destination": r"destination|received at",
    "missing-destination": r"destination",
    "wrong-recipient": r"subjectconfirmation|subject_confirmation|recipient",
    "missing-subject-confirmation-expiry": r"expiry|subject_?confirmation",
    "valid-for-too-long": r"too long|validity",
    "wrong-issuer": r"issuer",
    "unknown-in-response-to": r"in_?response_?to|started in this browser",
}


@pytest.mark.parametrize("name", list(CASES))
def test_it_refuses_an_altered_response(sso: SsoWorld, name: str) -> None:
    before = Snapshot()
    driver = sso.driver()
    form = driver.capture(sso.acme.slug, "ann", sso.acme.password("ann"))
    root = tamper.decode(form.fields["SAMLResponse"])
    CASES[name](root, sso)
    reply = driver.post_acs(form, tamper.encode(root))
    assert_refused(driver, reply, before, why=WHY[name])


@pytest.mark.parametrize("resign", [False, True], ids=["untouched", "re-signed"])
def test_the_tamper_helper_itself_keeps_a_valid_response_valid(sso: SsoWorld, resign: bool) -> None:
    """The control for every case above: without a change, both pass."""

    def alter(saml_response: str) -> str:
        root = tamper.decode(saml_response)
        if resign:
            tamper.resign(root, sso.acme.idp.keys)
        return tamper.encode(root)

    driver, result = sso.sign_in(sso.acme, "ann", alter=alter)
    assert result.status == 200 and result.acs_response.url == sso.gateway.base_url + "/"
    assert driver.session_user_pk() is not None


def test_a_comment_inside_a_signed_value_does_not_shorten_it(sso: SsoWorld) -> None:
    """Comments are outside exclusive c14n, so inserting one keeps the signature valid; an SP
    that reads only the text before it would take "ben.x" for "ben" (CVE-2017-11427 class)."""
    sso.sign_in(sso.acme, "ben")
    ben = sso_user(sso.acme.idp.entity_id, "ben")
    sso.acme.idp.add_user("benx", uid="ben.x", email="benx@acme.test", display_name="Ben X",
                          groups=["acme-staff"])  # fmt: skip
    driver = sso.driver()
    form = driver.capture(sso.acme.slug, "benx", sso.acme.password("benx"))
    root = tamper.decode(form.fields["SAMLResponse"])
    values = root.xpath("//saml:NameID | //saml:Attribute[@Name='uid']/saml:AttributeValue",
                        namespaces=tamper.NS)  # fmt: skip
    for node in values:
        assert node.text == "ben.x"
        node.text = "ben"
        comment = etree.Comment("")
        comment.tail = ".x"
        node.append(comment)
    reply = driver.post_acs(form, tamper.encode(root))
    assert reply.status_code < 500
    assert driver.session_user_pk() != ben.pk
    benx = sso_user(sso.acme.idp.entity_id, "ben.x")
    assert driver.session_user_pk() in (None, benx.pk if benx else None)


def test_a_genuine_response_of_one_organisation_is_refused_at_anothers_acs(sso: SsoWorld) -> None:
    before = Snapshot()
    driver = sso.driver()
    acme_form = driver.capture(sso.acme.slug, "ann", sso.acme.password("ann"))
    driver.start(sso.globex.slug)  # a globex sign-in is pending in this browser too
    reply = driver.post_raw(sso.globex.acs_url, acme_form.fields["SAMLResponse"])
    assert_refused(driver, reply, before)


# -- replay and session binding ---------------------------------------------------------------
def test_a_response_replayed_in_the_same_session_after_logout_is_refused(sso: SsoWorld) -> None:
    driver, result = sso.sign_in(sso.acme, "ann")
    assert result.status == 200
    driver.logout()
    before = Snapshot()
    reply = driver.post_raw(sso.acme.acs_url, result.saml_response, result.relay_state)
    assert_refused(driver, reply, before)


def test_a_response_replayed_in_a_fresh_session_is_refused(sso: SsoWorld) -> None:
    _, result = sso.sign_in(sso.acme, "ann")
    assert result.status == 200
    before = Snapshot()
    thief = sso.driver()
    reply = thief.post_raw(sso.acme.acs_url, result.saml_response, result.relay_state)
    assert_refused(thief, reply, before)


def test_a_response_meant_for_another_browser_session_is_refused(sso: SsoWorld) -> None:
    before = Snapshot()
    victim = sso.driver()
    victim_form = victim.capture(sso.acme.slug, "ann", sso.acme.password("ann"))
    attacker = sso.driver()
    attacker.start(sso.acme.slug)  # the attacker's own pending AuthnRequest
    reply = attacker.post_acs(victim_form)
    assert_refused(attacker, reply, before)


def test_an_idp_initiated_response_is_refused_when_not_enabled(sso: SsoWorld) -> None:
    before = Snapshot()
    issued = sso.acme.idp.unsolicited_response(
        "ann", sp_entity_id=sso.acme.sp_entity_id, acs_url=sso.acme.acs_url
    )
    driver = sso.driver()
    reply = driver.post_raw(sso.acme.acs_url, issued.saml_response)
    assert_refused(driver, reply, before)


def test_an_enabled_idp_initiated_response_signs_in_once_and_never_again(sso: SsoWorld) -> None:
    from tests.sso.conftest import configure_tenant

    # Updates acme's IdP in place; the fixture's mapping rules stay.
    configure_tenant(sso.acme.org, sso.acme.idp, [], allow_idp_initiated=True)
    issued = sso.acme.idp.unsolicited_response(
        "ann", sp_entity_id=sso.acme.sp_entity_id, acs_url=sso.acme.acs_url
    )
    first = sso.driver()
    reply = first.post_raw(sso.acme.acs_url, issued.saml_response)
    assert reply.status_code == 200 and first.session_user_pk() is not None, reply.url
    # Without an AuthnRequest there is no InResponseTo to consume: the SP must remember
    # assertion ids itself, or a captured response signs in again and again.
    before = Snapshot()
    second = sso.driver()
    replay = second.post_raw(sso.acme.acs_url, issued.saml_response)
    assert_refused(second, replay, before)


# -- malformed input --------------------------------------------------------------------------
def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + ']><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;</samlp:Response>'
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0">'
    "&xxe;</samlp:Response>"
)
MALFORMED: dict[str, Callable[[str], str]] = {
    "not-base64": lambda genuine: "%%% this is not base64 %%%",
    "malformed-xml": lambda genuine: _b64("<samlp:Response xmlns:samlp='urn:x'><unclosed>"),
    "not-xml-at-all": lambda genuine: _b64("hello, world"),
    "dtd-xxe": lambda genuine: _b64(XXE),
    "dtd-billion-laughs": lambda genuine: _b64(LAUGHS),
    "truncated-genuine-response": lambda genuine: base64.b64encode(
        base64.b64decode(genuine)[: len(base64.b64decode(genuine)) // 2]
    ).decode(),
    "empty": lambda genuine: "",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_is_a_400_page_not_a_500(sso: SsoWorld, name: str) -> None:
    before = Snapshot()
    driver = sso.driver()
    form = driver.capture(sso.acme.slug, "ann", sso.acme.password("ann"))
    reply = driver.post_acs(form, MALFORMED[name](form.fields["SAMLResponse"]))
    trail = " -> ".join(f"{r.status_code} {r.url}" for r in [*reply.history, reply])
    assert reply.status_code == 400, f"{trail}\n{reply.text[:500]}"
    assert "Traceback" not in reply.text and "/etc/passwd" not in reply.text
    assert "root:" not in reply.text
    assert driver.session_user_pk() is None and before.unchanged()
    assert sso_user(sso.acme.idp.entity_id, "ann") is None
