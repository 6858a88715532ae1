"""Helpers of scripts/image-check.sh (standard library only: runs on the host's python3).

    python3 scripts/image_check.py entrypoint IMAGE_CONFIG_JSON
        the image's ENTRYPOINT, one argument a line (from `buildah inspect --type image`)
    python3 scripts/image_check.py free-port
        a TCP port nobody listens on now
    python3 scripts/image_check.py part-sizes --base-tar BASE.tar --root IMAGE_ROOT
        what the image adds over its base, by owner: every Debian package the build installed
        (from the image's dpkg file lists), /app, the package manager's own files, the rest
    python3 scripts/image_check.py watch-http --port P --api-key K --venv-root DIR ...
        phase 3: polls GET /ping of the second container until it answers 200, noting when the
        first container's runtime was published on the volume; then one POST /v1/audio/speech

Every check prints what it saw; a failed one exits 1 with the reason on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

MB = 1_000_000


def fail(message: str) -> None:
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


# -- entrypoint, free port -------------------------------------------------------------------------


def entrypoint(config_json: str) -> None:
    config = json.loads(config_json)
    found = (config.get("OCIv1") or {}).get("config", {}).get("Entrypoint") or (
        (config.get("Docker") or {}).get("config", {}).get("Entrypoint")
    )
    if not found:
        fail("the image has no ENTRYPOINT")
    print("\n".join(found))


def free_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1])


# -- what the image adds over its base ---------------------------------------------------------------


def base_files(base_tar: Path) -> dict[str, int]:
    with tarfile.open(base_tar) as tar:
        return {"/" + m.name.lstrip("./"): m.size for m in tar if m.isfile()}


def package_owners(root: Path) -> dict[str, str]:
    """Path -> Debian package, from the image's own /var/lib/dpkg/info/*.list."""
    owners: dict[str, str] = {}
    for listing in sorted((root / "var/lib/dpkg/info").glob("*.list")):
        package = listing.stem.split(":", 1)[0]
        for line in listing.read_text(errors="replace").splitlines():
            owners.setdefault(line, package)
    return owners


def part_of(path: str, owners: dict[str, str]) -> str:
    if path.startswith("/app/"):
        return "/app (the worker's code, byte-compiled)"
    if path in owners:
        return owners[path]
    if path.startswith(("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/apt/", "/var/cache/debconf/", "/var/log/")):
        return "dpkg/apt records and logs"
    return "other"


def added_files(base: dict[str, int], root: Path):
    """(path, bytes) of every regular file that is new or changed size over the base."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root):
        rel_folder = "/" + os.path.relpath(folder, root).lstrip(".")
        rel_folder = "" if rel_folder == "/" else rel_folder
        if rel_folder in ("/proc", "/sys", "/dev", "/tmp", "/run"):
            dirs[:] = []
            continue
        for name in files:
            full = os.path.join(folder, name)
            stat = os.lstat(full)
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            if (stat.st_dev, stat.st_ino) in seen:  # a hard link counts once
                continue
            seen.add((stat.st_dev, stat.st_ino))
            path = f"{rel_folder}/{name}"
            if base.get(path) != stat.st_size:
                yield path, stat.st_size


def part_sizes(base_tar: str, root: str, top: int) -> None:
    root_path = Path(root)
    owners = package_owners(root_path)
    sizes: dict[str, int] = defaultdict(int)
    for path, size in added_files(base_files(Path(base_tar)), root_path):
        sizes[part_of(path, owners)] += size
    total = sum(sizes.values())
    print(f"added over the base: {total / MB:.1f} MB in files (apparent sizes), by owner:")
    ranked = sorted(sizes.items(), key=lambda item: -item[1])
    for name, size in ranked[:top]:
        print(f"  {size / MB:7.1f} MB  {name}")
    rest = ranked[top:]
    if rest:
        print(f"  {sum(s for _, s in rest) / MB:7.1f} MB  {len(rest)} smaller parts: " + ", ".join(n for n, _ in rest))


# -- phase 3: /ping of a second container while the first installs --------------------------------


def ping(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, urllib.error.URLError):
        return "no answer"


def published(venv_root: Path) -> list[str]:
    """The runtime environments published on the volume (<volume>/higgs-worker/venvs/<key>)."""
    try:
        return sorted(p.name for p in venv_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []


def first_rc(path: str | None) -> int | None:
    if not path or not os.path.exists(path):
        return None
    text = Path(path).read_text().strip()
    return int(text) if text else None


def watch_http(args) -> None:
    t0 = args.started_at
    base = f"http://127.0.0.1:{args.port}"
    venv_root = Path(args.venv_root)
    runs: list[list] = []  # [answer, first seen s, last seen s, count]
    t_published = None
    deadline = time.time() + args.timeout
    while True:
        now = time.time()
        if now > deadline:
            fail(f"GET /ping never answered 200 within {args.timeout:.0f}s; answers: {summary(runs)}")
        if t_published is None and published(venv_root):
            t_published = now - t0
        answer = ping(base + "/ping")
        seen = time.time() - t0
        if runs and runs[-1][0] == answer:
            runs[-1][2], runs[-1][3] = seen, runs[-1][3] + 1
        else:
            runs.append([answer, seen, seen, 1])
        if answer == "200":
            break
        if answer not in ("204", "no answer"):
            fail(f"GET /ping answered {answer} while starting (only 204, then 200, are right): {summary(runs)}")
        rc = first_rc(args.first_rc_file)
        if rc not in (None, 0):
            fail(f"the first container exited {rc} while the second one waited; answers: {summary(runs)}")
        time.sleep(0.5)
    if t_published is None and published(venv_root):
        t_published = time.time() - t0
    print(f"GET /ping of the second container (seconds since it started): {summary(runs)}")
    first_204 = next(i for i, r in enumerate(runs) if r[0] == "204") if any(r[0] == "204" for r in runs) else None
    if first_204 is not None:
        silent = [r for r in runs[first_204:] if r[0] == "no answer"]
        if silent:
            longest = max(r[2] - r[1] + 0.5 for r in silent)
            print(
                f"  note: no answer for up to {longest:.1f}s between the first 204 and the 200 "
                "(the install's /ping responder had stopped, handler.py's server had not started)"
            )
    print(f"the first container's runtime appeared on the volume at {fmt(t_published)}s")
    no_204 = [r for r in runs if r[0] == "204"]
    if not no_204:
        fail("GET /ping never answered 204 (initializing) before 200")
    if t_published is None:
        fail("GET /ping answered 200 before the runtime was published on the volume (none was)")
    if no_204[0][1] >= t_published:
        fail(
            f"the first 204 came at {fmt(no_204[0][1])}s, after the runtime was published "
            f"({fmt(t_published)}s): the second container did not start while the first was installing"
        )
    if runs[-1][1] < t_published:
        fail(f"GET /ping answered 200 at {fmt(runs[-1][1])}s, before the runtime was published")
    speech(base, args)


def speech(base: str, args) -> None:
    body = json.dumps(
        {"model": "higgs-audio-v2", "input": args.text, "response_format": "wav", "seed": 7, "max_new_tokens": 24}
    ).encode()
    request = urllib.request.Request(
        base + "/v1/audio/speech",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {args.api_key}"},
    )
    started = time.time()
    try:
        with urllib.request.urlopen(request, timeout=args.speech_timeout) as response:
            status, kind, audio = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        fail(f"POST /v1/audio/speech answered {exc.code}: {exc.read()[:500]!r}")
    except (OSError, urllib.error.URLError) as exc:
        fail(f"POST /v1/audio/speech: {exc}")
    took = time.time() - started
    print(f"POST /v1/audio/speech: {status} {kind}, {len(audio)} bytes in {took:.1f}s")
    if status != 200 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE" or len(audio) <= 44:
        fail(f"POST /v1/audio/speech did not return WAV audio (status {status}, first bytes {audio[:12]!r})")
    if args.save:
        Path(args.save).write_bytes(audio)


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def summary(runs: list[list]) -> str:
    return "; ".join(f"{a} x{n} ({fmt(first)}-{fmt(last)}s)" for a, first, last, n in runs) or "none"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("entrypoint")
    p.add_argument("config_json")
    sub.add_parser("free-port")
    p = sub.add_parser("part-sizes")
    p.add_argument("--base-tar", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--top", type=int, default=16)
    p = sub.add_parser("watch-http")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--venv-root", required=True)
    p.add_argument("--started-at", type=float, required=True, help="epoch seconds the second container started")
    p.add_argument("--first-rc-file", help="where the first container's exit status lands")
    p.add_argument("--timeout", type=float, default=480)
    p.add_argument("--speech-timeout", type=float, default=240)
    p.add_argument("--text", default="Hello there.")
    p.add_argument("--save", help="write the returned audio here")
    args = parser.parse_args(argv)
    if args.command == "entrypoint":
        entrypoint(args.config_json)
    elif args.command == "free-port":
        free_port()
    elif args.command == "part-sizes":
        part_sizes(args.base_tar, args.root, args.top)
    else:
        watch_http(args)


if __name__ == "__main__":
    main()
