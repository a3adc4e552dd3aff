// Forms built from a JSON Schema (a generator's, an effect's parameters), and errors shown beside
// the fields they name.

// A property as one plain shape: references followed, an optional value's non-null branch taken.
export function resolve(property, schema) {
  let found = property;
  if (found.$ref) found = { ...schema.$defs[found.$ref.split("/").pop()], ...found, $ref: undefined };
  const branches = found.anyOf || found.oneOf;
  if (branches) {
    // The word "random" (OrRandom) means what an empty field does: no branch of its own here.
    const kept = branches.filter((b) => b.type !== "null" && b.const !== "random").map((b) => resolve(b, schema));
    const text = kept.find((b) => b.type === "string");
    const numeric = kept.some((b) => b.type === "integer" || b.type === "number");
    // A name or a number (an instrument: "violin" or 41) is typed as text and sent as a number when it is one.
    const shape = text && numeric ? { ...text, orNumber: true } : kept[0];
    found = { ...shape, ...found, anyOf: undefined, oneOf: undefined,
      nullable: branches.some((b) => b.type === "null" || b.const === "random") };
  }
  if (found.type === "array" && found.items) found = { ...found, items: resolve(found.items, schema) };
  return found;
}

// A value the page could not read from a field: nothing is sent, the field says why.
export class FormError extends Error {
  constructor(violations) {
    super("Not sent: correct the marked fields.");
    this.violations = violations;
  }
}

function errorSlot() {
  const problem = document.createElement("span");
  problem.className = "field-error";
  problem.setAttribute("role", "alert");
  return problem;
}

// A list of choices (effect.sketch's roles: what each file is) as one menu per place in the list.
function choiceList(name, property, id, wrapper) {
  const legend = document.createElement("legend");
  legend.textContent = property.title || name;
  wrapper.append(legend);
  const places = Math.min(property.maxItems || 4, 8);
  for (let i = 0; i < places; i += 1) {
    const label = document.createElement("label");
    label.className = "inline";
    label.htmlFor = i === 0 ? id : `${id}-${i + 1}`;
    label.textContent = String(i + 1);
    const select = document.createElement("select");
    select.id = label.htmlFor;
    select.name = name;
    select.dataset.kind = "list-item";
    select.append(new Option(i === 0 ? "(default)" : "(none)", ""));
    for (const value of property.items.enum) select.append(new Option(String(value), JSON.stringify(value)));
    const pair = document.createElement("span");
    pair.className = "pick";
    pair.append(label, select);
    wrapper.append(pair);
  }
  return wrapper.querySelector("select");
}

export function field(name, property, required, prefix = "parameters") {
  const list = property.type === "array" && property.items?.enum;
  const wrapper = document.createElement(list ? "fieldset" : "div");
  wrapper.className = "field";
  wrapper.dataset.field = `${prefix}.${name}`;
  const id = prefix === "parameters" ? `field-${name}` : `${prefix.replace(/[^a-z0-9]+/gi, "-")}-${name}`;
  const help = document.createElement("small");
  help.className = "help";
  help.id = `${id}-help`;
  help.textContent = property.description || "";
  if (list) {
    choiceList(name, property, id, wrapper);
    wrapper.setAttribute("aria-describedby", help.id);
    wrapper.append(help, errorSlot());
    return wrapper;
  }
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = property.title || name;
  let input;
  if (property.enum) {
    input = document.createElement("select");
    if (!required) input.append(new Option("(default)", ""));
    for (const value of property.enum) input.append(new Option(String(value), JSON.stringify(value)));
    if (property.default !== undefined && property.default !== null) input.value = JSON.stringify(property.default);
  } else if (property.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(property.default);
  } else {
    input = document.createElement("input");
    const numeric = property.type === "integer" || property.type === "number";
    input.type = numeric ? "number" : "text";
    if (numeric) {
      input.step = property.type === "integer" ? "1" : "any";
      for (const [bound, attribute] of [["minimum", "min"], ["maximum", "max"]]) {
        if (property[bound] !== undefined) input[attribute] = String(property[bound]);
      }
    }
    if (property.type === "array") {
      input.spellcheck = false;
      input.placeholder = "(default) or a JSON list: [ … ]";
      help.textContent = `${help.textContent} (a JSON list)`.trim();
    } else if (property.default !== undefined && property.default !== null) input.value = String(property.default);
    else if (property.nullable) input.placeholder = "(default)";
  }
  input.id = id;
  input.name = name;
  input.dataset.kind = property.enum ? "enum" : property.orNumber ? "text-or-number"
    : property.type === "array" ? "json" : property.type || "string";
  input.setAttribute("aria-describedby", help.id);
  wrapper.append(label, input, help, errorSlot());
  return wrapper;
}

// JSON numbers are doubles in the page: a whole number past 2^53 (a seed) is kept as its digits,
// which the schemas accept wherever a seed goes, rather than rounded.
function exactly(text) {
  const reviver = (key, value, context) => (Number.isInteger(value) && !Number.isSafeInteger(value)
    && /^-?\d+$/.test(context?.source || "") ? context.source : value);
  return JSON.parse(text, reviver);
}

// One field's value to send; undefined to leave it to the server's default.
function read(input) {
  const kind = input.dataset.kind;
  if (kind === "boolean") return input.checked;
  if (input.validity.badInput) throw new Error("not a number");  // "abc", "1e": the box reads as empty
  const text = input.value.trim();
  if (text === "") return undefined;
  if (kind === "enum" || kind === "list-item") return JSON.parse(text);
  if (kind === "integer" || kind === "number") return Number(text);
  if (kind === "text-or-number" && /^-?\d+(\.\d+)?$/.test(text)) {
    const number = Number(text);
    return Number.isInteger(number) && !Number.isSafeInteger(number) ? text : number;
  }
  if (kind === "json") {
    let value;
    try {
      value = exactly(text);
    } catch (error) {
      throw new Error(`not valid JSON: ${error.message}`);
    }
    if (!Array.isArray(value)) throw new Error("must be a JSON list, in [ and ]");
    return value;
  }
  return input.value;
}

export function parameters(container) {
  const values = {};
  const problems = [];
  for (const input of container.querySelectorAll("[data-kind]")) {
    try {
      const value = read(input);
      if (value === undefined) continue;
      if (input.dataset.kind === "list-item") (values[input.name] ||= []).push(value);
      else values[input.name] = value;
    } catch (problem) {
      problems.push({ field: input.closest("[data-field]").dataset.field, description: problem.message });
    }
  }
  if (problems.length) throw new FormError(problems);
  return values;
}

// A value put back in a field (a suggested preset): the opposite of read.
export function setValue(container, name, value) {
  const inputs = [...container.querySelectorAll("[data-kind]")].filter((i) => i.name === name);
  inputs.forEach((input, i) => {
    const kind = input.dataset.kind;
    // null is a field left empty (its default, or random), never the text "null".
    if (value === null || value === undefined) {
      if (kind === "boolean") input.checked = false;
      else input.value = "";
      return;
    }
    if (kind === "boolean") input.checked = Boolean(value);
    else if (kind === "list-item") input.value = Array.isArray(value) && i < value.length ? JSON.stringify(value[i]) : "";
    else if (kind === "enum" || kind === "json") input.value = JSON.stringify(value);
    else input.value = String(value);
  });
}

const within = (path, outer) => path === outer || path.startsWith(`${outer}.`) || path.startsWith(`${outer}[`);

// Where a violation is shown: under its own field, else under the nearest field holding it
// ("inputs[0]" under the files), else under the first field within it ("job.input" under its path).
function placeFor(container, path) {
  const shown = [...container.querySelectorAll("[data-field]")].filter((f) => !f.closest("[hidden]"));
  const holders = shown.filter((f) => within(path, f.dataset.field));
  const holder = holders.sort((a, b) => b.dataset.field.length - a.dataset.field.length)[0];
  if (holder) return { wrapper: holder, rest: path.slice(holder.dataset.field.length) };
  const inner = shown.find((f) => within(f.dataset.field, path));
  return inner ? { wrapper: inner, rest: "" } : null;
}

// "[0].seed" under a field of files reads "file 1, seed: ".
function restOf(rest, wrapper) {
  const parts = rest.match(/\[\d+\]|[^.[\]]+/g) || [];
  const words = parts.map((p) => (p.startsWith("[") ? `${wrapper.dataset.item || "item"} ${Number(p.slice(1, -1)) + 1}` : p));
  return words.length ? `${words.join(", ")}: ` : "";
}

export function showErrors(error, container, summary) {
  for (const slot of container.querySelectorAll(".field-error")) slot.textContent = "";
  const unplaced = [];
  const placed = new Set();
  let restated = false;  // the message is one of the violations again: said once, under its field
  for (const violation of error.violations || []) {
    const place = placeFor(container, violation.field);
    const named = `${violation.field}: ${violation.description}`;
    restated ||= [named, violation.description].includes(error.message);
    if (place) {
      placed.add(violation.field);
      const slot = place.wrapper.querySelector(".field-error");
      const text = restOf(place.rest, place.wrapper) + violation.description;
      slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
    } else {
      unplaced.push(violation.description.startsWith(`${violation.field}: `) ? violation.description : named);
    }
  }
  summary.textContent = [restated ? "" : withoutPlacedFields(error.message || "", placed), ...unplaced]
    .filter(Boolean).join(" — ");
}

// The server's message names the fields at fault ("invalid request for image.digits (count)")
// for clients that read nothing else; here each is said under its field already.
function withoutPlacedFields(message, placed) {
  const listed = / \(([^()]+)\)$/.exec(message);
  if (!listed) return message;
  const names = listed[1].split(", ");
  return names.every((name) => placed.has(name)) ? message.slice(0, listed.index) : message;
}
