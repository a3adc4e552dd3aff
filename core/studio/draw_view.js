// Drawing in the studio: line art and colour hints on a canvas, coloured by effect.sketch as the
// artist draws; a mask brush to redo a region of the last result; undo and redo; export.

import { call } from "./api.js";
import { base64Of } from "./artifacts.js";

const $ = (id) => document.getElementById(id);
const SIZE = 256; // drawing pixels a side (the effect colours a 64 x 64 canvas and scales back up)
const HISTORY = 50;
const layers = {}; // sketch, hints, mask, kept: canvases of SIZE x SIZE
// kept: black where a redone region was accepted. Later colourings (a new stroke) colour the
// drawing with its own seed and take those pixels from the last result, so neither what was
// redone nor what was never masked changes colour under the next stroke. (Sending the last
// result as `previous` would not do: a redo asks the effect for other colours.)
const draw = {
  tool: "pen", undo: [], redo: [], result: null, seed: 1, redoSeed: 1, timer: 0, busy: false, redoAsked: false,
  ready: false, anyKept: false,
  masked: false, drawing: 0,  // drawing: counts Clears, so a colouring of a cleared drawing is dropped
};

async function pngOf(canvas) {
  const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  return new Uint8Array(await blob.arrayBuffer());
}

function snapshot() {  // what the artist drew; the kept layer follows the results, not the strokes
  return Object.fromEntries(["sketch", "hints", "mask"].map((name) =>
    [name, layers[name].getContext("2d").getImageData(0, 0, SIZE, SIZE)]));
}

function restore(saved) {
  for (const [name, data] of Object.entries(saved)) layers[name].getContext("2d").putImageData(data, 0, 0);
  draw.masked = painted(layers.mask, (d, i) => d[i] > 127);  // once per undo, not per stroke
}

function remember() {
  draw.undo.push(snapshot());
  if (draw.undo.length > HISTORY) draw.undo.shift();
  draw.redo = [];
  history();
}

function history() {
  $("draw-undo").disabled = draw.undo.length === 0;
  $("draw-redo").disabled = draw.redo.length === 0;
  $("draw-undo").dataset.count = String(draw.undo.length);
}

function keep(mask) {
  // What the mask redid is kept from now on: black on the kept layer.
  const kept = layers.kept.getContext("2d");
  const data = kept.getImageData(0, 0, SIZE, SIZE);
  const masked = mask.getContext("2d").getImageData(0, 0, SIZE, SIZE).data;
  for (let i = 0; i < masked.length; i += 4) {
    if (masked[i] > 127) data.data.set([0, 0, 0, 255], i);
  }
  kept.putImageData(data, 0, 0);
  draw.anyKept = true;
}

async function withKept(last, made) {
  // The new colouring, with the kept (redone) pixels of the last result.
  const [old, fresh] = await Promise.all([last, made].map((bytes) => createImageBitmap(new Blob([bytes]))));
  const canvas = Object.assign(document.createElement("canvas"), { width: fresh.width, height: fresh.height });
  const context = canvas.getContext("2d");
  const pixels = (image) => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height);
  };
  const before = pixels(old);
  const after = pixels(fresh);
  context.drawImage(layers.kept, 0, 0, canvas.width, canvas.height);
  const kept = context.getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < kept.length; i += 4) {
    if (kept[i] < 128) after.data.set(before.data.subarray(i, i + 4), i);
  }
  context.putImageData(after, 0, 0);
  return pngOf(canvas);
}

function blank() {
  const sketch = layers.sketch.getContext("2d");
  sketch.fillStyle = "#ffffff";
  sketch.fillRect(0, 0, SIZE, SIZE);
  layers.hints.getContext("2d").clearRect(0, 0, SIZE, SIZE);
  const mask = layers.mask.getContext("2d");
  mask.fillStyle = "#000000";
  mask.fillRect(0, 0, SIZE, SIZE);
  draw.masked = false;
  const kept = layers.kept.getContext("2d");
  kept.fillStyle = "#ffffff";
  kept.fillRect(0, 0, SIZE, SIZE);
  draw.anyKept = false;
}

function forget() {
  // A cleared canvas shows no result: the last one (and redoing a region of it) was of the old drawing.
  clearTimeout(draw.timer);
  draw.drawing += 1;
  draw.result = null;
  draw.redoAsked = false;
  $("draw-result").removeAttribute("src");
  $("draw-export").hidden = true;
  $("draw-redo-region").disabled = true;
  $("draw-status").textContent = "Cleared";
}

function typing(target) {
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

function painted(canvas, test) {
  const data = canvas.getContext("2d").getImageData(0, 0, SIZE, SIZE).data;
  for (let i = 0; i < data.length; i += 4) if (test(data, i)) return true;
  return false;
}

function stroke(from, to) {
  const tool = draw.tool;
  const target = tool === "hint" ? layers.hints : tool === "mask" ? layers.mask : layers.sketch;
  const context = target.getContext("2d");
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = Number($("draw-size").value) * (tool === "pen" ? 1 : 3);
  context.globalCompositeOperation = "source-over";
  context.strokeStyle = { pen: "#111111", hint: $("draw-colour").value, mask: "#ffffff", eraser: "#ffffff" }[tool];
  if (tool === "eraser") {  // rubs out strokes and hints alike
    const hints = layers.hints.getContext("2d");
    hints.save();
    hints.globalCompositeOperation = "destination-out";
    hints.lineWidth = context.lineWidth * 2;
    hints.lineCap = "round";
    hints.beginPath();
    hints.moveTo(...from);
    hints.lineTo(...to);
    hints.stroke();
    hints.restore();
  }
  context.beginPath();
  context.moveTo(...from);
  context.lineTo(...to);
  context.stroke();
  if (tool === "mask") draw.masked = true;
  compose();
}

function compose() {
  const view = $("draw-canvas").getContext("2d");
  view.drawImage(layers.sketch, 0, 0);
  view.drawImage(layers.hints, 0, 0);
  if (draw.tool === "mask" || draw.masked) {
    view.globalAlpha = 0.35;
    view.drawImage(layers.mask, 0, 0);
    view.globalAlpha = 1;
  }
}

function schedule() {
  clearTimeout(draw.timer);
  if ($("draw-live").checked) draw.timer = setTimeout(() => colour(false), 500);
}

async function colour(redoRegion) {
  if (draw.busy) {
    // A redo asked for while a colouring runs is kept and done next, never turned into a plain
    // colouring (the click was lost when an undo's live recolouring was still on its way).
    if (redoRegion) draw.redoAsked = true;
    else schedule();
    return;
  }
  draw.busy = true;
  const drawing = draw.drawing;
  $("draw-status").textContent = redoRegion ? "Redoing the masked region…" : "Colouring…";
  try {
    const roles = ["sketch"];
    const inputs = [{ name: "sketch.png", data: base64Of(await pngOf(layers.sketch)) }];
    if (painted(layers.hints, (d, i) => d[i + 3] > 0)) {
      roles.push("hints");
      inputs.push({ name: "hints.png", data: base64Of(await pngOf(layers.hints)) });
    }
    let seed = draw.seed;
    if (redoRegion) {
      roles.push("previous", "mask");
      inputs.push({ name: "previous.png", data: base64Of(draw.result) },
        { name: "mask.png", data: base64Of(await pngOf(layers.mask)) });
      draw.redoSeed += 1;
      seed = draw.redoSeed;
    }
    const body = { parameters: { roles }, inputs, seed: String(seed), format: "png" };
    const reply = await (await call("POST", "/v1/effects/effect.sketch:apply", body)).json();
    if (drawing !== draw.drawing) return;  // cleared while it ran: the result is of a drawing gone
    const artifact = reply.artifacts[0];
    const made = Uint8Array.from(atob(artifact.data), (c) => c.charCodeAt(0));
    draw.result = !redoRegion && draw.anyKept && draw.result ? await withKept(draw.result, made) : made;
    const url = URL.createObjectURL(new Blob([draw.result], { type: "image/png" }));
    const shown = $("draw-result");
    shown.src = url;
    // "Coloured" once the picture is on screen, not when its bytes arrive: a test or a user reads it then.
    await shown.decode().catch(() => undefined);
    $("draw-export").href = url;
    $("draw-export").hidden = false;
    $("draw-redo-region").disabled = false;
    $("draw-status").textContent = `Coloured (seed ${seed})`;
    if (redoRegion) {
      keep(layers.mask);
      const mask = layers.mask.getContext("2d");
      mask.fillStyle = "#000000";
      mask.fillRect(0, 0, SIZE, SIZE);
      draw.masked = false;
      compose();
    }
  } catch (error) {
    if (drawing === draw.drawing) $("draw-status").textContent = error.message;
  } finally {
    draw.busy = false;
    if (draw.redoAsked) {
      draw.redoAsked = false;
      colour(true);
    }
  }
}

export function setupDraw() {
  if (draw.ready) return;
  draw.ready = true;
  for (const name of ["sketch", "hints", "mask", "kept"]) {
    layers[name] = Object.assign(document.createElement("canvas"), { width: SIZE, height: SIZE });
  }
  blank();
  const canvas = $("draw-canvas");
  canvas.width = SIZE;
  canvas.height = SIZE;
  compose();
  history();
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * (SIZE / box.width), (event.clientY - box.top) * (SIZE / box.height)];
  };
  canvas.addEventListener("pointerdown", (event) => {
    remember();
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    stroke(last, next);
    last = next;
  });
  const end = () => {
    if (!last) return;
    last = null;
    if (draw.tool !== "mask") schedule();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  // By keyboard: the arrow keys move a cursor (Shift: further); Space puts the tool down and lifts it.
  const keyboard = { at: [SIZE / 2, SIZE / 2], down: false };
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  canvas.addEventListener("keydown", (event) => {
    if (event.key === " ") {
      event.preventDefault();
      keyboard.down = !keyboard.down;
      if (keyboard.down) {
        remember();
        stroke(keyboard.at, keyboard.at);
      } else if (draw.tool !== "mask") {
        schedule();
      }
    } else if (moves[event.key]) {
      event.preventDefault();
      const step = event.shiftKey ? 16 : 4;
      const next = keyboard.at.map((v, axis) => Math.max(0, Math.min(SIZE - 1, v + moves[event.key][axis] * step)));
      if (keyboard.down) stroke(keyboard.at, next);
      keyboard.at = next;
    } else {
      return;
    }
    canvas.dataset.cursor = keyboard.at.map(Math.round).join(",");
    canvas.dataset.down = String(keyboard.down);
    compose();
    const view = canvas.getContext("2d");  // the cursor, over the drawing
    view.strokeStyle = keyboard.down ? "#d0302a" : "#2a5d9f";
    view.strokeRect(keyboard.at[0] - 4, keyboard.at[1] - 4, 8, 8);
  });
  for (const button of document.querySelectorAll("#draw-tools button[data-tool]")) {
    button.addEventListener("click", () => {
      draw.tool = button.dataset.tool;
      for (const other of document.querySelectorAll("#draw-tools button[data-tool]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      compose();
    });
  }
  // Undo takes a state from one stack and keeps the present on the other; redo the reverse.
  const step = (from, to) => {
    if (!from.length) return;
    to.push(snapshot());
    restore(from.pop());
    history();
    compose();
    schedule();
  };
  $("draw-undo").addEventListener("click", () => step(draw.undo, draw.redo));
  $("draw-redo").addEventListener("click", () => step(draw.redo, draw.undo));
  $("draw-clear").addEventListener("click", () => {
    remember();
    blank();
    compose();
    forget();
  });
  $("draw-colour-now").addEventListener("click", () => colour(false));
  $("draw-redo-region").addEventListener("click", () => colour(true));
  document.addEventListener("keydown", (event) => {
    if ($("draw-panel").hidden || !(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
    if (typing(event.target)) return;  // Ctrl+Z in a text box undoes its typing, not a stroke
    event.preventDefault();
    $(event.shiftKey ? "draw-redo" : "draw-undo").click();
  });
}
