// Batch jobs in the studio: submit effects (one or a chain of steps) over frames or a video on the
// server's storage, watch each job's items finish (a cell per item, a progress bar, the time left), cancel it.

import { call, lines } from "./api.js";
import { field, parameters, resolve, showErrors } from "./forms.js";

const $ = (id) => document.getElementById(id);
const watched = new Map(); // job id -> its AbortController
const MAX_CELLS = 2000; // items drawn as cells; a longer job shows its counts only

function frameWise(effects) {
  return effects.filter((e) => e.minInputs === 1 && e.maxInputs === 1 && e.formats.includes("png"));
}

// A step: an effect and its parameters; the first step's list keeps the id "job-effect".
function addStep(usable) {
  const index = $("job-steps").children.length;
  const item = document.createElement("li");
  const box = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = `Step ${index + 1}`;
  const choice = document.createElement("div");
  choice.className = "field";
  choice.dataset.field = `job.steps[${index}].effect`;
  const label = document.createElement("label");
  const select = document.createElement("select");
  select.id = index === 0 ? "job-effect" : `job-effect-${index}`;
  select.className = "step-effect";
  label.htmlFor = select.id;
  label.textContent = "Effect";
  select.replaceChildren(...usable.map((e) => new Option(e.name, e.name)));
  const problem = document.createElement("span");
  problem.className = "field-error";
  problem.setAttribute("role", "alert");
  choice.append(label, select, problem);
  const fields = document.createElement("div");
  fields.className = "step-fields";
  const build = () => {
    const schema = JSON.parse(usable.find((e) => e.name === select.value)?.parametersSchema || "{}");
    fields.replaceChildren(...Object.entries(schema.properties || {}).map(([name, property]) =>
      field(name, resolve(property, schema), (schema.required || []).includes(name),
        `job.steps[${index}].parameters`)));
  };
  select.onchange = build;
  build();
  box.append(legend, choice, fields);
  item.append(box);
  $("job-steps").append(item);
  $("job-remove-step").disabled = index === 0;
  return select;
}

function steps() {
  return [...$("job-steps").children].map((item) => ({
    effect: item.querySelector(".step-effect").value,
    parameters: parameters(item.querySelector(".step-fields")),
  }));
}

let builtFor = null; // the effects the form was built with: a later visit keeps what was typed

export function setupJobs(effects) {
  const usable = frameWise(effects);
  const names = usable.map((e) => e.name).join();
  if (names === builtFor) return;
  builtFor = names;
  $("job-steps").replaceChildren();
  addStep(usable);
  $("job-add-step").onclick = () => addStep(usable).focus();
  $("job-remove-step").onclick = () => {
    $("job-steps").lastElementChild.remove();
    $("job-remove-step").disabled = $("job-steps").children.length < 2;
    $("job-add-step").focus();
  };
  for (const radio of document.querySelectorAll('input[name="job-source"]')) {
    radio.onchange = () => {
      const video = radio.value === "video" && radio.checked;
      $("job-input-box").dataset.field = video ? "job.input.video" : "job.input.pattern";
      $("job-input-help").textContent = video ? "a video file, relative to the server's input root"
        : "relative to the server's input root; #### or %04d for the frame number";
      if (video) $("job-first").value = "0";
      if (video) $("job-last").value = "0";
    };
  }
  $("job-form").onsubmit = async (event) => {
    event.preventDefault();
    if ($("job-submit").disabled) return;
    $("job-submit").disabled = true;  // until the answer: a double click submits one job
    try {
      await submit();
    } finally {
      $("job-submit").disabled = false;
    }
  };
}

async function submit() {
  const video = document.querySelector('input[name="job-source"]:checked').value === "video";
  // A number the browser could not read ("1e") is said under its field, never sent as 0.
  const unreadable = ["job-first", "job-last"].filter((id) => $(id).validity.badInput);
  if (unreadable.length) {
    const names = { "job-first": "job.input.first_frame", "job-last": "job.input.last_frame" };
    showErrors({ message: "", violations: unreadable.map((id) => ({ field: names[id], description: "not a number" })) },
      $("job-form"), $("job-error"));
    return;
  }
  const input = { firstFrame: $("job-first").value || "0", lastFrame: $("job-last").value || "0" };
  input[video ? "video" : "pattern"] = $("job-input").value.trim();
  showErrors({ message: "", violations: [] }, $("job-form"), $("job-error"));
  try {
    const job = { steps: steps(), input, outputPattern: $("job-output").value.trim() };
    const operation = await (await call("POST", "/v1/jobs", { job })).json();
    watch(operation.name.split("/").pop());
  } catch (error) {
    showErrors(error, $("job-form"), $("job-error"));
  }
}

// Jobs matching ``filter``, oldest first (the server's order), all pages up to a bound.
async function jobsWhere(filter) {
  const found = [];
  let token = "";
  for (let page = 0; page < 20; page += 1) {
    const query = `pageSize=1000&filter=${encodeURIComponent(filter)}${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`;
    const reply = await (await call("GET", `/v1/jobs?${query}`)).json();
    found.push(...(reply.operations || []));
    token = reply.nextPageToken || "";
    if (!token) break;
  }
  return found;
}

// Every unfinished job (a reload picks the running ones up) and the 20 latest finished, newest on top.
export async function listJobs() {
  try {
    const unfinished = await jobsWhere("state=QUEUED OR state=RUNNING");
    const latest = (await jobsWhere("done=true")).slice(-20);
    for (const operation of [...latest, ...unfinished]) {  // each row goes on top of those before
      const id = operation.name.split("/").pop();
      const item = $(`job-${id}`) || row(id);
      if (!operation.done) watch(id);
      else if (operation.metadata?.job) {
        show(item, operation.metadata, performance.now(), finished(operation.metadata));
        backfill(item, id, Number(operation.metadata.total || 0));
      }
    }
  } catch (error) {
    $("job-list").textContent = [401, 403].includes(error.status)
      ? "Jobs need a key with the jobs scope, and a server with job roots."
      : `Cannot list the jobs: ${error.message}`;
  }
}

function row(id) {
  const item = document.createElement("li");
  item.className = "job";
  item.id = `job-${id}`;
  item.innerHTML = `<h4></h4><progress max="1" value="0"></progress>
    <p class="counts" role="status"></p><div class="cells" aria-hidden="true"></div>
    <div class="actions"><button type="button" class="cancel">Cancel</button>
    <button type="button" class="again" hidden>Run again</button></div>`;
  item.querySelector("h4").textContent = `job ${id}`;
  item.querySelector(".cancel").onclick = async () => {
    try {
      await call("POST", `/v1/jobs/${id}:cancel`, {});
    } catch (error) {
      item.querySelector(".counts").textContent = error.message;
    }
  };
  // A cancelled or failed job runs again as submitted, its seed too: frames it wrote come out the same.
  item.querySelector(".again").onclick = async (event) => {
    const button = event.currentTarget;
    if (button.disabled) return;
    button.disabled = true;  // until the answer: a double click runs it once
    const job = { ...item.job, idempotencyKey: "" };
    try {
      const operation = await (await call("POST", "/v1/jobs", { job })).json();
      watch(operation.name.split("/").pop());
    } catch (error) {
      item.querySelector(".counts").textContent = error.message;
    } finally {
      button.disabled = false;
    }
  };
  $("job-list").prepend(item);
  return item;
}

// A browser keeps six connections to a server over HTTP/1.1, and a watch holds one for the job's
// whole run: past MAX_STREAMS jobs, the others are polled, so the page's own calls (and Cancel)
// always find a connection. A polled job takes the stream of the next watch to end.
const MAX_STREAMS = 2;
const polled = new Set();
const POLL_MS = 2000;

async function poll(id) {
  const item = $(`job-${id}`) || row(id);
  while (polled.has(id)) {
    try {
      const operation = await (await call("GET", `/v1/jobs/${id}`)).json();
      if (operation.metadata?.job) show(item, operation.metadata, performance.now(), finished(operation.metadata));
      if (operation.done) {
        polled.delete(id);
        backfill(item, id, Number(operation.metadata?.total || 0));
        return;
      }
    } catch (error) {
      item.querySelector(".counts").textContent = error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function watch(id) {
  if (watched.has(id) || polled.has(id)) return;
  if (watched.size >= MAX_STREAMS) {
    polled.add(id);
    poll(id);
    return;
  }
  const controller = new AbortController();
  watched.set(id, controller);
  const item = $(`job-${id}`) || row(id);
  const started = performance.now();
  let first = null; // items finished when watching began, for the rate
  try {
    const response = await call("GET", `/v1/jobs/${id}:watch`, undefined, controller.signal);
    for await (const line of lines(response.body)) {
      const event = line.result || {};
      if (event.snapshot) {
        const opening = first === null;
        first ??= finished(event.snapshot);
        show(item, event.snapshot, started, first);
        if (opening) backfill(item, id, Number(event.snapshot.total || 0));  // items done before watching
      }
      if (event.item) mark(item, event.item, true);
    }
  } catch (error) {
    if (error.name !== "AbortError") item.querySelector(".counts").textContent = error.message;
  } finally {
    watched.delete(id);
    const next = polled.values().next().value;
    if (next !== undefined) {
      polled.delete(next);  // its poll loop ends; the stream takes over
      watch(next);
    }
  }
}

function finished(meta) {
  return Number(meta.done || 0) + Number(meta.failed || 0) + Number(meta.skipped || 0);
}

function show(item, meta, started, first) {
  const total = Number(meta.total || 0);
  const over = finished(meta);
  const state = String(meta.state || "").replace("JOB_STATE_", "").toLowerCase();
  item.dataset.state = state;
  item.querySelector("h4").textContent = `job ${meta.id}: ${meta.job.steps.map((s) => s.effect).join(" → ")}`;
  const bar = item.querySelector("progress");
  bar.max = Math.max(1, total);
  bar.value = over;
  const seconds = (performance.now() - started) / 1000;
  const rate = (over - first) / seconds;
  const left = rate > 0 && over < total ? `, about ${Math.ceil((total - over) / rate)} s left` : "";
  item.querySelector(".counts").textContent =
    `${state}: ${meta.done} of ${total} done, ${meta.failed} failed, ${meta.skipped} skipped${left}`;
  item.querySelector(".cancel").disabled = ["succeeded", "failed", "cancelled"].includes(state);
  item.querySelector(".again").hidden = !["failed", "cancelled"].includes(state);
  item.job = meta.job;
  const cells = item.querySelector(".cells");
  if (cells.children.length === 0 && total <= MAX_CELLS) {
    for (let i = 0; i < total; i += 1) cells.append(document.createElement("span"));
  }
}

// The items finished before the page began watching (the stream sends only those after), page by page.
async function backfill(item, id, total) {
  if (total > MAX_CELLS) return;
  let token = "";
  try {
    do {
      const query = `pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`;
      const reply = await (await call("GET", `/v1/jobs/${id}/items?${query}`)).json();
      for (const jobItem of reply.items || []) mark(item, jobItem, false);
      token = reply.nextPageToken || "";
    } while (token);
  } catch (error) {
    item.querySelector(".counts").textContent = error.message;
  }
}

const FINISHED = ["done", "failed", "skipped"];

function mark(item, jobItem, live) {
  const cell = item.querySelector(".cells").children[Number(jobItem.index || 0)];
  if (!cell) return;
  const state = String(jobItem.state || "").replace("ITEM_STATE_", "").toLowerCase();
  if (FINISHED.includes(cell.className) && !FINISHED.includes(state)) return;  // a page read before it ended
  cell.className = state;
  cell.title = `frame ${jobItem.frame}${jobItem.error ? `: ${jobItem.error}` : ""}`;
  if (!live) return;  // the counts come from the snapshot
  const count = (kind) => item.querySelectorAll(`.cells span.${kind}`).length;
  const [done, failed, skipped] = [count("done"), count("failed"), count("skipped")];
  const bar = item.querySelector("progress");
  bar.value = Math.max(bar.value, done + failed + skipped);
  item.querySelector(".counts").textContent =
    `running: ${done} of ${bar.max} done, ${failed} failed, ${skipped} skipped`;
}
