"""The guarded URL fetcher (``io.safe_http``) against real servers on loopback addresses: the
address checks (DNS rebinding, IPv6 forms of IPv4 addresses, the URL's form) and the fetch
(redirects, the byte limit, refusals that say why). The hostile URLs a job can send, through
whole jobs, are tests/io/test_hostile_urls.py's.

Two stand-ins, as in tests/io/test_hostile_urls.py, because neither can run inside a test:

- a *public* web server: the loopback address 127.0.0.3, and only it, counts as public
  for the address check (``safe_http.is_public`` patched; every other address still goes
  through the real check);
- an attacker's DNS server: ``socket.getaddrinfo`` answers names under ``.test`` from a
  table (a list of answers is used one lookup after another, the last one repeating).
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from higgs_worker.io import safe_http
from higgs_worker.io.safe_http import MAX_REDIRECTS, FetchRefused, check_address, fetch, is_public
from tests.conftest import PUBLIC_STANDIN, wav_bytes
from tests.support.hostile_servers import HostileServer, endless_body, redirect, route, serve

PRIVATE = "127.0.0.2"


def closed_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def outcome(url: str) -> str:
    try:
        fetch(url, max_bytes=10**6, timeout=5, allow_private=False)
    except FetchRefused as exc:
        return str(exc)
    return "fetched"


# -- finding 7: DNS rebinding ------------------------------------------------------------------


def test_a_rebound_name_is_fetched_from_the_address_that_was_checked(public_standin, fake_dns):
    """``rebind.test`` answers the "public" 127.0.0.3 first and the private 127.0.0.2 after;
    both serve on the same port. The connection goes to the address that was checked."""
    table, lookups = fake_dns
    clip = wav_bytes(0.5)
    with (
        HostileServer(serve(b"private data"), host=PRIVATE) as private,
        HostileServer(serve(clip), host=PUBLIC_STANDIN, port=private.port) as public,
    ):
        table["rebind.test"] = [[PUBLIC_STANDIN], [PRIVATE]]
        body = fetch(f"http://rebind.test:{private.port}/ref.wav", 10**6, 5, allow_private=False)
    assert body == clip
    assert lookups == ["rebind.test"], "one lookup a hop: its answer is the one connected to"
    assert len(public.requests) == 1 and private.requests == []


def test_rebinding_cannot_tell_an_open_private_port_from_a_closed_one(public_standin, fake_dns):
    """The probe's oracle: after a "public" first answer, a private address with a listening
    port said "points to a private address" and a closed one "could not be fetched". Now
    the connection goes to the checked address (nothing listens there on either port), so
    both answers are the same."""
    table, _ = fake_dns
    with HostileServer(serve(b"private data"), host=PRIVATE) as private:
        answers = {}
        for case, port in (("open", private.port), ("closed", closed_port(PRIVATE))):
            table[f"{case}.test"] = [[PUBLIC_STANDIN], [PRIVATE]]
            answers[case] = outcome(f"http://{case}.test:{port}/ref.wav")
    assert answers["open"] == answers["closed"], answers
    assert answers["open"].startswith("could not be fetched") and private.requests == []


def test_a_private_peer_reads_like_a_refused_connection(fake_dns, monkeypatch):
    """The check at the connected socket (behind the one at resolution): when it refuses a
    peer, the message is the one of a port where nothing listens."""
    table, _ = fake_dns
    checked_once = iter([True])
    monkeypatch.setattr(safe_http, "is_public", lambda address: next(checked_once, False))
    with HostileServer(serve(b"private data"), host=PRIVATE) as private:
        table["late.test"] = [[PRIVATE]]
        at_the_socket = outcome(f"http://late.test:{private.port}/ref.wav")
    assert private.requests == []
    monkeypatch.setattr(safe_http, "is_public", lambda address: True)
    nothing_listens = outcome(f"http://{PRIVATE}:{closed_port(PRIVATE)}/ref.wav")
    assert at_the_socket == nothing_listens, (at_the_socket, nothing_listens)


# -- finding 8: IPv6 forms that embed an IPv4 address --------------------------------------------

EMBEDDING_PRIVATE = [
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::ffff:0:7f00:1",  # SIIT IPv4-translated 127.0.0.1
    "::ffff:7f00:1",  # IPv4-mapped 127.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE)
def test_ipv6_forms_of_private_ipv4_addresses_are_not_public(address):
    assert not is_public(address)
    with pytest.raises(FetchRefused, match="private"):
        check_address(f"http://[{address}]/ref.wav", allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111", "8.8.8.8"])
def test_ipv6_forms_of_public_addresses_stay_public(address):
    assert is_public(address), ipaddress.ip_address(address)


# -- the fetch itself ---------------------------------------------------------------------------


def test_a_public_url_is_fetched_through_redirects_up_to_the_limit(public_standin):
    clip = wav_bytes(0.5)
    hops = {"/ref.wav": serve(clip)}
    for n in range(MAX_REDIRECTS + 1):  # /r0 -> /r1 -> ... -> /ref.wav
        hops[f"/r{n}"] = redirect(f"/r{n + 1}" if n < MAX_REDIRECTS else "/ref.wav", 302)
    with HostileServer(route(hops), host=PUBLIC_STANDIN) as public:
        assert fetch(f"{public.url}/r1", 10**6, 5, allow_private=False) == clip  # 3 redirects: allowed
        assert outcome(f"{public.url}/r0") == f"redirected more than {MAX_REDIRECTS} times"


def test_a_body_over_the_limit_is_refused_as_too_large_declared_or_not(public_standin):
    for framing in ("declared", "chunked"):
        with HostileServer(endless_body(framing), host=PUBLIC_STANDIN) as public:
            with pytest.raises(FetchRefused) as refused:
                fetch(f"{public.url}/ref.wav", 50_000, 5, allow_private=False)
        assert refused.value.too_large and str(refused.value) == "larger than 50000 bytes", framing


def test_other_refusals_are_not_too_large_and_say_why(public_standin):
    def not_found(conn) -> None:
        conn.head("404 Not Found", {"Content-Length": "4", "Connection": "close"})
        conn.send(b"RIFF", body=True)

    with HostileServer(not_found, host=PUBLIC_STANDIN) as public:
        with pytest.raises(FetchRefused) as refused:
            fetch(f"{public.url}/ref.wav", 10**6, 5, allow_private=False)
    assert not refused.value.too_large and str(refused.value) == "the URL answered HTTP 404"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:pw@example.test/ref.wav", "URLs with user information are not allowed"),
        ("ftp://example.test/ref.wav", "only http:// and https:// URLs with a host are allowed"),
        ("http://exa mple.test/ref.wav", "the URL has characters that are not allowed"),
        ("http://example.test:99999/ref.wav", "the URL is not valid"),
    ],
)
def test_the_urls_form_is_refused_before_any_lookup(url, reason, fake_dns):
    _, lookups = fake_dns
    for allow_private in (False, True):
        with pytest.raises(FetchRefused, match=reason):
            check_address(url, allow_private)
    assert lookups == []
