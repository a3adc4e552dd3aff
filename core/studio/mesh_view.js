// A small viewer for the GLB files mesh generators make: each level of detail (a mesh of the
// file) drawn with WebGL, lit from the camera's side; turned by dragging or the arrow keys,
// zoomed by the wheel or + and -. No library: the GLB's JSON and binary chunks are read here.

const VERTEX = `
attribute vec3 position;
attribute vec3 normal;
uniform mat4 view;
uniform mat4 projection;
varying vec3 shade;
void main() {
  vec3 turned = (view * vec4(normal, 0.0)).xyz;
  float light = 0.25 + 0.75 * max(dot(normalize(turned), normalize(vec3(0.4, 0.6, 1.0))), 0.0);
  shade = vec3(0.78, 0.76, 0.72) * light;
  gl_Position = projection * view * vec4(position, 1.0);
}`;
const FRAGMENT = `
precision mediump float;
varying vec3 shade;
void main() { gl_FragColor = vec4(shade, 1.0); }`;

const COMPONENTS = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4 };
const ARRAYS = { 5121: Uint8Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array };

export function readGlb(bytes) {
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.getUint32(0, true) !== 0x46546c67) throw new Error("not a GLB file");
  const jsonLength = data.getUint32(12, true);
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(20, 20 + jsonLength)));
  const binStart = 20 + jsonLength + 8;
  const accessor = (index) => {
    const found = json.accessors[index];
    const view = json.bufferViews[found.bufferView];
    const Array = ARRAYS[found.componentType];
    const offset = bytes.byteOffset + binStart + (view.byteOffset || 0) + (found.byteOffset || 0);
    return new Array(bytes.buffer.slice(offset, offset + found.count * COMPONENTS[found.type] * Array.BYTES_PER_ELEMENT));
  };
  return json.meshes.map((mesh) => {
    const primitive = mesh.primitives[0];
    return {
      name: mesh.name || "mesh",
      positions: accessor(primitive.attributes.POSITION),
      normals: accessor(primitive.attributes.NORMAL),
      indices: accessor(primitive.indices),
    };
  });
}

function multiply(a, b) {
  const out = new Float32Array(16);
  for (let i = 0; i < 4; i += 1) {
    for (let j = 0; j < 4; j += 1) {
      let sum = 0;
      for (let k = 0; k < 4; k += 1) sum += a[k * 4 + j] * b[i * 4 + k];
      out[i * 4 + j] = sum;
    }
  }
  return out;
}

function perspective(aspect) {
  const f = 1 / Math.tan(Math.PI / 8);
  const near = 0.01;
  const far = 100;
  return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
    0, 0, (2 * far * near) / (near - far), 0]);
}

function orbit(yaw, pitch, distance, centre) {
  const [cy, sy, cp, sp] = [Math.cos(yaw), Math.sin(yaw), Math.cos(pitch), Math.sin(pitch)];
  const rotation = new Float32Array([cy, sp * sy, -cp * sy, 0, 0, cp, sp, 0, sy, -sp * cy, cp * cy, 0, 0, 0, 0, 1]);
  const move = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, -centre[0], -centre[1], -centre[2], 1]);
  const back = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, -distance, 1]);
  return multiply(back, multiply(rotation, move));
}

export function meshViewer(bytes, label) {
  const levels = readGlb(bytes);
  const box = document.createElement("div");
  box.className = "mesh-view";
  const canvas = document.createElement("canvas");
  canvas.width = 480;
  canvas.height = 360;
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${label}: a 3D view; drag or use the arrow keys to turn it, + and - to zoom`);
  const select = document.createElement("select");
  select.setAttribute("aria-label", "level of detail");
  levels.forEach((level, number) => {
    const triangles = level.indices.length / 3;
    select.append(new Option(`LOD${number}: ${triangles.toLocaleString()} triangles`, String(number)));
  });
  box.append(canvas, select);
  const gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true });
  if (!gl) {
    box.replaceChildren(Object.assign(document.createElement("p"), { textContent: "This browser has no WebGL." }));
    return box;
  }
  gl.getExtension("OES_element_index_uint");
  const program = gl.createProgram();
  for (const [kind, text] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
    const shader = gl.createShader(kind);
    gl.shaderSource(shader, text);
    gl.compileShader(shader);
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  gl.useProgram(program);
  const buffers = levels.map((level) => {
    const make = (target, array) => {
      const buffer = gl.createBuffer();
      gl.bindBuffer(target, buffer);
      gl.bufferData(target, array, gl.STATIC_DRAW);
      return buffer;
    };
    return { positions: make(gl.ARRAY_BUFFER, level.positions), normals: make(gl.ARRAY_BUFFER, level.normals),
      indices: make(gl.ELEMENT_ARRAY_BUFFER, level.indices), count: level.indices.length,
      type: level.indices instanceof Uint32Array ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT };
  });
  const points = levels[0].positions;
  const low = [Infinity, Infinity, Infinity];
  const high = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < points.length; i += 3) {
    for (let axis = 0; axis < 3; axis += 1) {
      low[axis] = Math.min(low[axis], points[i + axis]);
      high[axis] = Math.max(high[axis], points[i + axis]);
    }
  }
  const centre = low.map((l, axis) => (l + high[axis]) / 2);
  const radius = Math.hypot(...high.map((h, axis) => h - low[axis])) / 2 || 1;
  const view = { yaw: 0.6, pitch: 0.35, distance: radius * 3 };
  const draw = () => {
    const level = buffers[Number(select.value)];
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(0.13, 0.14, 0.16, 1);
    gl.enable(gl.DEPTH_TEST);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    for (const [name, buffer] of [["position", level.positions], ["normal", level.normals]]) {
      const at = gl.getAttribLocation(program, name);
      gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
      gl.enableVertexAttribArray(at);
      gl.vertexAttribPointer(at, 3, gl.FLOAT, false, 0, 0);
    }
    gl.uniformMatrix4fv(gl.getUniformLocation(program, "view"), false,
      orbit(view.yaw, view.pitch, view.distance, centre));
    gl.uniformMatrix4fv(gl.getUniformLocation(program, "projection"), false,
      perspective(canvas.width / canvas.height));
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, level.indices);
    gl.drawElements(gl.TRIANGLES, level.count, level.type, 0);
    canvas.dataset.lod = select.value;
    canvas.dataset.triangles = String(level.count / 3);
    canvas.dataset.yaw = view.yaw.toFixed(3);
  };
  const turn = (yaw, pitch) => {
    view.yaw += yaw;
    view.pitch = Math.max(-1.4, Math.min(1.4, view.pitch + pitch));
    draw();
  };
  let dragging = null;
  canvas.addEventListener("pointerdown", (event) => { dragging = [event.clientX, event.clientY]; });
  canvas.addEventListener("pointerup", () => { dragging = null; });
  canvas.addEventListener("pointermove", (event) => {
    if (!dragging) return;
    turn((event.clientX - dragging[0]) * 0.01, (event.clientY - dragging[1]) * 0.01);
    dragging = [event.clientX, event.clientY];
  });
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    view.distance *= event.deltaY > 0 ? 1.1 : 0.9;
    draw();
  }, { passive: false });
  canvas.addEventListener("keydown", (event) => {
    const keys = { ArrowLeft: [-0.15, 0], ArrowRight: [0.15, 0], ArrowUp: [0, -0.15], ArrowDown: [0, 0.15] };
    if (keys[event.key]) {
      event.preventDefault();
      turn(...keys[event.key]);
    } else if (event.key === "+" || event.key === "-") {
      view.distance *= event.key === "+" ? 0.9 : 1.1;
      draw();
    }
  });
  select.addEventListener("change", draw);
  requestAnimationFrame(draw);
  return box;
}
