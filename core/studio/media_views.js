// A result card's media: an image (zoom; a tiled preview of tileable ones), a sound (player,
// gapless loop, waveform; MIDI offered to download), a video, text.

const $ = (id) => document.getElementById(id);

export function imageView(url, artifact, request) {
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

export function audioView(url, bytes, artifact, loop) {
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

export function videoView(url) {
  const player = document.createElement("video");
  player.controls = true;
  player.src = url;
  player.preload = "metadata";
  return player;
}

export function textView(bytes) {
  const text = document.createElement("pre");
  text.textContent = new TextDecoder().decode(bytes.slice(0, 4096));
  return text;
}
