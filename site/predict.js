// The "check a sample" page: a form built from the model's manifest, one prediction, and an
// honest answer: how often the model was right with this answer on cases it never saw, why
// (the tree's path, or a linear model's terms) and what would change it.
import { getHealth, getModel, predict } from "./fetch.js";
import { $, el } from "./dom.js";
import { answerKind, className, featureLabel, formatNumber, heldOut, oneIn, percent, rounded, unitText } from "./format.js";
import { createErrorSummary, createProblemBox, problemText } from "./problem.js";

const MAIN_FIELDS = 6;
const SLOW_MS = 700;
const SHOWN_CHANGES = 3;
const SHOWN_TERMS = 6;
// Plain words beside the technical scales people meet in the reasons.
const SCALE_WORDS = {
  probability: "(A percentage point is 1 in 100: +5 percentage points takes 40% to 45%.)",
  "log-odds": "(Log-odds are the model's own scale of scores: 0 means no push either way, a positive number pushes towards this answer and a negative one away from it.)",
};
// Words for the groups of fields whose names share a first or last word (e.g. "mean radius").
const GROUP_WORDS = { mean: "Averages", error: "Variation", se: "Variation", std: "Variation", worst: "Largest values", max: "Largest values", min: "Smallest values" };

let page = null;
let problem = null;
let summary = null;
let manifest = null;
let wake = null; // the GET /api/health sent when the page opens: it loads the model while people read
let running = null; // the AbortController of the check in flight
const inputs = new Map(); // feature name -> {feature, input, error, note, box, source}

function findElements() {
  return {
    title: $("title"), description: $("description"), warning: $("warning"), status: $("status"),
    formSection: $("form-section"), examples: $("examples"), form: $("predict-form"),
    main: $("main-fields"), more: $("more"), moreFields: $("more-fields"), filter: $("filter"),
    filterCount: $("filter-count"), button: $("predict-button"), cancel: $("cancel-button"), result: $("result"),
    stale: $("result-stale"), label: $("result-label"), confidence: $("result-confidence"),
    disclaimer: $("result-disclaimer"), whyIntro: $("result-why-intro"), reasons: $("result-reasons"),
    changesHeading: $("result-changes-heading"), changesIntro: $("result-changes-intro"),
    changes: $("result-changes"), warnings: $("result-warnings"), defaults: $("result-defaults"),
  };
}

const nameOf = (feature) => featureLabel(feature);
const labelText = (name) => (inputs.has(name) ? nameOf(inputs.get(name).feature) : name);
const quoted = (label) => `“${className(label)}”`;
const isNumeric = (f) => f.type === "number" || f.type === "integer";
const cannotBeNegative = (f) => isNumeric(f) && typeof f.min === "number" && f.min >= 0;
const isEmpty = ({ input }) => input.value.trim() === "";

// ---- The form ------------------------------------------------------------------------------

function rangeHint(f) {
  const optional = f.optional ? " Leave it empty if it was not measured." : "";
  if (f.type === "categorical") return `One of: ${f.categories.join(", ")}.${optional}`;
  if (f.type === "text") return `Any text up to ${f.max_length} characters.${optional}`;
  const p = f.percentiles || {};
  return (p.p25 !== undefined ? `Half the training samples had ${formatNumber(p.p25)} to ${formatNumber(p.p75)}${unitText(f)}.` : "") + optional;
}

function buildInput(feature, id) {
  if (feature.type === "categorical") {
    const none = feature.optional ? [el("option", { value: "", text: "Not measured" })] : [];
    return el("select", { id, name: feature.name }, ...none,
      ...feature.categories.map((c) => el("option", { value: String(c), text: String(c) })));
  }
  if (feature.type === "text") {
    return el("textarea", { id, name: feature.name, rows: 3, maxlength: feature.max_length, required: !feature.optional });
  }
  return el("input", { id, name: feature.name, type: "number", step: "any", inputmode: "decimal",
    required: !feature.optional, min: feature.min, max: feature.max }); // the training range; values outside are noted, not refused
}

function buildField(feature, index) {
  const id = `f-${index}`;
  const input = buildInput(feature, id);
  const about = feature.description ? `${feature.description[0].toUpperCase()}${feature.description.slice(1)}. ` : "";
  const hint = el("span", { class: "hint", id: `${id}-hint`, text: about + rangeHint(feature) });
  const error = el("span", { class: "field-error", id: `${id}-error` });
  const note = el("span", { class: "field-warning", id: `${id}-note` });
  input.setAttribute("aria-describedby", `${id}-hint ${id}-error ${id}-note`);
  input.value = feature.default === undefined || feature.default === null ? "" : String(isNumeric(feature) ? rounded(feature.default, 4) : feature.default);
  const box = el("div", { class: "field", "data-search": `${nameOf(feature)} ${feature.name}`.toLowerCase() },
    el("label", { for: id, text: nameOf(feature) }), input, hint, error, note);
  inputs.set(feature.name, { feature, input, error, note, box, source: "default" });
  // Checked as people type (not on blur, which would move the button under their pointer);
  // an emptied field is only reported on "Check".
  input.addEventListener("input", () => {
    inputs.get(feature.name).source = "entered";
    showFieldState(inputs.get(feature.name), { errors: input.value.trim() !== "" });
  });
  return box;
}

// Groups of features whose names share a first or last word used by 3 or more of them.
function groupsOf(features) {
  const words = (f) => f.name.trim().split(/[\s_]+/);
  const count = new Map();
  for (const f of features) {
    const w = words(f);
    if (w.length < 2) continue;
    for (const key of new Set([`first:${w[0]}`, `last:${w[w.length - 1]}`])) count.set(key, (count.get(key) || 0) + 1);
  }
  const groups = new Map();
  for (const f of features) {
    const w = words(f);
    const keys = w.length < 2 ? [] : [`first:${w[0]}`, `last:${w[w.length - 1]}`].filter((k) => count.get(k) >= 3);
    keys.sort((a, b) => count.get(b) - count.get(a));
    const key = keys[0] || "other";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(f);
  }
  const title = (key) => {
    if (key === "other") return groups.size > 1 ? "Other measurements" : "Measurements";
    const word = key.split(":")[1];
    const words = GROUP_WORDS[word.toLowerCase()];
    return words ? `${words} (“${word}”)` : `Measurements named “${word}”`;
  };
  return [...groups].map(([key, list]) => ({ title: title(key), features: list }));
}

function buildForm() {
  const byImportance = [...manifest.features].sort((a, b) => (b.importance || 0) - (a.importance || 0));
  const main = byImportance.slice(0, MAIN_FIELDS);
  const rest = byImportance.slice(MAIN_FIELDS);
  let index = 0;
  page.main.append(...main.map((f) => buildField(f, index++)));
  const order = new Map(manifest.features.map((f, i) => [f.name, i]));
  for (const group of groupsOf(rest.sort((a, b) => order.get(a.name) - order.get(b.name)))) {
    const fieldset = el("fieldset", { class: "group" }, el("legend", { text: group.title }),
      el("div", { class: "fields" }, ...group.features.map((f) => buildField(f, index++))));
    page.moreFields.append(fieldset);
  }
  page.more.hidden = rest.length === 0;
  for (const example of manifest.examples || []) {
    const text = example.label === undefined ? `Use the ${example.name.toLowerCase()}`
      : String(className(example.label)) === String(example.label) ? `Use a typical ${example.label} case`
        : `Use a typical ‘${className(example.label)}’ case`;
    page.examples.append(el("button", { type: "button", class: "example", text, onclick: () => loadExample(example, text) }));
  }
  filterFields();
}

function filterFields() {
  const query = page.filter.value.trim().toLowerCase();
  let shown = 0, total = 0;
  for (const fieldset of page.moreFields.querySelectorAll("fieldset")) {
    let visible = 0;
    for (const box of fieldset.querySelectorAll(".field")) {
      box.hidden = query !== "" && !box.dataset.search.includes(query);
      visible += box.hidden ? 0 : 1;
      total += 1;
    }
    fieldset.hidden = visible === 0;
    shown += visible;
  }
  page.filterCount.textContent = query ? `${shown} of ${total} shown` : "";
}

function loadExample(example, text) {
  for (const [name, value] of Object.entries(example.features)) {
    const field = inputs.get(name);
    if (!field) continue;
    field.input.value = value === null ? "" : String(typeof value === "number" ? rounded(value, 6) : value);
    field.source = "example";
  }
  for (const field of inputs.values()) showFieldState(field, { errors: false });
  summary.hide();
  markStale();
  page.status.textContent = `Loaded: ${text.replace(/^Use /, "")}. Press “Check this sample”.`;
}

function readForm() {
  const features = {};
  for (const [name, { feature, input }] of inputs) {
    if (feature.optional && input.value.trim() === "") {
      features[name] = null; // not measured
    } else if (feature.type === "text") {
      features[name] = input.value;
    } else if (feature.type === "categorical") {
      const match = feature.categories.find((c) => String(c) === input.value);
      features[name] = match === undefined ? input.value : match;
    } else {
      features[name] = input.value.trim() === "" || Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber;
    }
  }
  return features;
}

// What is wrong with a field's value before anything is sent, or null.
function problemOf({ feature, input }) {
  if (feature.optional && isEmpty({ input })) return null; // "not measured"
  if (feature.type === "text") return isEmpty({ input }) ? "Enter some text" : null;
  if (feature.type === "categorical") return input.value === "" ? "Choose a value" : null;
  if (input.validity.badInput || (input.value.trim() !== "" && Number.isNaN(input.valueAsNumber))) return "Enter a number, like 12.5";
  if (input.value.trim() === "") return "Enter a number";
  if (feature.type === "integer" && !Number.isInteger(input.valueAsNumber)) return "Enter a whole number";
  if (input.valueAsNumber < 0 && cannotBeNegative(feature)) return "Cannot be negative: every sample the model learned from had 0 or more";
  return null;
}

function outsideNote({ feature, input }) {
  if (!isNumeric(feature) || typeof feature.min !== "number" || Number.isNaN(input.valueAsNumber)) return "";
  const v = input.valueAsNumber;
  if (v >= feature.min && v <= feature.max) return "";
  return `Outside the range the model learned from (${formatNumber(feature.min)} to ${formatNumber(feature.max)}): it will still answer, less reliably.`;
}

function setError(field, text) {
  field.error.textContent = text;
  if (text) field.input.setAttribute("aria-invalid", "true");
  else field.input.removeAttribute("aria-invalid");
}

function showFieldState(field, { errors }) {
  const problemText = problemOf(field);
  if (errors || !problemText) setError(field, problemText || "");
  field.note.textContent = problemText ? "" : outsideNote(field);
}

function openFor(input) {
  if (page.more.contains(input)) page.more.open = true;
  const box = input.closest(".field");
  if (box && box.hidden) {
    page.filter.value = "";
    filterFields();
  }
}

function showFieldProblems(list) {
  for (const { field } of list) openFor(field.input);
  summary.show(list.map(({ field, text }) => ({ input: field.input, text: `${nameOf(field.feature)}: ${text}` })));
}

// ---- The answer ----------------------------------------------------------------------------

function markStale() {
  if (page.result.hidden) return;
  page.result.classList.add("stale");
  page.stale.hidden = false;
  page.status.textContent = "You changed a value: the answer below is out of date.";
}

function hideResult() {
  page.result.hidden = true;
  page.result.classList.remove("stale");
  page.stale.hidden = true;
}

// A share of training samples in words that never claim certainty with a percentage.
const share = (p) => (p === 1 ? "all" : p === 0 ? "none" : p > 0.99 ? "over 99%" : p < 0.01 ? "under 1%" : percent(p));

// How a share moved at one step, in words: "up from 37%".
const moved = (before, after) => {
  const was = share(before);
  return was === share(after) ? "no change" : `${after > before ? "up" : "down"} from ${was}`;
};

function trackRecord(label, explanation) {
  const lines = [];
  const m = manifest.metrics;
  if (manifest.task !== "classification") {
    lines.push(heldOut(manifest) && m && m.mae !== undefined
      ? `On ${m.rows} cases it had never seen, its answers were off by ${formatNumber(m.mae)} on average.`
      : "How far off its answers are on new cases is not known: it was not tested on cases kept aside from its training.");
    const leaf = explanation && explanation.leaf;
    if (leaf) lines.push(`This value is the average of the ${leaf.samples} training sample${leaf.samples === 1 ? "" : "s"} that ended where this one did.`);
    return lines;
  }
  if (!heldOut(manifest)) {
    lines.push("How often this answer is right is not known: the model was not tested on cases kept aside from its training.");
  } else {
    const cm = m.confusion_matrix;
    const k = cm ? cm.labels.map(String).indexOf(String(label)) : -1;
    if (k >= 0) {
      const said = cm.matrix.reduce((sum, row) => sum + row[k], 0);
      const right = cm.matrix[k][k];
      lines.push(said
        ? `Track record: of the ${said} times it answered ${quoted(label)} on ${m.rows} test cases it had never seen, it was right ${right === said ? "every time" : `${right} times (${percent(right / said)})`}.`
        : `Track record: it never answered ${quoted(label)} on the ${m.rows} test cases it had never seen, so how often this answer is right is not known.`);
    }
    const positive = manifest.positive_label;
    const stats = positive !== undefined && m.per_class ? m.per_class[String(positive)] : null;
    if (stats && stats.support) {
      const found = Math.round(stats.recall * stats.support);
      lines.push(found < stats.support
        ? `It misses ${oneIn(1 - stats.recall)} ${quoted(positive)} cases: in testing it found ${found} of ${stats.support}.`
        : `In testing it found all ${stats.support} ${quoted(positive)} cases; it can still miss some.`);
    }
  }
  const leaf = explanation && explanation.leaf;
  if (leaf && leaf.counts) {
    const n = leaf.samples, c = leaf.counts[String(label)] ?? 0;
    lines.push(c === n
      ? `All ${n} training samples that ended where this one did were ${quoted(label)}.`
      : `${c} of the ${n} training samples that ended where this one did were ${quoted(label)}.`);
  }
  return lines;
}

function scoreLines(result, label) {
  if (!result.probabilities || (result.explanation && result.explanation.leaf)) return [];
  const score = (p) => (p > 0.99 ? "above 0.99" : p < 0.01 ? "below 0.01" : p.toFixed(2));
  const others = Object.entries(result.probabilities).filter(([o]) => o !== String(label));
  const rest = others.length ? ` Other answers: ${others.map(([o, q]) => `${className(o)} ${score(q)}`).join(", ")}.` : "";
  return [`The model's own score for this answer: ${score(result.probabilities[String(label)])} on a scale of 0 to 1 (a score, not how often it is right).${rest}`];
}

function stepText(step, space, target) {
  const value = `${labelText(step.feature)} is ${formatNumber(step.value)}, ${step.op === "<=" ? "at most" : "above"} ${formatNumber(step.threshold)}`;
  if (space === "probability") return `${value}: ${share(step.after)} of those were ${quoted(target)} (${moved(step.before, step.after)}).`;
  const diff = step.after - step.before;
  return `${value}: average ${formatNumber(step.after)} (${diff >= 0 ? "up" : "down"} ${formatNumber(Math.abs(diff))}).`;
}

function showReasons(explanation) {
  page.reasons.replaceChildren();
  page.changes.replaceChildren();
  page.reasons.hidden = false;
  const hasChanges = Boolean(explanation && explanation.changes);
  page.changesHeading.hidden = !hasChanges;
  page.changesIntro.hidden = !hasChanges;
  page.changes.hidden = !hasChanges;
  if (!explanation) {
    page.whyIntro.textContent = "This model gives no explanation of its answers: only decision trees, tree ensembles (forests, boosting) and linear models can be explained here.";
    page.reasons.hidden = true;
    return;
  }
  const { target, space } = explanation;
  if (explanation.method === "decision_path") {
    page.whyIntro.textContent = space === "probability"
      ? "The tree's steps, from the start to this answer. Each share is of the training samples that took the same steps."
      : "The tree's steps, from the start to this answer. Each average is of the training samples that took the same steps.";
    page.reasons.append(el("li", { text: space === "probability"
      ? `At the start: ${share(explanation.base_value)} of the training samples were ${quoted(target)}.`
      : `At the start: the training samples averaged ${formatNumber(explanation.base_value)}.` }));
    for (const step of explanation.path) page.reasons.append(el("li", { text: stepText(step, space, target) }));
  } else {
    const percent = space === "probability";  // a forest's or boosting's share, in points
    const units = percent ? `the model's probability for ${quoted(target)}, in percentage points`
      : space === "log-odds" ? `the model's score for ${quoted(target)} (in log-odds: 0 is no effect, a positive number pushes towards this answer)`
      : space === "score" ? `the model's score for ${quoted(target)} (a positive number pushes towards this answer)` : "the predicted value, in its own units";
    const start = percent ? share(explanation.base_value) : formatNumber(explanation.base_value);
    page.whyIntro.textContent = explanation.method === "linear"
      ? `What each measurement added to ${units}, compared with a typical case (every measurement at its usual value), where it is ${start}.`
      : `What each measurement added to ${units}. Before any measurement it starts at ${start}.`;
    for (const c of explanation.contributions.slice(0, SHOWN_TERMS)) {
      const sign = c.contribution >= 0 ? "+" : "−";
      const size = percent ? `${formatNumber(Math.abs(c.contribution) * 100)} percentage points` : formatNumber(Math.abs(c.contribution));
      const named = c.value === undefined ? labelText(c.feature) : `${labelText(c.feature)} = ${c.value}`;
      page.reasons.append(el("li", { text: `${named}: ${sign}${size}` }));
    }
    if (!explanation.contributions.length) page.reasons.append(el("li", { text: "No measurement moved the score." }));

    if (SCALE_WORDS[space]) page.whyIntro.append(` ${SCALE_WORDS[space]}`);
  }
  if (hasChanges) {
    const changes = explanation.changes.slice(0, SHOWN_CHANGES);
    page.changesIntro.textContent = changes.length
      ? "The smallest change of one measurement that makes the tree answer otherwise, every other measurement staying as it is:"
      : "No change of a single measurement would make the tree answer otherwise.";
    for (const c of changes) {
      page.changes.append(el("li", { text: `If ${labelText(c.feature)} were ${String(c.to)} instead of ${formatNumber(c.from)}, the answer would be ${quoted(c.label)}.` }));
    }
  }
}

// Which values the person gave and which are still the form's typical starting values.
function showDefaults() {
  const fields = [...inputs.values()];
  const names = (list) => list.map((f) => nameOf(f.feature)).join(", ");
  const missing = fields.filter((f) => f.feature.optional && isEmpty(f));
  const given = fields.filter((f) => !missing.includes(f));
  const defaults = given.filter((f) => f.source === "default");
  const entered = given.filter((f) => f.source === "entered").length;
  const fromExample = given.filter((f) => f.source === "example").length;
  const said = [];
  if (entered) said.push(`you entered ${entered}`);
  if (fromExample) said.push(`${fromExample} came from the example you loaded`);
  const lines = [];
  if (!defaults.length) lines.push(`Of the ${given.length} values checked, ${said.join(" and ")}.`);
  else if (!said.length) lines.push(`You entered no values: all ${defaults.length} are the typical values the form starts with (the middle of the training samples), not measurements of a real sample.`);
  else lines.push(`Of the ${given.length} values checked, ${said.join(" and ")}; these ${defaults.length} are still the typical values the form starts with, not measurements of this sample: ${names(defaults)}.`);
  if (missing.length) lines.push(`Not measured (left empty): ${names(missing)}.`);
  page.defaults.replaceChildren(...lines.map((text) => el("p", { text })));
}

function showResult(result) {
  const label = result.label ?? result.value;
  const words = (manifest.label_descriptions || {})[String(label)];
  const shown = manifest.task === "classification" ? className(label) : `Predicted value: ${formatNumber(label)}`;
  page.label.textContent = words ? `${shown}: ${words}` : String(shown);
  page.result.dataset.answer = answerKind(manifest, label);
  page.confidence.replaceChildren(...[...trackRecord(label, result.explanation), ...scoreLines(result, label)]
    .map((text) => el("li", { text })));
  const limits = manifest.limitations || [];
  page.disclaimer.textContent = limits[0] || "";
  page.disclaimer.hidden = !limits.length;
  showDefaults();
  showReasons(result.explanation);
  page.warnings.replaceChildren();
  for (const w of result.warnings) {
    const field = inputs.get(w.field);
    if (field) field.note.textContent = `Outside the range the model learned from (${formatNumber(w.min)} to ${formatNumber(w.max)}): it still answered, less reliably.`;
    page.warnings.append(el("li", { text: `${labelText(w.field)} is outside the range the model learned from (${formatNumber(w.min)} to ${formatNumber(w.max)}): this answer is less reliable.` }));
  }
  page.result.classList.remove("stale");
  page.stale.hidden = true;
  page.result.hidden = false;
  page.result.scrollIntoView({ block: "start" });
  page.result.focus({ preventScroll: true });
}

async function submit(event) {
  if (event) event.preventDefault();
  problem.hide();
  hideResult();
  const found = [];
  for (const field of inputs.values()) {
    showFieldState(field, { errors: true });
    const text = problemOf(field);
    if (text) found.push({ field, text });
  }
  if (found.length) {
    page.status.textContent = `${found.length === 1 ? "One value needs" : `${found.length} values need`} a look: see the list above the form.`;
    showFieldProblems(found);
    return;
  }
  summary.hide();
  page.button.disabled = true;
  page.status.textContent = "Checking…";
  const slow = setTimeout(() => { page.status.textContent = "Still working…"; }, SLOW_MS);
  running = new AbortController();
  page.cancel.hidden = false;
  try {
    // The model may still be loading for the request sent when the page opened: wait for
    // it rather than send a second request that would start a second cold instance.
    const aborted = new Promise((done) => running.signal.addEventListener("abort", done));
    if (wake) await Promise.race([wake, aborted]);
    const answer = running.signal.aborted ? { status: 0, cancelled: true } : await predict({ features: readForm() }, { signal: running.signal });
    if (answer.cancelled) {
      page.status.textContent = "Cancelled: nothing was checked. Press “Check this sample” to try again.";
    } else if (answer.ok) {
      page.status.textContent = "Done: the answer is below.";
      showResult(answer.body.results[0]);
    } else if (answer.status === 400 && answer.body && answer.body.error && answer.body.error.details.some((d) => inputs.has(d.field))) {
      const list = answer.body.error.details.filter((d) => inputs.has(d.field)).map((d) => {
        const field = inputs.get(d.field);
        const text = d.code === "missing_feature" ? "Enter a number" : `Check this value: ${d.message}`;
        setError(field, text);
        return { field, text };
      });
      page.status.textContent = "Some values need a look: see the list above the form.";
      showFieldProblems(list);
    } else {
      page.status.textContent = "The check did not go through: see the message at the top.";
      problem.show(problemText(answer), submit, { after: answer.retryAfter });
    }
  } finally {
    clearTimeout(slow);
    running = null;
    page.cancel.hidden = true;
    page.button.disabled = false;
  }
}

async function load() {
  problem.hide();
  page.description.textContent = "Loading what the model does…";
  wake = getHealth();
  const model = await getModel();
  if (!model.ok) {
    page.description.textContent = "The model's description could not be loaded, so the form cannot be shown yet.";
    problem.show(problemText(model), load, { after: model.retryAfter });
    return;
  }
  manifest = model.body;
  page.title.textContent = manifest.title || manifest.name;
  document.title = `${manifest.title || manifest.name} (demo)`;
  page.description.textContent = manifest.description || "";
  const limits = manifest.limitations || [];
  page.warning.textContent = limits[0] || "";
  page.warning.hidden = !limits.length;
  if (!inputs.size) buildForm();
  page.formSection.hidden = false;
}

function start() {
  page = findElements();
  problem = createProblemBox($("problem"));
  summary = createErrorSummary($("error-summary"), { beforeFocus: openFor });
  page.form.addEventListener("submit", submit);
  page.cancel.addEventListener("click", () => running && running.abort());
  page.form.addEventListener("input", (event) => {
    if (event.target !== page.filter) markStale();
  });
  page.filter.addEventListener("input", filterFields);
  page.filter.addEventListener("keydown", (event) => event.key === "Enter" && event.preventDefault());
  load();
}

start();
