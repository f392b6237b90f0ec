// Reading and writing CSV text (RFC 4180: quoted fields, "" escapes, CRLF or LF), with
// the separator of the file: "," or ";" (what spreadsheets write where "," is the decimal mark).

export function parseCsv(text, separator = ",") {
  const rows = [];
  let row = [], field = "", quoted = false;
  text = text.replace(/^\uFEFF/, "");
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === separator) { row.push(field); field = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += ch;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ""));
}

// The separator of a CSV file: ";" when its header line has more semicolons than commas
// outside quotes, else ",".
export function detectSeparator(text) {
  const header = text.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0].replace(/"[^"]*"/g, "");
  const count = (ch) => header.split(ch).length - 1;
  return count(";") > count(",") ? ";" : ",";
}

const quote = (value) => {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

export const toCsv = (rows) => rows.map((r) => r.map(quote).join(",")).join("\n") + "\n";
