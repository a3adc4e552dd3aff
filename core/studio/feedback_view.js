// Ratings and suggestions in the studio (the feedback API): thumbs and picks on each result,
// presets suggested for the user, under their key or the name they type.

import { call } from "./api.js";
import { provenanceOf } from "./artifacts.js";

const $ = (id) => document.getElementById(id);

export const USER_STORAGE = "museforge.user";

export function user() {
  return $("user").value.trim();
}

// Without a key (a server with auth off) ratings are kept under a name: say where to give one,
// rather than the server's "invalid feedback event (event.user)".
export function feedbackError(error) {
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
export function oneAtATime(handler) {
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

export function rating(artifact, bytes, kind, request, group) {
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

// usePreset: what the page does when a suggestion's Use is pressed.
export async function recommend(usePreset) {
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
