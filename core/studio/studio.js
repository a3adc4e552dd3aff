// museforge studio: generators as forms, results in a gallery, on the gateway's public routes
// alone (/v1/...). No library, nothing fetched from elsewhere.

import { ApiError, call, keyProblem, lines, session, setKey, whenKeyRefused } from "./api.js";
import {
  FormError, field, parameters as formValues, resolve, setValue, showErrors as showFieldErrors,
} from "./forms.js";
import { setupDraw } from "./draw_view.js";
import { listJobs, setupJobs } from "./jobs_view.js";
import { meshViewer } from "./mesh_view.js";

const state = { generators: [], effects: [], current: null, kind: "", running: null };
const $ = (id) => document.getElementById(id);

// -- the API key ---------------------------------------------------------------------------------
function askForKey(message) {
  $("key-error").textContent = message || "";
  $("key-input").value = "";
  if (!$("key-dialog").open) $("key-dialog").showModal();
  $("key-input").focus();
}

function setupKey() {
  $("key-button").addEventListener("click", () => askForKey(""));
  $("key-cancel").addEventListener("click", () => $("key-dialog").close());
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!setKey(key)) {  // not kept: the dialog stays open and says what is wrong with it
      $("key-error").textContent = keyProblem(key);
      $("key-input").select();
      return;
    }
    $("key-dialog").close();
    await connect();
  });
  // Any call the server refuses for its key (a Generate too) asks for another in the dialog.
  whenKeyRefused((error) => {
    $("server-state").textContent = "Needs an API key";
    needKey();
    askForKey(session.key ? `The server refused this key: ${error.message}` : "");
  });
}

// Cancelled, the dialog would leave the lists empty: say why where they would be, with a way back.
function needKey() {
  for (const [list, what] of [[$("generators"), "generators"], [$("effects"), "effects"]]) {
    if (list.querySelector("[data-generator], [data-effect]")) continue;  // listed with an earlier key
    const again = document.createElement("button");
    again.type = "button";
    again.textContent = "Enter an API key";
    again.addEventListener("click", () => askForKey(""));
    const item = document.createElement("li");
    item.className = "needs-key";
    item.append(`The ${what} are listed once this server has your API key.`, again);
    list.replaceChildren(item);
  }
}

// -- the generators --------------------------------------------------------------------------------
async function connect() {
  $("server-state").textContent = "Connecting…";
  try {
    const generators = await (await call("GET", "/v1/generators")).json();
    const effects = await (await call("GET", "/v1/effects")).json();
    state.generators = generators.generators.filter((g) => g.available);
    state.effects = effects.effects.filter((e) => e.available);
    $("server-state").textContent =
      `${state.generators.length} generators and ${state.effects.length} effects ready`;
    list($("generators"), state.generators, "generator");
    list($("effects"), state.effects, "effect");
  } catch (error) {
    if (error.status === 401) return;  // already in the key dialog (whenKeyRefused)
    if (error.status === 403) {
      $("server-state").textContent = "Needs an API key";
      needKey();
      askForKey(`The server refused this key: ${error.message}`);
    } else {
      $("server-state").textContent = `Cannot reach the server: ${error.message}`;
    }
  }
}

function list(element, entries, kind) {
  element.replaceChildren();
  for (const entry of entries) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = entry.name;
    button.title = entry.description;
    button.dataset[kind] = entry.name;
    button.addEventListener("click", () => choose(entry, kind));
    item.append(button);
    element.append(item);
  }
}

function showView(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.setAttribute("aria-current", String(button.dataset.view === name));
  }
  $("workbench").hidden = true;
  $("jobs-panel").hidden = name !== "jobs";
  $("draw-panel").hidden = name !== "draw";
  if (name === "jobs") {
    setupJobs(state.effects);
    listJobs();
  } else {
    setupDraw();
  }
}

function choose(generator, kind) {
  state.current = generator;
  state.kind = kind;
  if (state.said) say(state.said.generator, state.said.text);  // the call's line, named if not this form's
  $("workbench").hidden = false;
  $("jobs-panel").hidden = true;
  $("draw-panel").hidden = true;
  for (const button of document.querySelectorAll("nav button")) {
    button.setAttribute("aria-current", String(button.dataset[kind] === generator.name));
  }
  const takesFiles = kind === "effect";
  $("inputs-box").hidden = !takesFiles;
  $("files").value = "";  // files picked for another effect are not this one's
  $("generate-button").textContent = takesFiles ? "Apply" : "Generate";
  $("count-box").hidden = takesFiles;
  if (takesFiles) {
    const { minInputs: least, maxInputs: most } = generator;  // "2 files", not "2 to 2 files"
    const many = most <= 1 ? "one file" : least === most ? `${most} files` : `${least} to ${most} files`;
    const video = takesFrames(generator) ? `; or one video, ${VIDEOS.join(", ")}: each frame, a video back` : "";
    $("files-help").textContent = `(${many}: ${generator.inputFormats.join(", ")}${video})`;
    $("files").multiple = generator.maxInputs > 1;
    $("files").accept = acceptOf(generator);
  }
  $("generator-title").textContent = generator.name;
  $("generator-description").textContent = generator.description;
  const schema = JSON.parse(generator.parametersSchema || "{}");
  $("fields").replaceChildren(...Object.entries(schema.properties || {}).map(([name, property]) =>
    field(name, resolve(property, schema), (schema.required || []).includes(name))));
  offerFormats(generator.formats);
  $("count").max = String(generator.maxCount || 1);
  showErrors({ message: "", violations: [] });  // another form's errors are not this one's
  $("generate-form").hidden = false;
}

// A frame-wise effect (one image in, reading no video itself) also takes one video: the server runs
// every frame through it and sends a video back (MP4 or MOV), so the formats follow the file picked.
const VIDEOS = ["mp4", "mov", "mkv", "webm"];
const VIDEO_OUTPUTS = ["mp4", "mov"];

function takesFrames(effect) {
  return effect.minInputs === 1 && !effect.inputFormats.some((f) => VIDEOS.includes(f));
}

// The computer's file chooser offers the effect's own input formats (a frame-wise one's videos too),
// by extension and media type. A format the page does not know, or none listed, leaves every file
// pickable: the server still says which it takes.
const FILE_TYPES = {
  png: ".png,image/png", png16: ".png,image/png", jpeg: ".jpg,.jpeg,image/jpeg", webp: ".webp,image/webp",
  exr: ".exr,image/x-exr", mp4: ".mp4,video/mp4", mov: ".mov,video/quicktime", mkv: ".mkv,video/x-matroska",
  webm: ".webm,video/webm", wav: ".wav,audio/wav", flac: ".flac,audio/flac", ogg: ".ogg,audio/ogg",
  mp3: ".mp3,audio/mpeg",
};

function acceptOf(effect) {
  const formats = [...effect.inputFormats, ...(takesFrames(effect) ? VIDEOS : [])];
  if (!formats.length || formats.some((f) => !FILE_TYPES[f])) return "";
  return [...new Set(formats.flatMap((f) => FILE_TYPES[f].split(",")))].join(",");
}

function isVideo(file) {
  return file.type.startsWith("video/") || VIDEOS.includes(file.name.split(".").pop().toLowerCase());
}

function offerFormats(formats) {
  $("format").replaceChildren(...(state.kind === "effect" ? [new Option("(as the input)", "")] : []),
    ...formats.map((f) => new Option(f, f)));
}

function filesPicked() {
  const effect = state.current;
  if (state.kind !== "effect" || !takesFrames(effect)) return;
  const video = [...$("files").files].some(isVideo);
  const formats = video ? VIDEO_OUTPUTS : effect.formats;
  if ([...$("format").options].slice(1).map((o) => o.value).join() !== formats.join()) offerFormats(formats);
}

// -- generating ---------------------------------------------------------------------------------------
function parameters() {
  return formValues($("fields"));
}

// The request the form asks for, files aside; a FormError names the fields it cannot read.
function formRequest() {
  const problems = [];
  let values = {};
  try {
    values = parameters();
  } catch (error) {
    if (!(error instanceof FormError)) throw error;
    problems.push(...error.violations);
  }
  const request = { parameters: values, format: $("format").value };
  for (const name of ["seed", "count"]) {
    if ($(name).validity.badInput) problems.push({ field: name, description: "not a number" });
  }
  if (state.kind === "effect") {
    request.effect = state.current.name;
  } else {
    request.generator = state.current.name;
    const count = Number($("count").value || 1);
    // 0 would be taken as the default (1) by the server: say so rather than make one silently.
    if (!Number.isInteger(count) || count < 1) {
      problems.push({ field: "count", description: "must be a whole number, 1 or more" });
    }
    request.count = count;
  }
  if ($("seed").value !== "") request.seed = $("seed").value;
  if (problems.length) throw new FormError(problems);
  return request;
}

async function withFiles(request, files) {
  const inputs = await Promise.all(files.map(async (file) =>
    ({ name: file.name, data: base64Of(new Uint8Array(await file.arrayBuffer())) })));
  return { ...request, inputs };
}

function showErrors(error) {
  showFieldErrors(error, document.getElementById("generate-form"), $("form-error"));
}

// One call at a time, taken on the very click that asks for it (before any file is read): a
// double click or a Regenerate during a call starts nothing, and Stop always reaches the call.
function begin() {
  if (state.running) return null;
  state.running = new AbortController();
  busy(true);
  return state.running;
}

function busy(on) {
  $("generate-button").disabled = on;
  $("stop-button").disabled = !on;
  for (const button of document.querySelectorAll("#gallery .actions button")) button.disabled = on;
}

// `pending`: the request, or a promise of it (files still being read). `keep`: the index of the one
// artifact wanted (Regenerate of one of several), or null for all.
async function generate(controller, pending, keep = null) {
  const { current: generator, kind } = state;
  const path = kind === "effect" ? `/v1/effects/${encodeURIComponent(generator.name)}:stream`
    : `/v1/generators/${encodeURIComponent(generator.name)}:stream`;
  $("progress-box").hidden = false;
  $("progress").removeAttribute("value");
  say(generator, "Starting…");
  $("generate-status").textContent = "";
  showErrors({ message: "", violations: [] });
  let request = null;
  try {
    request = await pending;
    const response = await call("POST", path, request, controller.signal);
    let seed = request.seed;
    const group = { morph: null, mixes: new Map(), members: [], alone: keep !== null }; // what its artifacts share
    for await (const line of lines(response.body)) {
      if (line.error) throw new ApiError(line.error.code || 500, line.error);
      const event = line.result || {};
      if (event.seed !== undefined) seed = event.seed;
      if (event.progress) progress(event.progress, generator);
      if (event.artifact && (keep === null || (event.artifact.index || 0) === keep)) {
        place(generator, kind, { ...request, seed }, event.artifact, group);
      }
    }
    say(generator, "Done");
    // Announced, and says where: beside the form on a wide screen, below it on a phone.
    const made = group.members.length;
    $("generate-status").textContent = `${made === 1 ? "1 result" : `${made} results`} added to Results, newest first.`;
    $("progress").max = 1;
    $("progress").value = 1;
  } catch (error) {
    if (error.name === "AbortError") {
      say(generator, "Stopped");
      $("progress").value = Number($("progress").value) || 0;  // no longer the busy animation
    } else {
      $("progress-box").hidden = true;  // refused or failed: the error says so, nothing is running
      showErrors(error.status === 413 && request?.inputs ? tooLarge(request.inputs) : error);
    }
  } finally {
    state.running = null;
    busy(false);
  }
}

// Files travel base64 in the JSON body, which the gateway bounds (http_max_body_bytes): said under
// the files in their own size, rather than as the body's byte count and a setting's name.
function tooLarge(inputs) {
  const megabytes = inputs.reduce((sum, input) => sum + input.data.length * 0.75, 0) / 1e6;
  return { message: "", violations: [{ field: "inputs", description: `${megabytes.toFixed(1)} MB of files `
    + "is more than this server takes in one request: pick smaller or fewer files (long footage: a batch job)" }] };
}

function progress(event, generator) {
  const total = Number(event.total || 0);
  const done = Number(event.completed || 0);
  if (total > 0) {
    $("progress").max = total;
    $("progress").value = done;
  }
  say(generator, `${event.stage || "working"}${total ? ` ${done} of ${total}` : ""}`);
}

// The progress line belongs to the call: under another generator's form it says whose it is.
function say(generator, text) {
  state.said = { generator, text };
  $("progress-label").textContent = state.current === generator ? text : `${generator.name}: ${text}`;
}

// -- the gallery ------------------------------------------------------------------------------------------
function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function base64Of(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function provenanceOf(artifact) {
  const record = { ...artifact.metadata };
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === "string" && (value.startsWith("[") || value.startsWith("{"))) {
      try { record[key] = JSON.parse(value); } catch { /* plain text */ }
    }
  }
  return record;
}

function morphing(request, artifact) {
  return request.parameters?.interpolate_to !== undefined && artifact.mediaType.startsWith("image/");
}

// A morph's frames share one card with a slider; a piece's stems join its mix's card.
function place(generator, kind, request, artifact, group) {
  const part = artifact.metadata?.part;
  if (part && group.mixes.has(artifact.index || 0)) {
    addStem(group.mixes.get(artifact.index || 0), part, artifact);
  } else if (morphing(request, artifact) && group.morph) {
    addFrame(group.morph, artifact);
  } else {
    const card = addCard(generator, request, artifact, kind, group);
    if (morphing(request, artifact)) group.morph = startMorph(card, artifact);
    if (card.querySelector("audio")) group.mixes.set(artifact.index || 0, card);
  }
}

function startMorph(card, artifact) {
  const image = card.querySelector("img");
  const label = document.createElement("label");
  label.textContent = "Frame";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "0";
  slider.value = "0";
  slider.className = "morph";
  slider.setAttribute("aria-label", "morph frame");
  label.append(slider);
  image.after(label);
  const morph = { card, image, slider, urls: [image.src], names: [artifact.filename] };
  slider.addEventListener("input", () => {
    image.src = morph.urls[Number(slider.value)];
    card.querySelector("h3").textContent = morph.names[Number(slider.value)];
  });
  return morph;
}

function addFrame(morph, artifact) {
  const blob = new Blob([bytesOf(artifact.data)], { type: artifact.mediaType });
  morph.urls.push(URL.createObjectURL(blob));
  morph.names.push(artifact.filename);
  morph.slider.max = String(morph.urls.length - 1);
  morph.card.dataset.frames = String(morph.urls.length);
}

function addStem(card, part, artifact) {
  const player = card.querySelector("audio");
  let select = card.querySelector("select.stems");
  if (!select) {
    select = document.createElement("select");
    select.className = "stems";
    select.setAttribute("aria-label", "listen to");
    select.append(new Option("the mix", player.src));
    select.addEventListener("change", () => {
      const playing = !player.paused;
      player.src = select.value;
      if (playing) player.play();
    });
    player.after(select);
  }
  const url = URL.createObjectURL(new Blob([bytesOf(artifact.data)], { type: artifact.mediaType }));
  select.append(new Option(part, url));
}

function addCard(generator, request, artifact, kind, group = { members: [] }) {
  const bytes = bytesOf(artifact.data);
  const url = URL.createObjectURL(new Blob([bytes], { type: artifact.mediaType }));
  const card = document.createElement("li");
  card.className = "card";
  card.dataset.generator = generator.name;
  card.dataset.kind = kind;
  card.dataset.mediaType = artifact.mediaType;
  const title = document.createElement("h3");
  title.textContent = artifact.filename;
  card.append(title);
  if (artifact.mediaType.startsWith("image/")) card.append(...imageView(url, artifact, request));
  else if (artifact.mediaType.startsWith("audio/")) card.append(...audioView(url, bytes, artifact, request.parameters?.loop));
  else if (artifact.mediaType === "model/gltf-binary") card.append(meshViewer(bytes, artifact.filename));
  else if (artifact.mediaType.startsWith("video/")) card.append(videoView(url));
  else if (/json|text|xml/.test(artifact.mediaType)) card.append(textView(bytes));
  // Regenerate remakes this artifact: all of a morph's frames, else the one of this index.
  const keep = morphing(request, artifact) ? null : artifact.index || 0;
  card.append(details(generator, request, artifact), cardActions(generator, request, url, artifact.filename, kind, keep));
  group.members.push({ artifact, bytes, kind });
  if (globalThis.crypto?.subtle) card.append(rating(artifact, bytes, kind, request, group));  // hashing needs a secure context
  $("gallery").prepend(card);
  $("gallery-empty").hidden = true;
  return card;
}

function imageView(url, artifact, request) {
  const image = document.createElement("img");
  image.src = url;
  image.alt = `${artifact.filename}: generated image`;
  image.tabIndex = 0;
  const zoom = () => {
    const big = image.cloneNode();
    $("zoom-view").replaceChildren(big);
    $("zoom-dialog").showModal();
  };
  image.addEventListener("click", zoom);
  image.addEventListener("keydown", (event) => { if (event.key === "Enter") zoom(); });
  const parts = [image];
  if (request.parameters.tileable || /tiles|texture/.test(request.generator || "")) {
    const tiled = document.createElement("div");
    tiled.className = "tiled";
    tiled.style.backgroundImage = `url("${url}")`;
    tiled.setAttribute("role", "img");
    tiled.setAttribute("aria-label", "the same image repeated 3 by 3, to check it tiles");
    parts.push(tiled);
  }
  return parts;
}

// MIDI is a score, not sound: no browser plays or decodes it, so it is offered to download.
const MIDI = ["audio/midi", "audio/x-midi", "audio/mid"];

function audioView(url, bytes, artifact, loop) {
  if (MIDI.includes(artifact.mediaType)) {
    const note = document.createElement("p");
    note.className = "midi";
    note.textContent = "MIDI: notes for a synthesizer or a DAW, which the browser cannot play. "
      + "Download it to open it there.";
    return [note];
  }
  const player = document.createElement("audio");
  player.controls = true;
  player.src = url;
  const parts = [player];
  if (loop) parts.push(...loopButton(bytes));
  const canvas = document.createElement("canvas");
  canvas.width = 600;
  canvas.height = 60;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "waveform");
  drawWaveform(canvas, bytes).catch(() => canvas.remove());
  return [...parts, canvas];
}

// A loop played by the Web Audio API, which repeats a buffer with no gap (an <audio loop> may pause
// at the seam while it seeks back).
function loopButton(bytes) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Play as a loop";
  button.setAttribute("aria-pressed", "false");
  const said = document.createElement("span");
  said.setAttribute("role", "status");
  let playing = null;
  const stopped = () => {
    playing = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Play as a loop";
  };
  button.addEventListener("click", async () => {
    button.disabled = true;  // decoding or closing takes a while: one click at a time
    said.textContent = "";
    try {
      if (playing) {
        const context = playing;
        stopped();
        await context.close();
        return;
      }
      playing = new AudioContext();
      const source = playing.createBufferSource();
      source.buffer = await playing.decodeAudioData(bytes.slice().buffer);
      source.loop = true;
      source.connect(playing.destination);
      source.start();
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Stop the loop";
    } catch (error) {
      if (playing) playing.close().catch(() => {});
      stopped();
      said.textContent = `Cannot play this as a loop: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return [button, said];
}

async function drawWaveform(canvas, bytes) {
  const context = new AudioContext();
  try {
    const sound = await context.decodeAudioData(bytes.slice().buffer);
    const samples = sound.getChannelData(0);
    const draw = canvas.getContext("2d");
    const step = Math.max(1, Math.floor(samples.length / canvas.width));
    draw.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--accent") || "#2a5d9f";
    for (let x = 0; x < canvas.width; x += 1) {
      let low = 1;
      let high = -1;
      for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i += 1) {
        low = Math.min(low, samples[i]);
        high = Math.max(high, samples[i]);
      }
      const mid = canvas.height / 2;
      draw.fillRect(x, mid - high * mid, 1, Math.max(1, (high - low) * mid));
    }
    canvas.dataset.seconds = sound.duration.toFixed(3);
  } finally {
    await context.close();
  }
}

function videoView(url) {
  const player = document.createElement("video");
  player.controls = true;
  player.src = url;
  player.preload = "metadata";
  return player;
}

function textView(bytes) {
  const text = document.createElement("pre");
  text.textContent = new TextDecoder().decode(bytes.slice(0, 4096));
  return text;
}

function details(generator, request, artifact) {
  const record = provenanceOf(artifact);
  const models = (record.models || []).map((m) => `${m.name} v${m.version}`).join(", ");
  const licences = [...new Set((record.training_data || []).map((d) => d.licence))].join("; ");
  const rows = [
    [request.inputs ? "effect" : "generator", generator.name], ["seed", String(request.seed ?? record.seed ?? "")],
    ...(request.inputs ? [["inputs", request.inputs.map((i) => i.name).join(", ")]] : []),
    ["parameters", JSON.stringify(request.parameters)], ["models", models],
    ["training data licence", licences || "—"],
  ];
  const list = document.createElement("dl");
  for (const [name, value] of rows) {
    const term = document.createElement("dt");
    term.textContent = name;
    const description = document.createElement("dd");
    description.textContent = value;
    description.dataset.name = name;
    list.append(term, description);
  }
  return list;
}

// -- ratings and suggestions (the feedback API) ---------------------------------------------------------
const USER_STORAGE = "museforge.user";

function user() {
  return $("user").value.trim();
}

// Without a key (a server with auth off) ratings are kept under a name: say where to give one,
// rather than the server's "invalid feedback event (event.user)".
function feedbackError(error) {
  const violations = error.violations || [];
  if (!user() && (violations.some((v) => v.field === "event.user" || v.field === "user") || /\buser\b/.test(error.message))) {
    $("user").focus();
    return "Type your name under “Your name” first: this server has no key to keep your ratings under.";
  }
  return error.message;
}

async function artifactRef(artifact, bytes, kind) {
  const record = provenanceOf(artifact);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const ref = {
    sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
    modelVersion: String((record.models || [])[0]?.version ?? ""),
    seed: String(record.seed ?? "0"),
    parameters: record.parameters || {},
    index: Number(record.index || 0),
  };
  ref[kind === "effect" ? "effect" : "generator"] = record[kind === "effect" ? "effect" : "generator"];
  return ref;
}

// A button's handler that runs once at a time: a double click records one rating, one list.
function oneAtATime(handler) {
  return async (event) => {
    const button = event.currentTarget;
    if (button.disabled) return;
    button.disabled = true;
    try {
      await handler(event);
    } finally {
      button.disabled = false;
    }
  };
}

function rating(artifact, bytes, kind, request, group) {
  const box = document.createElement("div");
  box.className = "rating";
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "rate this result");
  const said = document.createElement("span");
  said.setAttribute("role", "status");
  for (const [thumb, text] of [["THUMB_UP", "Like"], ["THUMB_DOWN", "Dislike"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.dataset.thumb = thumb;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", oneAtATime(async () => {
      try {
        const event = { user: user(), kind: "FEEDBACK_KIND_THUMBS", thumb, artifact: await artifactRef(artifact, bytes, kind) };
        await call("POST", "/v1/feedback", { event });
        for (const other of box.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === button));
        said.textContent = "Thanks: noted";
      } catch (error) {
        said.textContent = feedbackError(error);
      }
    }));
    box.append(button);
  }
  if ((request.count || 1) > 1 && !group.alone) {  // several made at once: say which one is best
    const pick = document.createElement("button");
    pick.type = "button";
    pick.textContent = "Pick this one";
    pick.dataset.pick = "true";
    pick.addEventListener("click", oneAtATime(async () => {
      try {
        const candidates = await Promise.all(group.members.map((m) => artifactRef(m.artifact, m.bytes, m.kind)));
        const chosen = await artifactRef(artifact, bytes, kind);
        await call("POST", "/v1/feedback", { event: { user: user(), kind: "FEEDBACK_KIND_PICK", artifact: chosen, candidates } });
        said.textContent = `Picked among ${candidates.length}`;
      } catch (error) {
        said.textContent = feedbackError(error);
      }
    }));
    box.append(pick);
  }
  box.append(said);
  return box;
}

async function recommend() {
  const found = $("recommendations");
  found.replaceChildren();
  const query = new URLSearchParams({ kind: "RECOMMEND_KIND_PRESETS", k: "5" });
  if (user()) query.set("user", user());
  try {
    const reply = await (await call("GET", `/v1/feedback:recommend?${query}`)).json();
    for (const suggestion of reply.recommendations) {
      const preset = suggestion.preset;
      if (!preset) continue;
      const item = document.createElement("li");
      item.textContent = `${preset.generator} ${JSON.stringify(preset.parameters)} — ${suggestion.reason}`;
      const use = document.createElement("button");
      use.type = "button";
      use.textContent = "Use";
      use.addEventListener("click", () => usePreset(preset));
      item.append(use);
      found.append(item);
    }
    if (!found.children.length) found.textContent = "No suggestion yet: rate a few results first.";
  } catch (error) {
    found.textContent = feedbackError(error);
  }
}

function usePreset(preset) {
  const generator = state.generators.find((g) => g.name === preset.generator);
  if (!generator) return;
  choose(generator, "generator");
  for (const [name, value] of Object.entries(preset.parameters || {})) setValue($("fields"), name, value);
  $("generate-button").focus();
}

function cardActions(generator, request, url, filename, kind, keep) {
  const actions = document.createElement("div");
  actions.className = "actions";
  const again = document.createElement("button");
  again.type = "button";
  again.textContent = "Regenerate";
  again.title = "Run the same generator with the same seed and parameters";
  // The same request (seed and count too: an artifact's draw depends on both), keeping this one.
  again.addEventListener("click", () => {
    const controller = begin();
    if (!controller) return;
    choose(generator, kind);
    generate(controller, request, keep);
  });
  const schema = JSON.parse(generator.parametersSchema || "{}");
  if (kind !== "effect" && schema.properties?.preference) {  // steering: draws toward what this user liked
    const more = document.createElement("button");
    more.type = "button";
    more.textContent = "More like what I liked";
    more.title = "New draws of this generator, steered toward the results you rated highly";
    more.addEventListener("click", () => {
      if (!user()) {
        $("user").focus();
        $("recommendations").textContent = "Type your name first: the draws follow your ratings.";
        return;
      }
      const controller = begin();
      if (!controller) return;
      choose(generator, kind);
      const { seed, ...fresh } = request;
      generate(controller, { ...fresh, parameters: { ...request.parameters, preference: user() } });
    });
    actions.append(more);
  }
  const save = document.createElement("a");
  save.href = url;
  save.download = filename;
  save.textContent = "Download";
  actions.append(again, save);
  for (const button of actions.querySelectorAll("button")) button.disabled = Boolean(state.running);
  return actions;
}

// -- start ----------------------------------------------------------------------------------------------------
function setup() {
  setupKey();
  $("generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.running) return;
    let request;
    try {
      request = formRequest();
    } catch (error) {  // a value the page cannot read: nothing sent, the field says why
      showErrors(error);
      return;
    }
    generate(begin(), state.kind === "effect" ? withFiles(request, [...$("files").files]) : request);
  });
  const drop = $("inputs-box");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    $("files").files = event.dataTransfer.files;
    filesPicked();
  });
  $("files").addEventListener("change", filesPicked);
  $("stop-button").addEventListener("click", () => state.running && state.running.abort());
  $("zoom-close").addEventListener("click", () => $("zoom-dialog").close());
  $("user").value = sessionStorage.getItem(USER_STORAGE) || "";
  $("user").addEventListener("change", () => sessionStorage.setItem(USER_STORAGE, user()));
  $("recommend-button").addEventListener("click", oneAtATime(recommend));
  $("jobs-button").addEventListener("click", () => showView("jobs"));
  $("draw-button").addEventListener("click", () => showView("draw"));
  connect();
}

setup();
