"""Domain DNS verification against a real authoritative DNS server on 127.0.0.1 (dnslib):
valid, wrong, missing and timed-out records, native and Mailgun shapes, tenant isolation."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver

from api.models import DomainDnsCheck
from api.services.dns_check import parse_nameserver, verify_domain_dns
from mailcore.models import DkimKey, Domain, Mailbox
from mailcore.services.outbound import dkim
from tests.api.conftest import Keys, client_for

pytestmark = pytest.mark.django_db

HOST = "mx.mailroom.test"


def _txt(value: str) -> str:
    """A zone-file TXT value split into quoted strings of at most 255 characters."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


@pytest.fixture
def domains(alice: Mailbox, settings) -> dict[str, Domain]:  # type: ignore[no-untyped-def]
    settings.MAILROOM_HOSTNAME = HOST
    settings.MAILROOM_SPF_MECHANISMS = [f"a:{HOST}", "ip4:192.0.2.10"]
    settings.MAILROOM_DNS_TIMEOUT = 0.5
    made = {"right": alice.domain}
    for label in ("wrong", "missing"):
        made[label] = Domain.objects.create(
            organization_id=alice.organization_id, name=f"{label}.test"
        )
    for domain in made.values():
        dkim.create_key(domain, "s1")
    return made


@pytest.fixture
def dns_server(domains: dict[str, Domain], settings) -> Iterator[DNSServer]:  # type: ignore[no-untyped-def]
    right_key = DkimKey.objects.get(domain=domains["right"], is_active=True)
    _, other_public = dkim.generate_key_pair()
    zone = f"""
example.test. 60 IN MX 20 backup.elsewhere.test.
example.test. 60 IN MX 10 {HOST}.
example.test. 60 IN TXT "google-site-verification=abc"
example.test. 60 IN TXT "v=spf1 ip4:192.0.2.10 +a:{HOST} -all"
s1._domainkey.example.test. 60 IN TXT {_txt(dkim.dns_record_value(right_key))}
_dmarc.example.test. 60 IN TXT "v=DMARC1; p=reject"
wrong.test. 60 IN MX 10 mx.other-provider.test.
wrong.test. 60 IN TXT "v=spf1 include:other-provider.test ~all"
s1._domainkey.wrong.test. 60 IN TXT {_txt(f"v=DKIM1; k=rsa; p={other_public}")}
_dmarc.wrong.test. 60 IN TXT "v=DMARC1; p=none"
_dmarc.wrong.test. 60 IN TXT "v=DMARC1; p=reject"
"""
    server = DNSServer(
        ZoneResolver(zone),
        port=0,
        address="127.0.0.1",
        logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"),
    )
    server.start_thread()
    settings.MAILROOM_DNS_NAMESERVERS = [f"127.0.0.1:{server.server.server_address[1]}"]
    yield server
    server.stop()
    server.server.server_close()


PURPOSES = ("receiving", "spf", "dmarc", "dkim")


def _by_purpose(check: DomainDnsCheck) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["purpose"]: r for r in check.results}


def _all(status: str) -> dict[str, str]:
    return dict.fromkeys(PURPOSES, status)


def test_right_records_are_valid(dns_server: DNSServer, domains: dict[str, Domain]) -> None:
    check = verify_domain_dns(domains["right"])
    results = _by_purpose(check)
    assert {p: r["status"] for p, r in results.items()} == _all("valid")
    assert sorted(results["receiving"]["found"]) == [
        f"10 {HOST}.",
        "20 backup.elsewhere.test.",
    ]
    assert results["spf"]["found"] == [f"v=spf1 ip4:192.0.2.10 +a:{HOST} -all"]
    assert results["spf"]["value"] == f"v=spf1 a:{HOST} ip4:192.0.2.10 ~all"
    key = DkimKey.objects.get(domain=domains["right"], is_active=True)
    assert results["dkim"]["found"] == [dkim.dns_record_value(key)]  # joined from 2 strings
    assert check.is_verified is True


def test_wrong_records_are_invalid_and_say_what_was_found(
    dns_server: DNSServer, domains: dict[str, Domain]
) -> None:
    check = verify_domain_dns(domains["wrong"])
    results = _by_purpose(check)
    assert {p: r["status"] for p, r in results.items()} == _all("invalid")
    assert results["receiving"]["found"] == ["10 mx.other-provider.test."]
    assert results["receiving"]["detail"] == f"No MX record points at {HOST}."
    assert results["spf"]["detail"] == (
        f"The SPF record does not include a:{HOST}, ip4:192.0.2.10."
    )
    assert results["dkim"]["detail"].startswith("The DKIM record does not hold the active key")
    assert len(results["dmarc"]["found"]) == 2
    assert check.is_verified is False


def test_missing_records_are_missing(dns_server: DNSServer, domains: dict[str, Domain]) -> None:
    check = verify_domain_dns(domains["missing"])
    assert {r["purpose"]: r["status"] for r in check.results} == _all("missing")
    assert [r["found"] for r in check.results] == [[], [], [], []]
    assert check.is_verified is False


def test_a_dns_timeout_is_unknown_not_an_error(
    domains: dict[str, Domain], keys: Keys, settings
) -> None:  # type: ignore[no-untyped-def]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # receives, never answers
        silent.bind(("127.0.0.1", 0))
        settings.MAILROOM_DNS_NAMESERVERS = [f"127.0.0.1:{silent.getsockname()[1]}"]
        settings.MAILROOM_DNS_TIMEOUT = 0.2
        response = client_for(keys.full, basic=True).put("/v3/domains/example.test/verify")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["domain"]["state"] == "unverified"
    records = body["sending_dns_records"] + body["receiving_dns_records"]
    assert {r["valid"] for r in records} == {"unknown"}
    statuses = {r["status"] for r in DomainDnsCheck.objects.get().results}
    assert statuses == {"unknown"}


def test_native_verify_stores_and_shows_the_results(
    dns_server: DNSServer, domains: dict[str, Domain], keys: Keys
) -> None:
    client = client_for(keys.full)
    before = client.get("/api/v1/domains/example.test/").json()
    assert before["state"] == "ready"
    assert before["dns_checked_at"] is None
    assert {r["status"] for r in before["dns_records"]} == {"unchecked"}
    response = client.post("/api/v1/domains/example.test/verify/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "verified"
    assert body["dns_checked_at"] is not None
    assert {r["purpose"]: r["status"] for r in body["dns_records"]} == _all("valid")
    assert client.get("/api/v1/domains/example.test/").json() == body
    # Rotating the key: the new record has not been checked, so the domain is no longer
    # verified, and the retired key's record is listed, unchecked.
    dkim.create_key(domains["right"], "s2")
    after = client.get("/api/v1/domains/example.test/").json()
    assert after["state"] == "ready"
    assert [
        (r["purpose"], r["status"]) for r in after["dns_records"] if "dkim" in r["purpose"]
    ] == [
        ("dkim", "unchecked"),
        ("dkim-retired", "unchecked"),
    ]


def test_mailgun_domain_shape(
    dns_server: DNSServer, domains: dict[str, Domain], keys: Keys
) -> None:
    client = client_for(keys.full, basic=True)
    unchecked = client.get("/v3/domains/wrong.test").json()
    assert unchecked["domain"]["state"] == "unverified"
    assert {r["valid"] for r in unchecked["sending_dns_records"]} == {"unknown"}
    response = client.put("/v3/domains/wrong.test/verify")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Domain DNS records have been updated"
    assert body["domain"]["name"] == "wrong.test"
    assert body["receiving_dns_records"] == [
        {
            "record_type": "MX",
            "name": "wrong.test",
            "priority": "10",
            "value": HOST,
            "valid": "invalid",
            "cached": ["10 mx.other-provider.test."],
        }
    ]
    spf = body["sending_dns_records"][0]
    assert (spf["record_type"], spf["name"], spf["valid"]) == ("TXT", "wrong.test", "invalid")
    assert spf["cached"] == ["v=spf1 include:other-provider.test ~all"]
    missing = client.put("/v3/domains/missing.test/verify").json()
    assert {r["valid"] for r in missing["sending_dns_records"]} == {"invalid"}
    assert missing["sending_dns_records"][0]["cached"] == []
    right = client.put("/v3/domains/example.test/verify").json()
    assert right["domain"]["state"] == "active"
    assert {r["valid"] for r in right["sending_dns_records"]} == {"valid"}
    assert client.get("/v3/domains/example.test").json()["domain"]["state"] == "active"


def test_verify_is_tenant_scoped(
    dns_server: DNSServer, domains: dict[str, Domain], keys: Keys
) -> None:
    other = client_for(keys.other)
    assert other.post("/api/v1/domains/example.test/verify/").status_code == 404
    assert (
        client_for(keys.other, basic=True).put("/v3/domains/example.test/verify").status_code == 404
    )
    assert client_for(keys.none).post("/api/v1/domains/example.test/verify/").status_code == 403
    assert client_for(None).put("/v3/domains/example.test/verify").status_code == 401
    assert not DomainDnsCheck.objects.exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 53)),
        ("192.0.2.1:5353", ("192.0.2.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5300", ("::1", 5300)),
    ],
)
def test_parse_nameserver(value: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(value) == expected


def test_admin_action_checks_the_selected_domains(
    dns_server: DNSServer, domains: dict[str, Domain], client
) -> None:  # type: ignore[no-untyped-def]
    from mailcore.models import User

    User.objects.create_superuser("root@example.test", "root@example.test", "pw-123456789")
    client.force_login(User.objects.get(username="root@example.test"))
    response = client.post(
        "/admin/mailcore/domain/",
        {
            "action": "check_dns",
            "_selected_action": [domains["right"].pk, domains["missing"].pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "2 domain(s) checked, 1 verified." in [str(m) for m in response.context["messages"]]
    assert dict(DomainDnsCheck.objects.values_list("domain__name", "is_verified")) == {
        "example.test": True,
        "missing.test": False,
    }
    listing = client.get("/admin/api/domaindnscheck/")
    assert listing.status_code == 200
    assert "missing.test" in listing.content.decode()


def test_the_daily_task_checks_every_active_domain(
    dns_server: DNSServer, domains: dict[str, Domain]
) -> None:
    from api.tasks import check_domains_dns

    Domain.objects.filter(pk=domains["wrong"].pk).update(is_active=False)
    assert check_domains_dns() == 2
    assert sorted(DomainDnsCheck.objects.values_list("domain__name", flat=True)) == [
        "example.test",
        "missing.test",
    ]
