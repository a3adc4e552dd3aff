// The gallery: a card per result (its media, provenance, actions and rating), a morph's frames on one
// card with a slider, a piece's stems in its mix's card.

import { bytesOf, provenanceOf } from "./artifacts.js";
import { rating } from "./feedback_view.js";
import { audioView, imageView, textView, videoView } from "./media_views.js";
import { meshViewer } from "./mesh_view.js";

const $ = (id) => document.getElementById(id);
// A card's buttons (Regenerate, More like what I liked, Download): the page's, given at setup.
let cardActions = () => document.createElement("div");

export function setupGallery(actions) {
  cardActions = actions;
}

function morphing(request, artifact) {
  return request.parameters?.interpolate_to !== undefined && artifact.mediaType.startsWith("image/");
}

// A morph's frames share one card with a slider; a piece's stems join its mix's card.
export function place(generator, kind, request, artifact, group) {
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
