"""Fetch a URL from strangers' input: public addresses only, a total time limit, a byte limit.

- The host is resolved once a hop, every address is checked, and the connection goes to
  one of the addresses checked (never to a second lookup's answer), so DNS rebinding
  cannot reach a private, loopback, link-local or metadata address, and URLs that name
  one fail without any connection. The connected socket's peer is checked again (every
  connection, every redirect hop) against URL-parser confusion; a peer refused there
  reads like a refused connection, so no answer tells an open private port from a
  closed one.
- An IPv6 address that embeds an IPv4 one (IPv4-mapped or -compatible, NAT64, 6to4,
  Teredo, SIIT) is public only when the IPv4 address is.
- The time limit covers everything (connect, headers, body): when it passes, the
  sockets are shut down, which ends any read in progress.
- The body is read in blocks and refused as soon as it passes the byte limit.
- No proxies from the environment (the peer must be the host itself), no userinfo,
  no backslashes, http and https only, a few redirects at most.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3


class FetchRefused(Exception):
    """The URL or what it answered is refused; the message says why (``too_large``: its body
    passed the byte limit)."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


class _PrivateHost(Exception):
    """The host resolves to an address that is not public (found before any connection)."""


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a network's own translator
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (the address it reaches through a translator)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]  # the client's address; the server's is checked by is_global
    if ip in NAT64 or ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast and (ip.teredo is None or ip.is_global)
    return ip.is_global and not ip.is_multicast


def _split(url: str):
    if any(ch in url for ch in "\\\r\n\t ") or not url.isascii():
        raise FetchRefused("the URL has characters that are not allowed (backslash, spaces, non-ASCII)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("the URL is not valid") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchRefused("only http:// and https:// URLs with a host are allowed")
    if "@" in parts.netloc:
        raise FetchRefused("URLs with user information are not allowed")
    return parts, port or (443 if parts.scheme.lower() == "https" else 80)


def _host_key(host: str, port: int) -> tuple[str, int]:
    return host.strip("[]").rstrip(".").lower(), port


def check_host(url: str) -> tuple[tuple[str, int], list[str]]:
    """Resolve the URL's host and refuse it unless every address is public; return the
    (host, port) key and the addresses, in the resolver's order."""
    parts, port = _split(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        raise FetchRefused(f"cannot resolve the host {parts.hostname}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or not all(is_public(address) for address in addresses):
        raise _PrivateHost()
    return _host_key(parts.hostname, port), addresses


PRIVATE_REFUSED = (
    "points to a private, loopback or link-local address; refused "
    "(set ALLOW_PRIVATE_URLS=true on the endpoint to allow it)"
)


def check_address(url: str, allow_private: bool) -> None:
    """The URL's form and, unless ``allow_private``, every address of its host (resolved now);
    ``FetchRefused`` otherwise. What ``fetch`` checks before its first connection, for a job
    that is checked before it waits; ``fetch`` checks again, at every hop."""
    try:
        _split(url) if allow_private else check_host(url)
    except _PrivateHost:
        raise FetchRefused(PRIVATE_REFUSED) from None


class _Fetch:
    """One fetch: its connections (to check and to cut) and its deadline."""

    def __init__(self, allow_private: bool, timeout: float):
        self.allow_private = allow_private
        self.timeout = timeout
        self.sockets: list[socket.socket] = []
        self.checked: dict[tuple[str, int], list[str]] = {}  # (host, port) -> its checked addresses
        self.expired = False
        self.lock = threading.Lock()

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def check(self, url: str) -> None:
        """Check the URL (and, unless private addresses are allowed, its host's addresses,
        kept for ``connect``)."""
        if self.allow_private:
            _split(url)
            return
        key, addresses = check_host(url)
        self.checked[key] = addresses

    def connect(self, conn, unchecked) -> socket.socket:
        """A socket to one of the addresses checked for ``conn``'s host, tried in order
        (``unchecked()``, urllib3's own connect, when private addresses are allowed)."""
        if self.allow_private:
            return self.adopt(unchecked())
        from urllib3.util.connection import create_connection

        addresses = self.checked.get(_host_key(conn.host, conn.port))
        if not addresses:  # a host no check saw: refused like a connection
            raise ConnectionRefusedError(errno.ECONNREFUSED, "not a checked address")
        last: OSError | None = None
        for address in addresses:
            try:
                sock = create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except OSError as exc:
                last = exc
                continue
            return self.adopt(sock)
        assert last is not None
        raise last

    def adopt(self, sock: socket.socket) -> socket.socket:
        if not self.allow_private and not is_public(sock.getpeername()[0]):
            sock.close()  # what a refused connection says: no answer tells an open port from a closed one
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                sock.shutdown(socket.SHUT_RDWR)
        return sock

    def session(self):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        fetch = self

        class CheckedHTTP(HTTPConnection):
            def _new_conn(self):
                return fetch.connect(self, super()._new_conn)

        class CheckedHTTPS(HTTPSConnection):
            def _new_conn(self):
                return fetch.connect(self, super()._new_conn)

        class Pool(HTTPConnectionPool):
            ConnectionCls = CheckedHTTP

        class PoolS(HTTPSConnectionPool):
            ConnectionCls = CheckedHTTPS

        adapter = HTTPAdapter(max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": PoolS}
        session = requests.Session()
        session.trust_env = False  # no proxies: the peer must be the host itself
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


def _get(attempt: _Fetch, url: str, max_bytes: int, timeout: float) -> tuple[bytes, str | None]:
    """One hop on a fresh connection (a pooled one could be stale, and each peer is
    checked anyway): (body, None), or (b"", Location) for a redirect."""
    headers = {"User-Agent": "higgs-runpod-worker", "Accept-Encoding": "identity", "Connection": "close"}
    with (
        attempt.session() as session,
        session.get(url, stream=True, allow_redirects=False, timeout=(timeout, timeout), headers=headers) as response,
    ):
        if response.is_redirect:
            return b"", response.headers.get("Location", "")
        if response.status_code != 200:
            raise FetchRefused(f"the URL answered HTTP {response.status_code}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchRefused(f"larger than {max_bytes} bytes", too_large=True)
        body = bytearray()
        for block in response.raw.stream(64 * 1024, decode_content=False):
            body += block
            if len(body) > max_bytes:
                raise FetchRefused(f"larger than {max_bytes} bytes", too_large=True)
        if attempt.expired:
            raise FetchRefused(f"took longer than {timeout:g} s")
        return bytes(body), None


def fetch(url: str, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    """GET ``url`` and return its body; raise ``FetchRefused`` with a reason otherwise."""
    import requests
    import urllib3

    attempt = _Fetch(allow_private, timeout)
    timer = threading.Timer(timeout, attempt.expire)
    timer.daemon = True
    timer.start()
    try:
        for _ in range(MAX_REDIRECTS + 1):
            attempt.check(url)
            body, location = _get(attempt, url, max_bytes, timeout)
            if location is None:
                return body
            url = urljoin(url, location)
        raise FetchRefused(f"redirected more than {MAX_REDIRECTS} times")
    except _PrivateHost:
        raise FetchRefused(PRIVATE_REFUSED) from None
    except FetchRefused:
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        if attempt.expired:
            raise FetchRefused(f"took longer than {timeout:g} s") from None
        raise FetchRefused(f"could not be fetched ({type(exc).__name__})") from None
    finally:
        timer.cancel()
