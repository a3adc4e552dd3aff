// Forms built from a JSON Schema (a generator's, an effect's parameters), and errors shown beside
// the fields they name.

// A property as one plain shape: references followed, an optional value's non-null branch taken.
export function resolve(property, schema) {
  let found = property;
  if (found.$ref) found = { ...schema.$defs[found.$ref.split("/").pop()], ...found, $ref: undefined };
  const branches = found.anyOf || found.oneOf;
  if (branches) {
    const kept = branches.filter((b) => b.type !== "null").map((b) => resolve(b, schema));
    const text = kept.find((b) => b.type === "string");
    const numeric = kept.some((b) => b.type === "integer" || b.type === "number");
    // A name or a number (an instrument: "violin" or 41) is typed as text and sent as a number when it is one.
    const shape = text && numeric ? { ...text, orNumber: true } : kept[0];
    found = { ...shape, ...found, anyOf: undefined, oneOf: undefined, nullable: branches.length > kept.length };
  }
  return found;
}

export function field(name, property, required, prefix = "parameters") {
  const wrapper = document.createElement("div");
  wrapper.className = "field";
  wrapper.dataset.field = `${prefix}.${name}`;
  const id = prefix === "parameters" ? `field-${name}` : `${prefix.replace(/[^a-z0-9]+/gi, "-")}-${name}`;
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
    if (property.default !== undefined && property.default !== null) input.value = String(property.default);
    else if (property.nullable) input.placeholder = "(default)";
  }
  input.id = id;
  input.name = name;
  input.dataset.kind = property.enum ? "enum" : property.orNumber ? "text-or-number" : property.type || "string";
  const help = document.createElement("small");
  help.className = "help";
  help.id = `${id}-help`;
  help.textContent = property.description || "";
  input.setAttribute("aria-describedby", help.id);
  const problem = document.createElement("span");
  problem.className = "field-error";
  problem.setAttribute("role", "alert");
  wrapper.append(label, input, help, problem);
  return wrapper;
}

export function parameters(container) {
  const values = {};
  for (const input of container.querySelectorAll("input, select")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") values[input.name] = input.checked;
    else if (input.value === "") continue;
    else if (kind === "enum") values[input.name] = JSON.parse(input.value);
    else if (kind === "integer" || kind === "number") values[input.name] = Number(input.value);
    else if (kind === "text-or-number" && /^-?\d+(\.\d+)?$/.test(input.value)) values[input.name] = Number(input.value);
    else values[input.name] = input.value;
  }
  return values;
}

export function showErrors(error, container, summary) {
  for (const slot of container.querySelectorAll(".field-error")) slot.textContent = "";
  const unplaced = [];
  for (const violation of error.violations || []) {
    const slot = container.querySelector(`[data-field="${CSS.escape(violation.field)}"] .field-error`);
    if (slot) slot.textContent = violation.description;
    else unplaced.push(`${violation.field}: ${violation.description}`);
  }
  summary.textContent = [error.message, ...unplaced].join(" — ");
}
