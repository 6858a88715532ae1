// The Higgs Audio playground: plain JavaScript, no build step, no third-party host.
// Every request uses a relative path, so the page works wherever the worker is served
// (localhost, RunPod's load-balancing URL). docs/playground.md.
//
// Speak = two requests with one seed:
//   1. POST v1/audio/speech (mp3, streamed): appended to a MediaSource while it arrives,
//      so the first sound comes with the first decoded chunk;
//   2. POST v1/synthesize (the chosen format, loudness, word_timestamps, vtt subtitles),
//      sent once the stream's first bytes are in (the stream then holds the generation
//      slot, so it is served first): the file to download and the words to read along.
//      Same seed, same text, same worker: the same audio, so its word times fit the stream.
"use strict";

const KEY_STORE = "higgs-playground-api-key";
const MODEL = "higgs-audio-v2";
const $ = (id) => document.getElementById(id);

// What the browser tests read: performance.now() of the click, of the "playing" event and of
// the first timeupdate past 0 (first sound), of the stream's last byte and of the timed file;
// the request id of the stream.
const timings = (window.playgroundTimings = {});

class ApiFailure extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    Object.assign(this, { status, code, retryAfter });
  }
}

// -- requests ---------------------------------------------------------------------

function authHeaders(extra = {}) {
  const headers = new Headers(extra);
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return headers;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiFailure(0, "unreachable", "The worker did not answer (network error, or it is starting).");
  }
  if (response.ok) return response;
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch (_) {
    // not our JSON: a gateway's page
  }
  throw new ApiFailure(
    response.status,
    error.code || "",
    error.message || response.statusText || "request failed",
    response.headers.get("Retry-After"),
  );
}

const postJson = (path, body, signal) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });

// -- messages ---------------------------------------------------------------------

function explain(failure) {
  const detail = failure.code ? `${failure.message} (${failure.code})` : failure.message;
  switch (true) {
    case failure.status === 401:
      return `The API key was refused: ${detail}`;
    case failure.status === 429:
      return `The worker is busy (429): ${detail}. Try again in a few seconds.`;
    case failure.code === "model_loading":
      return "The model is still loading (cold start). Try again when the worker says it is ready.";
    case failure.status === 503:
      return `The worker cannot serve this now (503): ${detail}`;
    case failure.status >= 400 && failure.status < 500:
      return `Check the input: ${detail}`;
    case failure.status === 0:
      return failure.message;
    default:
      return `The worker failed (${failure.status}): ${detail}`;
  }
}

function showError(err) {
  if (err && err.name === "AbortError") return;
  if (err instanceof ApiFailure && err.status === 401) return askForKey(err);
  const box = $("error");
  box.textContent = err instanceof ApiFailure ? explain(err) : `Unexpected error: ${err}`;
  box.hidden = false;
  if (err instanceof ApiFailure && (err.status === 503 || err.status === 0)) watchPing();
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// -- the worker's state: GET ping, until it says ready ------------------------------

let pingTimer = null;

async function watchPing() {
  clearTimeout(pingTimer);
  let text, ready = false;
  try {
    // the worker answers /ping without a key; RunPod's gateway wants its own on every path
    const response = await fetch("ping", { cache: "no-store", headers: authHeaders() });
    if (response.status === 200) [text, ready] = ["Ready (/ping 200).", true];
    else if (response.status === 204) text = "Starting: the model is loading (/ping 204). The page waits for it.";
    else if (response.status === 503) text = "Unhealthy: the model could not be loaded (/ping 503). See the worker's log.";
    else text = `The worker answered /ping with ${response.status}; it may still be starting.`;
  } catch (_) {
    text = "No answer from the worker: it may be starting (cold start). Retrying.";
  }
  $("worker-state").textContent = text;
  if (!ready) pingTimer = setTimeout(watchPing, 2000);
}

// -- the API key: asked once, kept in session storage ------------------------------

function askForKey(failure) {
  const hadKey = sessionStorage.getItem(KEY_STORE) !== null;
  sessionStorage.removeItem(KEY_STORE);
  $("controls").disabled = true;
  $("key-message").textContent = hadKey
    ? `That API key was refused by the worker (401 ${failure.code || ""}). Check it and enter it again.`
    : "This worker needs an API key before it lists voices or speaks.";
  $("key-form").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

async function useKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
  $("key-form").hidden = true;
  await loadVoices();
}

// -- voices -----------------------------------------------------------------------

let voiceDescriptions = {};

async function loadVoices(select) {
  let list;
  try {
    list = await (await api("v1/audio/voices")).json();
  } catch (err) {
    return showError(err);
  }
  clearError();
  const picker = $("voice");
  const previous = select || picker.value || "auto";
  picker.replaceChildren();
  voiceDescriptions = {};
  const groups = { preset: "Presets", library: "Your library" };
  for (const [source, label] of Object.entries(groups)) {
    const group = document.createElement("optgroup");
    group.label = label;
    for (const voice of list.data.filter((v) => (v.source || "library") === source)) {
      const option = new Option(voice.description ? `${voice.id} — ${voice.description}` : voice.id, voice.id);
      voiceDescriptions[voice.id] = voice.description || "";
      group.append(option);
    }
    if (group.children.length) picker.append(group);
  }
  picker.value = voiceDescriptions[previous] !== undefined ? previous : "auto";
  describeVoice();
  $("controls").disabled = false;
}

function describeVoice() {
  const description = voiceDescriptions[$("voice").value];
  $("voice-description").textContent = description || "";
}

async function designVoice(event) {
  event.preventDefault();
  const button = event.submitter;
  const body = { name: $("design-name").value.trim(), description: $("design-description").value.trim() };
  if ($("design-seed").value !== "") body.seed = Number($("design-seed").value);
  await busy(button, "Designing…", async () => {
    const entry = await (await postJson("v1/audio/voices/design", body)).json();
    await loadVoices(entry.id);
    $("progress").textContent = `Voice “${entry.id}” designed and saved; it is selected.`;
  });
}

async function cloneVoice(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("clone-name").value.trim());
  form.append("file", $("clone-file").files[0]);
  if ($("clone-transcript").value.trim()) form.append("transcript", $("clone-transcript").value.trim());
  await busy(event.submitter, "Uploading…", async () => {
    const entry = await (await api("v1/audio/voices", { method: "POST", body: form })).json();
    await loadVoices(entry.id);
    $("progress").textContent = `Voice “${entry.id}” saved from the clip; it is selected.`;
  });
}

async function busy(button, label, work) {
  const text = button.textContent;
  button.disabled = true;
  button.textContent = label;
  clearError();
  try {
    await work();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
    button.textContent = text;
  }
}

// -- speak: stream, then the timed file --------------------------------------------

let current = null; // { controller, urls }

function speakRequest() {
  const seedText = $("seed").value;
  const seed = seedText === "" ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  const voice = $("voice").value;
  const common = { seed };
  if (voice && voice !== "auto") common.voice = voice;
  if ($("scene").value.trim()) common.scene_description = $("scene").value.trim();
  const loudness = $("loudness").value;
  return {
    seed,
    stream: { model: MODEL, input: $("text").value, response_format: "mp3", voice: voice || "auto", ...common },
    timed: {
      input: {
        text: $("text").value,
        ...common,
        output_format: $("format").value,
        subtitles: "vtt",
        word_timestamps: $("read-along").checked,
        ...(loudness === "" ? {} : { loudness_lufs: Number(loudness) }),
      },
    },
  };
}

async function speak(event) {
  event.preventDefault();
  stop();
  clearError();
  for (const key of Object.keys(timings)) delete timings[key];
  timings.click = performance.now();
  const request = speakRequest();
  const controller = new AbortController();
  const player = $("player");
  const run = (current = { controller, urls: [] });
  $("words").replaceChildren();
  $("downloads").replaceChildren();
  $("progress").textContent = `Generating (seed ${request.seed})…`;
  $("speak").disabled = true;
  $("stop").disabled = false;

  // The audio element gets its MediaSource inside the click, so play() keeps the user's gesture.
  const streamed = streamingPlayer(player, run);
  try {
    const response = await postJson("v1/audio/speech", request.stream, controller.signal);
    timings.requestId = response.headers.get("X-Request-Id");
    const timed = postJson("v1/synthesize", request.timed, controller.signal).then((r) => r.json());
    timed.catch(() => {}); // reported below, after the stream
    const mp3 = await streamed.consume(response);
    timings.streamDone = performance.now();
    offerDownload(mp3, `speech-${request.seed}-streamed.mp3`, "the streamed MP3 (as heard)");
    $("progress").textContent = `Stream complete (first sound after ${seconds(timings.firstSound)}). Preparing the file…`;
    showTimed(await timed, request);
  } catch (err) {
    streamed.abandon();
    if (err.name !== "AbortError") {
      showError(err);
      $("progress").textContent = "";
    }
  } finally {
    if (current === run || current === null) {
      $("speak").disabled = false;
      $("stop").disabled = true;
    }
  }
}

function seconds(at) {
  return at === undefined ? "—" : `${((at - timings.click) / 1000).toFixed(2)} s`;
}

function stop() {
  if (!current) return;
  current.controller.abort();
  for (const url of current.urls) URL.revokeObjectURL(url);
  $("player").pause();
  current = null;
}

// MediaSource with MP3 where the browser has it (Chromium, Firefox, Safari 17+); else the
// whole body, played once it is in.
function streamingPlayer(player, run) {
  const chunks = [];
  const live = window.MediaSource && MediaSource.isTypeSupported("audio/mpeg");
  let source = null;
  let opened = null;
  if (live) {
    source = new MediaSource();
    opened = new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
    const url = URL.createObjectURL(source);
    run.urls.push(url);
    player.src = url;
    player.play().catch(() => {}); // starts when the first chunk is buffered
  }
  const markFirstSound = () => {
    if (timings.firstSound === undefined && player.currentTime > 0) {
      timings.firstSound = performance.now();
      timings.firstSoundTime = player.currentTime;
      player.removeEventListener("timeupdate", markFirstSound);
      $("progress").textContent = `Playing while it is generated (first sound after ${seconds(timings.firstSound)})…`;
    }
  };
  const markPlaying = () => {
    if (timings.playing === undefined) timings.playing = performance.now();
  };
  player.addEventListener("playing", markPlaying, { once: true });
  player.addEventListener("timeupdate", markFirstSound);
  return {
    async consume(response) {
      const reader = response.body.getReader();
      let buffer = null;
      if (live) {
        await opened;
        buffer = source.addSourceBuffer("audio/mpeg");
      }
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        if (buffer) {
          buffer.appendBuffer(value);
          await new Promise((resolve) => buffer.addEventListener("updateend", resolve, { once: true }));
        }
      }
      const mp3 = new Blob(chunks, { type: "audio/mpeg" });
      if (live) {
        if (source.readyState === "open") source.endOfStream();
      } else {
        const url = URL.createObjectURL(mp3);
        run.urls.push(url);
        player.src = url;
        await player.play().catch(() => {});
      }
      return mp3;
    },
    abandon() {
      player.removeEventListener("playing", markPlaying);
      player.removeEventListener("timeupdate", markFirstSound);
    },
  };
}

function offerDownload(blobOrUrl, name, label) {
  const link = document.createElement("a");
  if (typeof blobOrUrl === "string") {
    link.href = blobOrUrl;
  } else {
    link.href = URL.createObjectURL(blobOrUrl);
    if (current) current.urls.push(link.href);
  }
  link.download = name;
  link.textContent = `Download ${label}`;
  $("downloads").append(link, " ");
  return link;
}

function base64Blob(text, type) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

function showTimed(output, request) {
  timings.timedDone = performance.now();
  const ext = { ogg: "ogg", opus: "opus" }[output.format] || output.format;
  const name = `speech-${output.seed}.${ext}`;
  const file = output.audio_base64 ? base64Blob(output.audio_base64, output.content_type) : output.audio_url;
  if (file) offerDownload(file, name, `the file (${output.format}, ${output.duration_s.toFixed(1)} s)`).id = "download-audio";
  const subtitles = output.subtitles;
  if (subtitles && (subtitles.text || subtitles.url)) {
    const vtt = subtitles.text ? new Blob([subtitles.text], { type: subtitles.content_type }) : subtitles.url;
    offerDownload(vtt, `speech-${output.seed}.vtt`, "the subtitles (WebVTT)").id = "download-subtitles";
  }
  renderWords(output.segments || []);
  $("progress").textContent =
    `Done: first sound after ${seconds(timings.firstSound)}, stream complete after ${seconds(timings.streamDone)}, ` +
    `file ready after ${seconds(timings.timedDone)} (seed ${request.seed}).`;
}

// -- read-along ---------------------------------------------------------------------

let wordSpans = [];

function renderWords(segments) {
  const box = $("words");
  box.replaceChildren();
  wordSpans = [];
  for (const segment of segments) {
    const line = document.createElement("p");
    for (const word of segment.words || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "word";
      button.textContent = word.word;
      button.dataset.start = word.start_s;
      button.dataset.end = word.end_s;
      button.setAttribute("aria-label", `${word.word}, at ${word.start_s.toFixed(1)} seconds`);
      button.addEventListener("click", () => seek(word.start_s));
      line.append(button, " ");
      wordSpans.push(button);
    }
    if (!segment.words) line.textContent = segment.text;
    box.append(line);
  }
  highlight();
}

function seek(at) {
  const player = $("player");
  player.currentTime = at;
  player.play().catch(() => {});
  highlight();
}

// The word under currentTime is marked (class "current", aria-current) on every frame while playing.
function highlight() {
  const now = $("player").currentTime;
  for (const span of wordSpans) {
    const on = Number(span.dataset.start) <= now && now < Number(span.dataset.end);
    span.classList.toggle("current", on);
    if (on) span.setAttribute("aria-current", "true");
    else span.removeAttribute("aria-current");
  }
}

function followPlayback() {
  if (!$("player").paused) highlight();
  requestAnimationFrame(followPlayback);
}

// -- start ----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("speak-form").addEventListener("submit", speak);
  $("stop").addEventListener("click", () => {
    stop();
    $("progress").textContent = "Stopped.";
  });
  $("design-form").addEventListener("submit", designVoice);
  $("clone-form").addEventListener("submit", cloneVoice);
  $("voice").addEventListener("change", describeVoice);
  $("player").addEventListener("seeked", highlight);
  requestAnimationFrame(followPlayback);
  watchPing();
  loadVoices();
});
