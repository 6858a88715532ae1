"""Every example in README.md and docs/*.md that calls the worker runs here, and must succeed.

Rules for whoever writes an example (issue 18)
----------------------------------------------
1. Which blocks are examples. A fenced ``bash`` / ``sh`` / ``shell`` / ``python`` block
   "calls RunPod" when its code contains one of :data:`CALLS_RUNPOD`: a job URL
   (``api.runpod.ai``: ``https://api.runpod.ai/v2/$ENDPOINT_ID/...`` for queue endpoints,
   ``https://$ENDPOINT_ID.api.runpod.ai/...`` for load-balancing ones), the runpod SDK
   (``runpod.Endpoint(``), the openai SDK (``OpenAI(``), the audiobook client (``higgs-tts``,
   ``higgs_tts``) or RunPod's management API
   (``deploy-runpod.sh``, ``api.runpod.io``). Other blocks (JSON results, local commands)
   are not run here.
2. Mark every such block. The last non-blank line before its opening fence is an HTML
   comment (invisible on GitHub) that names it and says where it runs::

       <!-- example: NAME -->                    a queue endpoint with the default settings
       <!-- example: NAME worker=stream -->      a queue endpoint with STREAM_JOBS=true
       <!-- example: NAME worker=http -->        a load-balancing endpoint (WORKER_MODE=http)
       <!-- example: NAME skip="REASON" -->      cannot run here, e.g. it deploys through
                                                 RunPod's real API; reported as skipped, by NAME

   NAME is lower-case letters, digits and ``-``, unique over all documents. A block that
   calls RunPod without a marker, a marker on anything else, and a duplicate name fail
   ``test_every_example_is_marked`` (fast, no worker needed).
3. How a block runs. Against the tiny random-weight model on the CPU: queue examples
   against ``handler.py --rp_serve_api`` behind RunPod's public URL shape
   (tests/support/public_job_api.py), HTTP examples against ``WORKER_MODE=http``; one worker
   process of each kind serves every example of that kind. The voice library is empty, as on
   a fresh endpoint: an example that names a voice must name one every endpoint has. Before
   the block runs:

   - ``https://api.runpod.ai`` becomes the local queue API and ``https://<anything>.api.runpod.ai``
     the local HTTP-mode worker; ``RUNPOD_ENDPOINT_BASE_URL`` points the runpod SDK there;
   - ``ENDPOINT_ID`` and ``RUNPOD_API_KEY`` are set (environment, and Python names of
     the same name); the local servers refuse any other key;
   - bash runs with ``set -euo pipefail``; ``curl`` gets ``--fail-with-body`` (an HTTP error
     fails the example); ``ffplay`` and Python's ``play(chunk)`` write what they would
     play to ``played.pcm``;
   - the working folder is empty but for :data:`FIXTURE_FILES` (``narrator.wav``).
   So write examples that work as they are against a real endpoint: read the id and key
   from the environment (or those names), and use only the files above.
4. What "succeeds" means. Exit status 0; every job the block caused finished
   ``COMPLETED`` (jobs it only submitted with ``/run`` are run after it); every audio file
   it wrote decodes (``played.pcm`` is non-empty 16-bit PCM); an HTTP example's worker
   logged its requests.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import wav_bytes, worker_process_env
from tests.support.api_server import rp_serve_api
from tests.support.http_server import http_worker
from tests.support.public_job_api import PublicJobApi

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
CALLS_RUNPOD = (
    "api.runpod.ai",
    "runpod.Endpoint(",
    "OpenAI(",
    "deploy-runpod.sh",
    "api.runpod.io",
    "higgs-tts",
    "higgs_tts",
)
WORKERS = ("queue", "stream", "http")
MARKER = re.compile(r"<!--\s*example:\s*(?P<name>\S+)(?P<options>.*?)\s*-->")
OPTION = re.compile(r'(?P<key>\w+)=(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+))')
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
LB_URL = re.compile(r"https://[^\s/\"'`]+\.api\.runpod\.ai")
QUEUE_URL = "https://api.runpod.ai"

ENDPOINT_ID = "docs-example-endpoint"
API_KEY = "docs-example-key-0123456789"
FIXTURE_FILES = {"narrator.wav": wav_bytes(1.5)}
BASH_PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }  # an HTTP error fails the example
ffplay() { cat >> played.pcm; }  # what would be played goes to a file
"""
PY_PRELUDE = """import os as _os
ENDPOINT_ID = _os.environ["ENDPOINT_ID"]
RUNPOD_API_KEY = _os.environ["RUNPOD_API_KEY"]


def play(chunk):  # what would be played goes to a file
    with open("played.pcm", "ab") as _fh:
        _fh.write(chunk)


"""
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus"}


@dataclass
class Example:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str  # bash or python
    code: str
    name: str | None  # None: no marker
    worker: str = "queue"
    skip: str | None = None
    marker_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def calls_runpod(self) -> bool:
        return any(needle in self.code for needle in CALLS_RUNPOD)


def parse(doc: Path, text: str | None = None) -> list[Example]:
    """The fenced bash/python blocks of a Markdown document, with their markers, and markers
    that are not followed by such a block (as examples with ``lang`` "")."""
    lines = (doc.read_text() if text is None else text).splitlines()
    found: list[Example] = []
    pending: tuple[int, re.Match] | None = None  # a marker waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i]
        if marker := MARKER.search(line):
            if pending:
                found.append(Example(doc, pending[0] + 1, "", "", pending[1]["name"]))
            pending = (i, marker)
            i += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if line.strip() and pending:
                found.append(Example(doc, pending[0] + 1, "", "", pending[1]["name"]))
                pending = None
            i += 1
            continue
        indent, mark = len(fence["indent"]), fence["fence"]
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(mark):
            end += 1
        code = "\n".join(text_line[indent:] for text_line in lines[i + 1 : end]) + "\n"
        lang = LANGUAGES.get(fence["lang"].lower(), "")
        if lang or pending:
            example = Example(doc, i + 1, lang, code, pending[1]["name"] if pending else None)
            if pending:
                _apply_options(example, pending[1]["options"])
            found.append(example)
        pending = None
        i = end + 1
    if pending:
        found.append(Example(doc, pending[0] + 1, "", "", pending[1]["name"]))
    return found


def _apply_options(example: Example, options: str) -> None:
    rest = OPTION.sub("", options).strip()
    for option in OPTION.finditer(options):
        value = option["quoted"] if option["quoted"] is not None else option["bare"]
        if option["key"] == "worker" and value in WORKERS:
            example.worker = value
        elif option["key"] == "skip" and value.strip():
            example.skip = value.strip()
        else:
            example.marker_error = f'unknown option {option[0]!r} (worker={"|".join(WORKERS)}, skip="reason")'
    if rest:
        example.marker_error = f"cannot read {rest!r} in the marker"


def all_blocks() -> list[Example]:
    return [example for doc in DOCS for example in parse(doc)]


EXAMPLES = [example for example in all_blocks() if example.name and example.lang and example.calls_runpod]


# --------------------------------------------------------------------------- the rules (fast)
def marking_problems(blocks: list[Example]) -> list[str]:
    problems, names = [], {}
    for block in blocks:
        if block.name is None:
            if block.calls_runpod:
                problems.append(
                    f"{block.where}: a {block.lang} block calls RunPod but has no <!-- example: NAME --> marker"
                )
            continue
        if not block.lang:
            problems.append(f"{block.where}: marker '{block.name}' is not right above a bash or python block")
        elif not block.calls_runpod:
            problems.append(f"{block.where}: marker '{block.name}' is on a block that does not call RunPod")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", block.name):
            problems.append(f"{block.where}: example name '{block.name}': use a-z, 0-9 and -")
        if block.marker_error:
            problems.append(f"{block.where}: example '{block.name}': {block.marker_error}")
        if block.name in names:
            problems.append(f"{block.where}: example name '{block.name}' is also used at {names[block.name]}")
        names.setdefault(block.name, block.where)
    return problems


def test_every_example_is_marked() -> None:
    assert marking_problems(all_blocks()) == []
    assert EXAMPLES, "no examples found: the parser or the docs changed"


def test_the_rules_catch_unmarked_and_misplaced_examples() -> None:
    doc = ROOT / "docs" / "x.md"
    text = """
<!-- example: fine worker=http -->
```bash
curl -s https://$ENDPOINT_ID.api.runpod.ai/ping
```

```python
import runpod
runpod.Endpoint("x")
```

<!-- example: stray -->
Some words.

<!-- example: fine skip="needs the real API" -->
```bash
./deploy-runpod.sh
```

<!-- example: odd worker=gpu -->
```sh
curl https://api.runpod.ai/v2/x/health
```
"""
    blocks = parse(doc, text)
    assert [(b.name, b.lang, b.worker, b.skip) for b in blocks] == [
        ("fine", "bash", "http", None),
        (None, "python", "queue", None),
        ("stray", "", "queue", None),
        ("fine", "bash", "queue", "needs the real API"),
        ("odd", "bash", "queue", None),
    ]
    problems = marking_problems(blocks)
    assert len(problems) == 4, problems
    assert "docs/x.md:7: a python block calls RunPod but has no" in problems[0]
    assert "marker 'stray' is not right above" in problems[1]
    assert "'fine' is also used at docs/x.md:3" in problems[2]
    assert "unknown option 'worker=gpu'" in problems[3]


# --------------------------------------------------------------------------- running them (slow)
class ExampleWorkers:
    """One worker process of each kind, started when the first example needs it."""

    def __init__(self, tiny_models, work_dir: Path):
        self.work_dir = work_dir
        voices = work_dir / "voices"  # empty, as on a fresh endpoint
        voices.mkdir()
        self.env = worker_process_env(tiny_models, voices, work_dir)
        self.stack = contextlib.ExitStack()
        self.queues: dict[str, PublicJobApi] = {}
        self.http = None

    def queue(self, kind: str) -> PublicJobApi:
        if kind not in self.queues:
            env = {**self.env, "STREAM_JOBS": "true" if kind == "stream" else "false"}
            log = self.stack.enter_context(open(self.work_dir / f"{kind}.log", "w"))  # noqa: SIM115
            local_url, _proc = self.stack.enter_context(rp_serve_api(env, output=log))
            self.queues[kind] = self.stack.enter_context(PublicJobApi(local_url, ENDPOINT_ID, API_KEY))
        return self.queues[kind]

    def http_mode(self):
        if self.http is None:
            env = {**self.env, "API_KEY": API_KEY}
            self.http = self.stack.enter_context(http_worker(env, self.work_dir / "http.log"))
        return self.http


@pytest.fixture(scope="module")
def example_workers(tiny_models, tmp_path_factory):
    workers = ExampleWorkers(tiny_models, tmp_path_factory.mktemp("doc-examples"))
    with workers.stack:
        yield workers


def localise(code: str, queue_url: str | None, http_url: str | None) -> str:
    if http_url:
        code = LB_URL.sub(http_url, code)
    if queue_url:
        code = code.replace(QUEUE_URL, queue_url)
    return code


def example_env(queue_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "AWS_", "S3_", "HF_"))}
    env.update(
        ENDPOINT_ID=ENDPOINT_ID,
        RUNPOD_API_KEY=API_KEY,
        HIGGS_TTS_API_KEY=API_KEY,  # say --base-url: the local HTTP worker's own key (RunPod's goes to RunPod only)
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # python3 = this venv's
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    if queue_url:
        env["RUNPOD_ENDPOINT_BASE_URL"] = f"{queue_url}/v2"
    return env


def check_audio_files(folder: Path) -> list[str]:
    written = []
    for path in sorted(folder.iterdir()):
        if path.name in FIXTURE_FILES:
            continue
        if path.suffix in AUDIO_SUFFIXES:
            info = sf.info(path)
            assert info.frames > 0, f"{path.name}: no audio"
            written.append(path.name)
        elif path.suffix == ".pcm":
            size = path.stat().st_size
            assert size > 0 and size % 2 == 0, f"{path.name}: {size} bytes is not 16-bit PCM"
            written.append(path.name)
    return written


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_documented_example_runs(example: Example, example_workers: ExampleWorkers, tmp_path: Path) -> None:
    if example.skip:
        pytest.skip(f"{example.where}: {example.skip}")
    queue = http = None
    if example.worker == "http":
        http = example_workers.http_mode()
        log_before = len(http.log())
    else:
        queue = example_workers.queue(example.worker)
        jobs_before = set(queue.submitted) | set(queue.finished)
    code = localise(example.code, queue.url if queue else None, http.url if http else None)
    for name, data in FIXTURE_FILES.items():
        (tmp_path / name).write_bytes(data)
    if example.lang == "bash":
        command = ["bash", "-c", BASH_PRELUDE + code]
    else:
        command = [sys.executable, "-c", PY_PRELUDE + code]
    proc = subprocess.run(
        command,
        cwd=tmp_path,
        env=example_env(queue.url if queue else None),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = (
        f"{example.where}\n--- code run\n{code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    assert proc.returncode == 0, output
    if queue:
        queue.drain()  # jobs the example only submitted run now
        jobs = [job for job in queue.submitted + list(queue.finished) if job not in jobs_before]
        assert jobs, f"the example sent no job to the worker\n{output}"
        failed = {
            job: queue.finished[job] for job in dict.fromkeys(jobs) if queue.finished[job]["status"] != "COMPLETED"
        }
        assert not failed, f"jobs that did not complete: {failed}\n{output}"
    else:
        assert len(http.log()) > log_before, f"the HTTP worker logged nothing for the example\n{output}"
    check_audio_files(tmp_path)
