// The "check a sample" page: a form built from the model's manifest, one prediction.
import { getHealth, getModel, predict, problemText, showProblem, hideProblem, formatNumber, percent, el } from "./api.js";

const MAIN_FIELDS = 6;
const SLOW_MS = 700;
const $ = (id) => document.getElementById(id);
const page = {
  title: $("title"), description: $("description"), warning: $("warning"), status: $("status"),
  examples: $("examples"), form: $("predict-form"), main: $("main-fields"), more: $("more"),
  moreFields: $("more-fields"), button: $("predict-button"), result: $("result"),
  label: $("result-label"), bar: $("result-bar"), probability: $("result-probability"),
  reasons: $("result-reasons"), warnings: $("result-warnings"),
};
let manifest = null;
let warm = false;
const inputs = new Map(); // feature name -> {feature, input, error, note}

const featureLabel = (f) => f.label || f.name;
const unitText = (f) => (f.unit && f.unit !== "ratio" ? ` ${f.unit}` : "");

function rangeHint(f) {
  if (f.type === "categorical") return `One of: ${f.categories.join(", ")}`;
  const p = f.percentiles || {};
  return p.p25 !== undefined ? `Typical: ${formatNumber(p.p25)} to ${formatNumber(p.p75)}${unitText(f)}` : "";
}

function buildField(feature, index) {
  const id = `f-${index}`;
  const input = feature.type === "categorical"
    ? el("select", { id, name: feature.name }, ...feature.categories.map((c) => el("option", { value: String(c), text: String(c) })))
    : el("input", { id, name: feature.name, type: "number", step: "any", inputmode: "decimal", required: "" });
  const about = feature.description ? `${feature.description[0].toUpperCase()}${feature.description.slice(1)}. ` : "";
  const hint = el("span", { class: "hint", id: `${id}-hint`, text: about + rangeHint(feature) });
  const error = el("span", { class: "field-error", id: `${id}-error`, role: "alert" });
  const note = el("span", { class: "field-warning", id: `${id}-note` });
  input.setAttribute("aria-describedby", `${id}-hint ${id}-error ${id}-note`);
  input.value = String(feature.default ?? "");
  inputs.set(feature.name, { feature, input, error, note });
  return el("div", { class: "field" },
    el("label", { for: id, text: featureLabel(feature) }), input, hint, error, note);
}

function buildForm() {
  const byImportance = [...manifest.features].sort((a, b) => (b.importance || 0) - (a.importance || 0));
  byImportance.forEach((f, i) => (i < MAIN_FIELDS ? page.main : page.moreFields).append(buildField(f, i)));
  for (const example of manifest.examples || []) {
    page.examples.append(el("button", { type: "button", class: "example", text: `Use a ${example.name.toLowerCase()}`, onclick: () => loadExample(example) }));
  }
}

function loadExample(example) {
  for (const [name, value] of Object.entries(example.features)) {
    const field = inputs.get(name);
    if (field) field.input.value = String(value);
  }
  clearFieldMessages();
  page.status.textContent = `Loaded the ${example.name.toLowerCase()}. Press “Check this sample”.`;
}

function readForm() {
  const features = {};
  for (const [name, { feature, input }] of inputs) {
    if (feature.type === "categorical") {
      const match = feature.categories.find((c) => String(c) === input.value);
      features[name] = match === undefined ? input.value : match;
    } else {
      features[name] = input.value.trim() === "" || Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber;
    }
  }
  return features;
}

function clearFieldMessages() {
  for (const { input, error, note } of inputs.values()) {
    error.textContent = "";
    note.textContent = "";
    input.removeAttribute("aria-invalid");
  }
}

function showFieldErrors(details) {
  let first = null;
  for (const d of details) {
    const field = inputs.get(d.field);
    if (!field) continue;
    field.error.textContent = d.code === "missing_feature" ? "Please enter a number." : `Please check this value: ${d.message}.`;
    field.input.setAttribute("aria-invalid", "true");
    if (page.moreFields.contains(field.input)) page.more.open = true;
    first = first || field.input;
  }
  if (first) first.focus();
}

function reasonText(contribution, explanation) {
  const field = inputs.get(contribution.feature);
  const name = field ? featureLabel(field.feature) : contribution.feature;
  const steps = (explanation.path || []).filter((s) => s.feature === contribution.feature);
  const step = steps[steps.length - 1];
  const where = step
    ? `${formatNumber(step.value)} is ${step.op === "<=" ? "at most" : "above"} ${formatNumber(step.threshold)}`
    : `${field ? field.input.value : "its value"}`;
  const c = contribution.contribution;
  let effect = `made “${explanation.target}” more likely`;
  if (explanation.space === "probability") effect += ` (+${Math.round(c * 100)} points)`;
  if (explanation.space === "value") effect = `${c > 0 ? "raised" : "lowered"} the prediction by ${formatNumber(Math.abs(c))}`;
  return `${name}: ${where}, which ${effect}.`;
}

// The contributions worth telling: the largest that favour the answer (for a value, either way).
function mainReasons(explanation) {
  if (!explanation) return [];
  const all = explanation.contributions;
  return (explanation.space === "value" ? all : all.filter((c) => c.contribution > 0)).slice(0, 3);
}

function showResult(result) {
  const label = String(result.label ?? formatNumber(result.value));
  const words = (manifest.label_descriptions || {})[label];
  page.label.textContent = words ? `${label}: ${words}` : label;
  page.label.className = `result-label label-${label.replace(/\W+/g, "-")}`;
  const p = result.probabilities ? result.probabilities[label] : null;
  page.bar.parentElement.hidden = p === null;
  if (p !== null) {
    page.bar.style.width = percent(p);
    const others = Object.entries(result.probabilities).filter(([other]) => other !== label);
    const rest = others.length > 1 ? ` Other answers: ${others.map(([o, q]) => `${o} ${percent(q)}`).join(", ")}.` : "";
    page.probability.textContent = `The model gives this answer a probability of ${percent(p)}.${rest}`;
  } else {
    page.probability.textContent = "";
  }
  const limits = manifest.limitations || [];
  if (limits.length) page.probability.textContent += ` ${limits[0]}`;
  page.reasons.replaceChildren();
  const explanation = result.explanation;
  const helping = mainReasons(explanation);
  for (const c of helping) page.reasons.append(el("li", { text: reasonText(c, explanation) }));
  if (!helping.length) page.reasons.append(el("li", { text: "The model gives no single measurement a large part in this answer." }));
  page.warnings.replaceChildren();
  for (const w of result.warnings) {
    const field = inputs.get(w.field);
    const name = field ? featureLabel(field.feature) : w.field;
    if (field) field.note.textContent = `Outside the range the model learned from (${formatNumber(w.min)} to ${formatNumber(w.max)}).`;
    page.warnings.append(el("li", { text: `${name} is ${w.message}.` }));
  }
  page.result.hidden = false;
  page.result.scrollIntoView({ block: "nearest" });
}

async function submit(event) {
  if (event) event.preventDefault();
  hideProblem();
  clearFieldMessages();
  page.button.disabled = true;
  page.status.textContent = "Checking…";
  const slow = setTimeout(() => {
    page.status.textContent = warm ? "Still working…" : "Waking the model up: the first check after a while takes a few seconds…";
  }, SLOW_MS);
  try {
    const answer = await predict({ features: readForm() });
    if (answer.ok) {
      warm = true;
      page.status.textContent = "Done.";
      showResult(answer.body.results[0]);
    } else if (answer.status === 400 && answer.body && answer.body.error.details.length) {
      page.status.textContent = "Some values need a look: see the messages next to the fields.";
      showFieldErrors(answer.body.error.details);
    } else {
      page.status.textContent = "";
      showProblem(problemText(answer), submit);
    }
  } finally {
    clearTimeout(slow);
    page.button.disabled = false;
  }
}

async function start() {
  hideProblem();
  page.status.textContent = "Loading the model's description…";
  const [model, health] = await Promise.all([getModel(), getHealth()]);
  if (!model.ok) {
    page.status.textContent = "";
    showProblem(problemText(model), start);
    return;
  }
  manifest = model.body;
  warm = Boolean(health.ok && health.body.warm);
  page.title.textContent = manifest.title || manifest.name;
  page.description.textContent = manifest.description || "";
  const limits = manifest.limitations || [];
  page.warning.textContent = limits[0] || "";
  page.warning.hidden = !limits.length;
  if (!inputs.size) buildForm();
  page.status.textContent = warm ? "" : "The model is asleep: your first check wakes it up and may take a few seconds.";
}

page.form.addEventListener("submit", submit);
start();
