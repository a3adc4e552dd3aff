// museforge studio: generators as forms, results in a gallery, on the gateway's public routes
// alone (/v1/...). No library, nothing fetched from elsewhere.

import { ApiError, call, keyProblem, lines, session, setKey, whenKeyRefused } from "./api.js";
import {
  FormError, field, parameters as formValues, resolve, setValue, showErrors as showFieldErrors,
} from "./forms.js";
import { base64Of } from "./artifacts.js";
import { setupDraw } from "./draw_view.js";
import { USER_STORAGE, oneAtATime, recommend, user } from "./feedback_view.js";
import { VIDEOS, VIDEO_OUTPUTS, acceptOf, isVideo, takesFrames } from "./file_types.js";
import { place, setupGallery } from "./gallery.js";
import { listJobs, setupJobs } from "./jobs_view.js";

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

// -- a card's actions and suggested presets --------------------------------------------------------------
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
  setupGallery(cardActions);
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
  $("recommend-button").addEventListener("click", oneAtATime(() => recommend(usePreset)));
  $("jobs-button").addEventListener("click", () => showView("jobs"));
  $("draw-button").addEventListener("click", () => showView("draw"));
  connect();
}

setup();
