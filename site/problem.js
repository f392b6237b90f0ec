// Telling people what went wrong: a problem box (a failure in words, and a retry) and an
// error summary (GOV.UK pattern: one box that takes focus and links to each field).
// Each page creates its own, explicitly; nothing happens on import.
import { el, reveal } from "./dom.js";
import { TIMEOUT_MS } from "./fetch.js";

const BUSY = new Set([429, 502, 503, 504]);
export const isBusy = (result) => BUSY.has(result.status) || Boolean(result.timedOut);

// A sentence for a person about a failed call, from its status and error body.
export function problemText(result) {
  const wait = result.retryAfter ? ` Try again in ${result.retryAfter} second${result.retryAfter === 1 ? "" : "s"}.` : " Try again in a moment.";
  if (result.cancelled) return "Stopped: you cancelled it.";
  if (result.timedOut) return `No answer after ${Math.round(TIMEOUT_MS / 1000)} seconds: the service is busy or slow right now.${wait}`;
  if (result.status === 0) return "The network seems to be down, or the site cannot be reached.";
  if (result.status === 503) return `The model is not available right now: the service is busy or starting.${wait}`;
  if (BUSY.has(result.status)) return `The service is busy right now (too many requests at once).${wait}`;
  const message = result.body && result.body.error && result.body.error.message;
  return message ? `The request was refused: ${message}` : `Something went wrong (HTTP ${result.status}).`;
}

// The box: <div role="alert" tabindex="-1"><p></p><button>Try again</button></div>.
// show(message, onRetry, {after}) offers the retry after `after` seconds (a Retry-After),
// counting down on the button until then.
export function createProblemBox(root) {
  const text = root.querySelector("p");
  const retry = root.querySelector("button");
  let action = null;
  let timer = null;
  retry.addEventListener("click", () => action && action());
  const stopCountdown = () => {
    clearInterval(timer);
    timer = null;
    retry.disabled = false;
    retry.textContent = "Try again";
  };
  return {
    show(message, onRetry, { after = 0 } = {}) {
      stopCountdown();
      text.textContent = message;
      action = onRetry;
      retry.hidden = !onRetry;
      if (onRetry && after > 0) {
        let left = after;
        retry.disabled = true;
        retry.textContent = `Try again (in ${left} s)`;
        timer = setInterval(() => {
          left -= 1;
          if (left > 0) retry.textContent = `Try again (in ${left} s)`;
          else stopCountdown();
        }, 1000);
      }
      root.hidden = false;
      reveal(root);
    },
    hide() {
      stopCountdown();
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
