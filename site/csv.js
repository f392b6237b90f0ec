// Reading and writing CSV text (RFC 4180: quoted fields, "" escapes, CRLF or LF), with
// the separator of the file: "," or ";" (what spreadsheets write where "," is the decimal mark).

// Each record of the text as {cells, start, end} (its character offsets), blank lines skipped.
export function* records(text, separator = ",") {
  const sep = separator.charCodeAt(0);
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < n) {
    const start = i;
    const cells = [];
    for (;;) {
      let cell = "";
      if (text.charCodeAt(i) === 34) { // a quoted cell: "" is one quote
        let j = i + 1;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) { cell += text.slice(j); i = n; break; }
          cell += text.slice(j, q);
          if (text.charCodeAt(q + 1) === 34) { cell += '"'; j = q + 2; } else { i = q + 1; break; }
        }
      }
      let j = i; // an unquoted cell, or what follows a closing quote
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === sep || c === 10 || c === 13) break;
        j++;
      }
      cells.push(j > i ? cell + text.slice(i, j) : cell);
      i = j;
      if (i >= n) break;
      const c = text.charCodeAt(i);
      i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      if (c !== sep) break;
      if (i >= n) { cells.push(""); break; }
    }
    if (cells.some((cell) => cell.trim() !== "")) yield { cells, start, end: i };
  }
}

export function parseCsv(text, separator = ",") {
  return Array.from(records(text, separator), (r) => r.cells);
}

// The separator of a CSV file: ";" when its header line has more semicolons than commas
// outside quotes, else ",".
export function detectSeparator(text) {
  const header = text.slice(0, 65536).replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0].replace(/"[^"]*"/g, "");
  const count = (ch) => header.split(ch).length - 1;
  return count(";") > count(",") ? ";" : ",";
}

const NUMBER = /^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?$/;
const FORMULA = /^[=+\-@\t\r]/;

// A cell as a spreadsheet should read it: one that would start a formula (OWASP's CSV
// injection rule: = + - @ tab CR) gets a leading ' unless it is a plain number; quoted
// when it holds the separator, a quote or a line break.
export function csvCell(value, separator = ",") {
  let text = value === null || value === undefined ? "" : String(value);
  if (FORMULA.test(text) && !NUMBER.test(text)) text = `'${text}`;
  return text.includes(separator) || /["\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvLine = (cells, separator = ",") => cells.map((c) => csvCell(c, separator)).join(separator) + "\n";

export const toCsv = (rows, separator = ",") => rows.map((r) => csvLine(r, separator)).join("");
