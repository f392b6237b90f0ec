// Small DOM helpers shared by the pages. Text always goes in as text (textContent).

export const $ = (id) => document.getElementById(id);

// el("p", {class, text, onclick, ...attributes}, ...children)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

// Bring an element into view and give it focus (it needs tabindex="-1" if not focusable).
export function reveal(node) {
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
}
