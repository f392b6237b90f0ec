// Telling people what went wrong: a problem box (a failure in words, and a retry) and an
// error summary (GOV.UK pattern: one box that takes focus and links to each field).
// Each page creates its own, explicitly; nothing happens on import.
import { el, reveal } from "./dom.js";

// A sentence for a person about a failed call, from its status and error body.
export function problemText(result) {
  if (result.status === 0) return "The network seems to be down, or the site cannot be reached.";
  if (result.status === 503) return "The model is not available right now.";
  const message = result.body && result.body.error && result.body.error.message;
  return message ? `The request was refused: ${message}` : `Something went wrong (HTTP ${result.status}).`;
}

// The box: <div role="alert" tabindex="-1"><p></p><button>Try again</button></div>.
export function createProblemBox(root) {
  const text = root.querySelector("p");
  const retry = root.querySelector("button");
  let action = null;
  retry.addEventListener("click", () => action && action());
  return {
    show(message, onRetry) {
      text.textContent = message;
      action = onRetry;
      retry.hidden = !onRetry;
      root.hidden = false;
      reveal(root);
    },
    hide() {
      root.hidden = true;
    },
  };
}

// The summary: <div tabindex="-1"><h2>There is a problem</h2><ul></ul></div>.
// show([{input, text}]) lists each problem as a link to its field and takes focus.
export function createErrorSummary(root, { beforeFocus } = {}) {
  const list = root.querySelector("ul");
  return {
    show(items) {
      list.replaceChildren(...items.map(({ input, text }) => el("li", {},
        el("a", { href: `#${input.id}`, text, onclick: (event) => {
          event.preventDefault();
          if (beforeFocus) beforeFocus(input);
          input.scrollIntoView({ block: "center" });
          input.focus({ preventScroll: true });
        } }))));
      root.hidden = false;
      reveal(root);
    },
    hide() {
      root.hidden = true;
      list.replaceChildren();
    },
  };
}
