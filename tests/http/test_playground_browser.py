"""The playground in a real browser: headless Chromium from Debian driven by Selenium (the
system chromedriver, no download: tests/support/browser.py) against ``WORKER_MODE=http python
handler.py`` with the tiny model on the CPU.

The main worker runs a copy of the tiny model whose end-of-audio token is out of reach, so a
text is generated to its length bound (about 20 s of audio here): long enough that "plays
before the job is done" is a question of event order, not of timing. A second worker has
API_KEY set for the key prompt.

Set PLAYGROUND_SCREENSHOT=docs/playground.png to keep a screenshot of the page after speaking."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests
import soundfile as sf
import webvtt
from selenium.webdriver.common.keys import Keys

from tests.conftest import voice_library, wav_bytes, worker_process_env
from tests.support.browser import browser_missing, chromium
from tests.support.http_server import http_worker

pytestmark = pytest.mark.slow

API_KEY = "playground-browser-key-0123456789"
TEXT = (
    "Hello there. This is the playground speaking while it is generated. The quick brown fox "
    "jumps over the lazy dog, and then it runs far away into the woods."
)


def endless_copy(tiny_models, folder: Path) -> tuple[Path, Path]:
    """The tiny model with its end-of-audio token out of reach: every text runs to its length bound."""
    model = folder / "endless"
    shutil.copytree(tiny_models[0], model)
    config = json.loads((model / "config.json").read_text())
    config["audio_stream_eos_id"] = config["codebook_size"] + 100
    (model / "config.json").write_text(json.dumps(config))
    return model, tiny_models[1]


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("playground")
    env = worker_process_env(endless_copy(tiny_models, root), voice_library(root), root)
    env["MAX_TEXT_CHARS"] = "600"
    with http_worker(env, root / "worker.log") as worker:
        yield worker


@pytest.fixture(scope="module")
def keyed_server(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("playground-key")
    env = {**worker_process_env(tiny_models, voice_library(root), root), "API_KEY": API_KEY}
    with http_worker(env, root / "worker.log") as worker:
        yield worker


@pytest.fixture(scope="module")
def browser():
    missing = browser_missing()
    if missing:  # a failure, not a skip: these tests are part of the suite
        pytest.fail(missing)
    with chromium() as driver:
        yield driver


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def wait_for(driver, script: str, timeout: float = 120, every: float = 0.05):
    """Poll a script until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = js(driver, script)
        if value:
            return value
        if time.monotonic() > deadline:
            page = js(driver, "return document.body.innerText")
            raise TimeoutError(f"{script!r} stayed false; the page says:\n{page[-2000:]}")
        time.sleep(every)


def open_page(driver, url: str) -> None:
    driver.get(f"{url}/")
    js(driver, "sessionStorage.clear()")
    driver.get(f"{url}/")
    driver.get_log("browser")  # only this load's messages from here on


def severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def voice_ids(driver) -> list[str]:
    return js(driver, "return [...document.getElementById('voice').options].map(o => o.value)")


def blob_bytes(driver, element_id: str) -> bytes:
    """The bytes a download link points at (a blob: URL), read by the page itself."""
    encoded = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).href).then(r => r.blob()).then(blob => {
          const reader = new FileReader();
          reader.onload = () => done(reader.result.split(",")[1]);
          reader.readAsDataURL(blob);
        }).catch(err => done("error: " + err));""",
        element_id,
    )
    assert not encoded.startswith("error:"), encoded
    return base64.b64decode(encoded)


def test_the_page_loads_ready_with_no_console_error_and_every_control_labelled(server, browser):
    open_page(browser, server.url)
    wait_for(browser, "return document.getElementById('worker-state').textContent.includes('Ready')")
    wait_for(browser, "return !document.getElementById('controls').disabled")
    ids = voice_ids(browser)
    assert ids[0] == "auto" and "belinda" in ids and "alloy" in ids  # presets and the library
    described = js(browser, "return [...document.querySelectorAll('#voice option')].map(o => o.textContent)")
    assert any("—" in text for text in described)  # presets show their descriptions
    unlabelled = js(
        browser,
        """return [...document.querySelectorAll('input, select, textarea')].filter(el =>
             !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.id)""",
    )
    assert unlabelled == []
    assert severe(browser) == []


def test_speaking_plays_before_the_job_is_done_then_offers_the_file_and_reads_along(server, browser, tmp_path):
    open_page(browser, server.url)
    wait_for(browser, "return !document.getElementById('controls').disabled")
    text = browser.find_element("id", "text")
    text.clear()
    text.send_keys(TEXT)
    browser.find_element("id", "seed").send_keys("11")
    js(browser, "document.getElementById('format').value = 'wav'")
    browser.find_element("id", "speak").click()

    # The audio element advances while the server still lists the request as generating.
    wait_for(browser, "return window.playgroundTimings.firstSound !== undefined", every=0.02)
    state = requests.get(f"{server.url}/v1/state", timeout=10).json()
    timings = js(browser, "return window.playgroundTimings")
    request_id = timings["requestId"]
    assert state["requests"].get(request_id) == "generating", (state, timings)
    assert js(browser, "return document.getElementById('player').currentTime") > 0
    assert "streamDone" not in timings

    wait_for(browser, "return document.getElementById('progress').textContent.startsWith('Done')", timeout=300)
    server.wait_log(f"job {request_id} done")
    timings = js(browser, "return window.playgroundTimings")
    assert timings["playing"] <= timings["firstSound"] < timings["streamDone"] < timings["timedDone"]
    first_bytes = next(line for line in server.log().splitlines() if f"request {request_id}: first audio bytes" in line)

    # The download is a valid audio file; the streamed MP3 is the same generation (same seed).
    wav, rate = sf.read(io.BytesIO(blob_bytes(browser, "download-audio")), dtype="float32")
    assert rate == 24000 and len(wav) > 5 * rate
    streamed = js(browser, "return document.querySelector('#downloads a').id = 'download-streamed'")
    assert streamed
    mp3, mp3_rate = sf.read(io.BytesIO(blob_bytes(browser, "download-streamed")), dtype="float32")
    assert mp3_rate == 24000 and len(wav) <= len(mp3) <= len(wav) + 2 * 1152  # the encoder's delay and padding
    captions = webvtt.from_buffer(io.StringIO(blob_bytes(browser, "download-subtitles").decode()))
    assert len(captions) >= 1 and captions[-1].end_in_seconds <= len(wav) / rate + 0.01

    seconds = {
        key: (timings[key] - timings["click"]) / 1000 for key in ("playing", "firstSound", "streamDone", "timedDone")
    }
    audio_s = len(wav) / rate
    print(
        f"\nplayground, tiny model on the CPU, {audio_s:.1f} s of audio: click -> playing {seconds['playing']:.2f} s, "
        f"-> first sound (currentTime > 0) {seconds['firstSound']:.2f} s, -> streamed file complete "
        f"{seconds['streamDone']:.2f} s, -> timed file (word times, subtitles) {seconds['timedDone']:.2f} s; "
        f"first sound / streamed file = {seconds['firstSound'] / seconds['streamDone']:.2f}; "
        f"server: {first_bytes.split(': ', 1)[1]}"
    )
    if os.environ.get("PLAYGROUND_SCREENSHOT"):
        js(browser, "document.getElementById('player').pause(); document.getElementById('player').currentTime = 1.0")
        wait_for(browser, "return document.querySelector('#words .current')")
        browser.save_screenshot(os.environ["PLAYGROUND_SCREENSHOT"])

    # Read-along: the word under currentTime is marked, and a click on a word seeks there.
    words = js(
        browser,
        "return [...document.querySelectorAll('#words .word')]"
        ".map(w => [Number(w.dataset.start), Number(w.dataset.end)])",
    )
    assert len(words) >= 10
    js(browser, "document.getElementById('player').pause()")
    for index in (1, len(words) // 2, len(words) - 2):
        start, end = words[index]
        js(browser, "document.getElementById('player').currentTime = arguments[0]", (start + end) / 2)
        marked = wait_for(
            browser,
            """const p = document.getElementById('player'); const on = [...document.querySelectorAll('#words .word')]
               .map((w, i) => w.classList.contains('current') ? i : -1).filter(i => i >= 0);
               return !p.seeking && on.length ? on : null""",
        )
        assert marked == [index]
        assert js(browser, "return document.querySelectorAll('#words [aria-current=true]').length") == 1
    target = len(words) // 3
    browser.find_elements("css selector", "#words .word")[target].click()
    wait_for(browser, "return !document.getElementById('player').seeking")
    now = js(browser, "const p = document.getElementById('player'); p.pause(); return p.currentTime")
    assert words[target][0] - 0.01 <= now < words[target][0] + 1.0
    # the same from the keyboard: a word is a button, Enter plays from it
    target = 2 * len(words) // 3
    browser.find_elements("css selector", "#words .word")[target].send_keys(Keys.ENTER)
    wait_for(browser, "return !document.getElementById('player').seeking && !document.getElementById('player').paused")
    now = js(browser, "const p = document.getElementById('player'); p.pause(); return p.currentTime")
    assert words[target][0] - 0.01 <= now < words[target][0] + 1.0
    # while it plays, the marked word is the one under currentTime (within a frame)
    js(browser, "document.getElementById('player').play()")
    for _ in range(5):
        time.sleep(0.3)
        now, marked = js(
            browser,
            """const p = document.getElementById('player'); const w = document.querySelector('#words .current');
               return [p.currentTime, w ? [Number(w.dataset.start), Number(w.dataset.end)] : null]""",
        )
        if marked is not None:
            assert marked[0] - 0.1 <= now <= marked[1] + 0.1, (now, marked)
    js(browser, "document.getElementById('player').pause()")


def test_a_designed_voice_and_a_cloned_voice_appear_in_the_picker(server, browser, tmp_path):
    open_page(browser, server.url)
    wait_for(browser, "return !document.getElementById('controls').disabled")
    for summary in browser.find_elements("css selector", "details summary"):
        summary.click()
    browser.find_element("id", "design-name").send_keys("playground_narrator")
    browser.find_element("id", "design-description").send_keys("A calm, low male voice, unhurried.")
    browser.find_element("id", "design-seed").send_keys("4")
    browser.find_element("css selector", "#design-form button[type=submit]").click()
    wait_for(browser, "return document.getElementById('voice').value === 'playground_narrator'", timeout=300)
    group = js(browser, "return document.querySelector('#voice option:checked').parentElement.label")
    assert group == "Your library"
    assert "calm, low male voice" in js(browser, "return document.getElementById('voice-description').textContent")

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(2.0))
    browser.find_element("id", "clone-name").send_keys("playground_clip")
    browser.find_element("id", "clone-file").send_keys(str(clip))
    browser.find_element("id", "clone-transcript").send_keys("A two second tone.")
    browser.find_element("css selector", "#clone-form button[type=submit]").click()
    wait_for(browser, "return document.getElementById('voice').value === 'playground_clip'")
    listed = {entry["id"] for entry in requests.get(f"{server.url}/v1/audio/voices", timeout=10).json()["data"]}
    assert {"playground_narrator", "playground_clip"} <= listed
    assert severe(browser) == []


def test_a_cold_start_shows_the_ping_state_until_the_model_is_ready(tiny_models, tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("playground-cold")
    env = worker_process_env(tiny_models, voice_library(root), root)
    with http_worker(env, root / "worker.log", until=204) as worker:
        assert worker.ping_codes[-1] == 204, worker.ping_codes  # serving, model still loading
        browser.get(f"{worker.url}/")
        starting = wait_for(
            browser,
            "const t = document.getElementById('worker-state').textContent; return !t.startsWith('Checking') && t",
            timeout=10,
        )
        assert "the model is loading (/ping 204)" in starting
        wait_for(browser, "return document.getElementById('worker-state').textContent.includes('Ready (/ping 200)')")
        assert js(browser, "return document.getElementById('worker-state').getAttribute('role')") == "status"


def test_stop_ends_the_jobs_on_the_worker(server, browser):
    """Stop aborts both requests; the worker sees the disconnects and stops generating."""
    open_page(browser, server.url)
    wait_for(browser, "return !document.getElementById('controls').disabled")
    js(browser, "document.getElementById('text').value = arguments[0]", TEXT)
    browser.find_element("id", "speak").click()
    wait_for(browser, "return window.playgroundTimings.firstSound !== undefined", every=0.02)
    request_id = js(browser, "return window.playgroundTimings.requestId")
    browser.find_element("id", "stop").click()
    assert js(browser, "return document.getElementById('progress').textContent") == "Stopped."
    wait_for_server = time.monotonic() + 60
    while requests.get(f"{server.url}/v1/state", timeout=10).json()["requests"]:
        assert time.monotonic() < wait_for_server, "the worker kept generating after Stop"
        time.sleep(0.2)
    server.wait_log(f"request {request_id}: the client disconnected; stopping its generation")
    assert js(browser, "return document.getElementById('error').hidden")
    assert not js(browser, "return document.getElementById('speak').disabled")


def test_bad_input_gets_a_clear_message(server, browser):
    open_page(browser, server.url)
    wait_for(browser, "return !document.getElementById('controls').disabled")
    js(browser, "document.getElementById('text').value = 'word '.repeat(200)")  # 1000 > MAX_TEXT_CHARS 600
    browser.find_element("id", "speak").click()
    message = wait_for(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent")
    assert message.startswith("Check the input:") and "input_too_long" in message
    assert js(browser, "return document.getElementById('error').getAttribute('role')") == "alert"
    assert not js(browser, "return document.getElementById('speak').disabled")


def test_with_an_api_key_the_page_asks_once_and_a_wrong_key_is_told(keyed_server, browser):
    open_page(browser, keyed_server.url)
    wait_for(browser, "return !document.getElementById('key-form').hidden")
    assert "needs an API key" in js(browser, "return document.getElementById('key-message').textContent")
    assert js(browser, "return document.getElementById('controls').disabled")
    assert voice_ids(browser) == []  # nothing listed without the key

    browser.find_element("id", "api-key").send_keys("not-the-key\n")
    message = wait_for(
        browser,
        """const m = document.getElementById('key-message').textContent;
           return !document.getElementById('key-form').hidden && m.includes('refused') && m""",
    )
    assert "That API key was refused" in message and "invalid_api_key" in message
    assert voice_ids(browser) == []

    browser.find_element("id", "api-key").send_keys(API_KEY + "\n")
    wait_for(browser, "return !document.getElementById('controls').disabled")
    assert js(browser, "return document.getElementById('key-form').hidden")
    assert "belinda" in voice_ids(browser)
    browser.refresh()  # asked once: the tab keeps it
    wait_for(browser, "return !document.getElementById('controls').disabled")
    assert js(browser, "return document.getElementById('key-form').hidden")
    assert API_KEY not in browser.page_source
