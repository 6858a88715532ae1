"""Hostile reference URLs through whole jobs (the guarded fetch, ``io/safe_http``, as a job
reaches it): SSRF-style addresses, parser confusion, redirects, DNS answers, slow, endless and
compressed bodies, non-200 answers. Real HTTP servers on loopback addresses
(``tests/support/hostile_servers.py``). Two stand-ins, named in the tests that use them,
because neither can run inside a test:

- a *public* web server: with ALLOW_PRIVATE_URLS unset nothing local may be fetched, so the
  loopback address 127.0.0.3 (and only it) is treated as public by patching
  ``safe_http.is_public`` (fixture ``public_standin``);
- a DNS server that answers as an attacker wants: ``socket.getaddrinfo`` answers for names
  under ``.test`` (fixture ``fake_dns``; a test cannot make its own DNS server this machine's
  resolver).

The fetcher's own tests, without a job around it, are tests/io/test_safe_http.py."""

from __future__ import annotations

import time

import pytest

from tests.conftest import PUBLIC_STANDIN, wav_bytes
from tests.support.hostile_jobs import (
    CHEAP,
    PRIVATE,
    URL_TIMEOUT,
    check_audio,
    check_contract,
    check_refused,
    ref_job,
)
from tests.support.hostile_servers import (
    HostileServer,
    endless_body,
    gzip_bomb,
    redirect,
    route,
    serve,
    stall,
    trickle_body,
    trickle_headers,
)


@pytest.fixture
def private_servers():
    """Servers that would hand out a valid clip, on 127.0.0.1 and 127.0.0.2; each counts requests."""
    data = wav_bytes(1.0)
    with HostileServer(serve(data)) as first, HostileServer(serve(data), host=PRIVATE) as second:
        yield first, second


def _fill(template: str, first: HostileServer, second: HostileServer) -> str:
    return template.format(p1=first.port, p2=second.port)


PRIVATE_URLS = [
    "http://127.0.0.1:{p1}/ref.wav",
    "https://127.0.0.1:{p1}/ref.wav",
    "http://127.0.0.2:{p2}/ref.wav",
    "http://127.255.255.254/ref.wav",
    "http://localhost:{p1}/ref.wav",
    "http://LocalHost:{p1}/ref.wav",
    "http://[::1]:{p1}/ref.wav",
    "http://[::ffff:127.0.0.1]:{p1}/ref.wav",
    "http://[::ffff:7f00:2]:{p2}/ref.wav",
    "http://user:password@127.0.0.1:{p1}/ref.wav",
    "http://10.0.0.1/ref.wav",
    "http://10.255.255.254:8080/ref.wav",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.168.1.1/ref.wav",
    "http://172.16.0.1/ref.wav",
    "http://100.64.0.1/ref.wav",
    "http://0.0.0.0:{p1}/ref.wav",
    "http://[::]:{p1}/ref.wav",
]
# Other spellings of loopback addresses: refused, though maybe as "cannot resolve".
TRICKY_URLS = [
    "http://127.1:{p1}/ref.wav",
    "http://2130706433:{p1}/ref.wav",
    "http://0x7f000001:{p1}/ref.wav",
    "http://0177.0.0.1:{p1}/ref.wav",
    "http://127.0.0.1.:{p1}/ref.wav",
    "http://localhost.:{p1}/ref.wav",
    "http://①②⑦.0.0.1:{p1}/ref.wav",
    "http://127。0。0。1:{p1}/ref.wav",
    "http://[0:0:0:0:0:ffff:127.0.0.2]:{p2}/ref.wav",
    "http://[fe80::1%25lo]:{p1}/ref.wav",
    "http://1.1.1.1\t@127.0.0.1:{p1}/ref.wav",
    "http://1.1.1.1 &@127.0.0.2:{p2}# @1.1.1.1/ref.wav",
    "http://1.1.1.1:80@127.0.0.1:{p1}/ref.wav",
    "http://127.0.0.1:{p1}#@1.1.1.1/ref.wav",
    "http://127.0.0.1:{p1}?@1.1.1.1/ref.wav",
]


@pytest.mark.parametrize("template", PRIVATE_URLS)
def test_private_addresses_are_refused_without_a_request(make_worker, private_servers, template):
    first, second = private_servers
    out = make_worker(CHEAP).run(ref_job({"url": _fill(template, first, second)})).as_output()
    message = check_refused(out)
    expected = "user information" if "@" in template else "ALLOW_PRIVATE_URLS"  # userinfo is refused outright
    assert expected in message, message
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize("template", TRICKY_URLS)
def test_other_spellings_of_private_addresses_are_refused_without_a_request(make_worker, private_servers, template):
    first, second = private_servers
    check_refused(make_worker(CHEAP).run(ref_job({"url": _fill(template, first, second)})).as_output())
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/ref.wav",
        "gopher://127.0.0.1:25/_HELO",
        "dict://127.0.0.1:11211/stat",
        "data:audio/wav;base64,AAAA",
        "javascript:alert(1)",
        "//127.0.0.1/ref.wav",
        "/etc/passwd",
        "ref.wav",
        "http:/127.0.0.1/ref.wav",
        "http:127.0.0.1/ref.wav",
        "http://",
        "http:///ref.wav",
    ],
)
def test_non_http_urls_are_refused(make_worker, url):
    check_refused(make_worker(CHEAP).run(ref_job({"url": url})).as_output(), ("invalid_input: ", "reference_audio: "))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[::1]]:80/",
        "http://127.0.0.1:99999/ref.wav",
        "http://[::1]:65536/ref.wav",
        "http://10.0.0.1:-1/ref.wav",
        "http://10.0.0.1:1e3/ref.wav",
        "http://10.0.0.1:port/ref.wav",
        "http://[not-an-address]/ref.wav",
        "http://\x00/ref.wav",
        "http://" + "a" * 300 + "/ref.wav",
        "http://a..b/ref.wav",
    ],
)
def test_malformed_urls_are_refused_as_contract_errors(make_worker, url):
    """Malformed URLs fail as ``invalid_input`` or ``reference_audio``, not as an unexpected error."""
    worker = make_worker(CHEAP)
    check_refused(worker.run(ref_job({"url": url})).as_output(), ("invalid_input: ", "reference_audio: "))


def test_public_standin_serves_a_clip(make_worker, public_standin):
    """The control for the stand-in tests: a "public" URL and a redirect between "public" URLs work."""
    data = wav_bytes(1.0)
    behaviour = route({"/ref.wav": serve(data), "/moved.wav": redirect("/ref.wav", 301)})
    with HostileServer(behaviour, host=PUBLIC_STANDIN) as public:
        worker = make_worker(CHEAP)
        check_audio(worker.run(ref_job({"url": f"{public.url}/ref.wav"})).as_output())
        check_audio(worker.run(ref_job({"url": f"{public.url}/moved.wav"})).as_output())
    assert public.requests == ["GET /ref.wav HTTP/1.1", "GET /moved.wav HTTP/1.1", "GET /ref.wav HTTP/1.1"]


REDIRECT_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/ref.wav",
    "http://127.0.0.2:{port}/ref.wav",
    "file:///etc/passwd",
    "http://localhost:{port}/ref.wav",
    "//127.0.0.2:{port}/ref.wav",
    "http://[::ffff:127.0.0.2]:{port}/ref.wav",
    "gopher://127.0.0.2:{port}/_x",
    "ftp://127.0.0.2/ref.wav",
]


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_redirects_to_private_addresses_or_other_schemes_are_refused(make_worker, public_standin, target):
    """A "public" URL (stand-in: 127.0.0.3) that redirects to a private address or another scheme."""
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        location = target.format(port=private.port)
        with HostileServer(redirect(location, 302), host=PUBLIC_STANDIN) as public:
            out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/ref.wav"})).as_output()
    check_refused(out)
    assert public.requests == ["GET /ref.wav HTTP/1.1"], "the stand-in was not asked: the test proves nothing"
    assert private.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_checked(make_worker, public_standin, status):
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        hops = route({"/a": redirect("/b", status), "/b": redirect(f"{private.url}/ref.wav", status)})
        with HostileServer(hops, host=PUBLIC_STANDIN) as public:
            out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/a"})).as_output()
    assert "ALLOW_PRIVATE_URLS" in check_refused(out)
    assert len(public.requests) == 2 and private.requests == []


def test_redirect_loops_are_cut_off(make_worker, public_standin):
    with HostileServer(redirect("/again", 302), host=PUBLIC_STANDIN) as public:
        started = time.monotonic()
        out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/again"})).as_output()
        elapsed = time.monotonic() - started
    assert "redirected" in check_refused(out)
    assert len(public.requests) <= 5, public.requests
    print(f"redirect loop refused after {len(public.requests)} requests, {elapsed:.2f} s")


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.2:{private}\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}\\\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}\t@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}%5C@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}/\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.3:{public}\\@127.0.0.2:{private}/ref.wav",
    ],
)
def test_url_parser_confusion_cannot_reach_a_private_server(make_worker, public_standin, template):
    """URLs that Python's ``urlsplit`` (used by the address check) and urllib3 (used to connect)
    may read as different hosts: the private server must never see a request. The public
    address is the stand-in 127.0.0.3, which serves a clip, so a fetch from it is fine."""
    with (
        HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private,
        HostileServer(serve(wav_bytes(1.0)), host=PUBLIC_STANDIN) as public,
    ):
        url = template.format(private=private.port, public=public.port)
        out = make_worker(CHEAP).run(ref_job({"url": url})).as_output()
    check_contract(out)
    assert private.requests == [], f"{url!r} reached the private server: {out.get('error', 'fetched')}"


@pytest.mark.parametrize(
    "answers",
    [
        [["169.254.169.254"]],
        [["127.0.0.2"]],
        [["10.0.0.1"]],
        [["127.0.0.3", "127.0.0.2"]],  # one "public" answer and one private: refused
    ],
)
def test_names_that_resolve_to_private_addresses_are_refused(make_worker, public_standin, fake_dns, answers):
    table, lookups = fake_dns
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        table["internal.test"] = [list(a) for a in answers]
        out = make_worker(CHEAP).run(ref_job({"url": f"http://internal.test:{private.port}/ref.wav"})).as_output()
    assert "ALLOW_PRIVATE_URLS" in check_refused(out)
    assert lookups and private.requests == []


def test_dns_rebinding_cannot_reach_a_private_server(make_worker, public_standin, fake_dns):
    """DNS rebinding: ``rebind.test`` resolves to the "public" stand-in 127.0.0.3 on the first
    lookup and to the private 127.0.0.2 on every later one. Both servers listen on the same
    port. The worker may fetch from the public one or refuse; the private one must see nothing."""
    table, lookups = fake_dns
    with (
        HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private,
        HostileServer(serve(wav_bytes(1.0)), host=PUBLIC_STANDIN, port=private.port) as public,
    ):
        table["rebind.test"] = [[PUBLIC_STANDIN], [PRIVATE]]
        out = make_worker(CHEAP).run(ref_job({"url": f"http://rebind.test:{private.port}/ref.wav"})).as_output()
    check_contract(out)
    print(f"rebinding: {len(lookups)} lookups; public saw {public.requests}, private saw {private.requests}")
    assert private.requests == [], "the second lookup's private address was used for the connection"


SLOW = {
    "stalls after the request": lambda: stall(),
    "trickles a body with Content-Length": lambda: trickle_body("length", give_up_after=9),
    "trickles a body without a length": lambda: trickle_body("close", give_up_after=9),
    "trickles a chunked body": lambda: trickle_body("chunked", give_up_after=9),
    "trickles header lines": lambda: trickle_headers(give_up_after=9),
}


@pytest.mark.parametrize("name", list(SLOW))
def test_slow_servers_are_cut_off_by_the_url_timeout(make_worker, name):
    """REFERENCE_URL_TIMEOUT_SECONDS is the total time to fetch a URL. (ALLOW_PRIVATE_URLS is set
    so that a local server can be reached at all.) The slow servers give up after 9 s."""
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "REFERENCE_URL_TIMEOUT_SECONDS": str(URL_TIMEOUT)})
    with HostileServer(SLOW[name]()) as server:
        started = time.monotonic()
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
        elapsed = time.monotonic() - started
    print(f"server that {name}: job ended after {elapsed:.1f} s (timeout {URL_TIMEOUT} s): {out.get('error')}")
    check_refused(out)
    assert elapsed < URL_TIMEOUT + 5, f"the {URL_TIMEOUT} s URL timeout did not hold: {elapsed:.1f} s"


@pytest.mark.parametrize("framing", ["declared", "chunked", "close"])
def test_oversized_bodies_are_cut_off_at_the_limit(make_worker, framing):
    """An endless body: with a declared Content-Length of 10 GB, chunked, or close-delimited.
    The server's send buffer is small, so what it managed to send is close to what the
    worker read (plus the worker's receive buffer, at most a few MB on Linux)."""
    limit = 50000
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "MAX_REFERENCE_BYTES": str(limit)})
    with HostileServer(endless_body(framing), sndbuf=32768) as server:
        started = time.monotonic()
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
        elapsed = time.monotonic() - started
        hung_up = server.peer_closed.wait(10)
        sent = server.sent
    print(f"endless {framing} body: refused after {elapsed:.2f} s; the server sent {sent} body bytes")
    assert "MAX_REFERENCE_BYTES" in check_refused(out)
    assert hung_up, "the worker kept the connection open"
    assert sent <= limit + 64 * 1024 + 8 * 2**20, sent
    assert elapsed < 10


def test_gzip_bomb_is_cut_off_at_the_limit(make_worker):
    """The worker asks for identity encoding and never inflates a body: a gzip bomb is refused
    as too large or as unreadable audio, never expanded to its 50 MB."""
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "MAX_REFERENCE_BYTES": "50000"})
    with HostileServer(gzip_bomb(50 * 10**6)) as server:
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
    message = check_refused(out)
    assert "MAX_REFERENCE_BYTES" in message or "not a readable audio file" in message


@pytest.mark.parametrize("status", [204, 206, 404, 500, 503])
def test_non_200_answers_are_refused(make_worker, status):
    def answer(conn):
        conn.head(f"{status} Whatever", {"Content-Length": "4"})
        conn.send(b"RIFF", body=True)

    with HostileServer(answer) as server:
        out = (
            make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true"})
            .run(ref_job({"url": f"{server.url}/ref.wav"}))
            .as_output()
        )
    assert str(status) in check_refused(out)
