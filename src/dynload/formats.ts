/**
 * Blocklist formats: text in, networks out, or an error saying which line is wrong. Strict: a
 * list with a line we cannot read is not loaded at all (the old one stays in force), because a
 * half-understood list is a list we cannot vouch for.
 */
import { type Cidr, parseCidr, parseIp } from "../core/ip";
import { compileTemplate } from "../core/rules";

export const FORMATS = ["spamhaus-json", "spamhaus-txt", "nixspam", "ip-lines", "cidr-lines"] as const;
export type FormatName = (typeof FORMATS)[number];

export class FormatError extends Error {}

function cidrOrFail(text: string, line: number): Cidr {
  const net = parseCidr(text);
  if (!net) throw new FormatError(`line ${line}: ${JSON.stringify(text.slice(0, 60))} is not an IPv4/IPv6 network`);
  return net;
}

/**
 * Spamhaus DROP in JSON: one object a line, `{"cidr": "...", "sblid": "...", "rir": "..."}`,
 * ending with `{"type": "metadata", ..., "records": N}`. A list without its metadata line, or
 * with another number of records, was cut short.
 */
function spamhausJson(text: string): Cidr[] {
  const out: Cidr[] = [];
  let records: number | null = null;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    if (records !== null) throw new FormatError(`line ${i + 1}: data after the metadata line`);
    let doc: { cidr?: unknown; type?: unknown; records?: unknown };
    try {
      doc = JSON.parse(line);
    } catch {
      throw new FormatError(`line ${i + 1}: not JSON`);
    }
    if (doc.type === "metadata") {
      records = typeof doc.records === "number" ? doc.records : -1;
      return;
    }
    if (typeof doc.cidr !== "string") throw new FormatError(`line ${i + 1}: no "cidr" field`);
    out.push(cidrOrFail(doc.cidr, i + 1));
  });
  if (records === null) throw new FormatError("no metadata line at the end: the download was cut short");
  if (records !== -1 && records !== out.length) throw new FormatError(`the metadata announces ${records} records, the list has ${out.length}`);
  return out;
}

/** `CIDR ; SBLnnn` lines, `;` comments (DROP, DROPv6, and EDROP which now holds comments only). */
function spamhausTxt(text: string): Cidr[] {
  const out: Cidr[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/;.*/, "").trim();
    if (line !== "") out.push(cidrOrFail(line, i + 1));
  });
  return out;
}

/** NiX Spam dump: `timestamp address` a line (already gunzipped). */
function nixspam(text: string): Cidr[] {
  const out: Cidr[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const fields = line.split(/\s+/);
    const ip = fields.length === 2 ? parseIp(fields[1]!) : null;
    if (!ip) throw new FormatError(`line ${i + 1}: expected "timestamp address", got ${JSON.stringify(line.slice(0, 60))}`);
    out.push(cidrOrFail(ip.text, i + 1));
  });
  return out;
}

/** One address or network a line; `#` and `;` start comments. */
function lines(text: string, networks: boolean): Cidr[] {
  const out: Cidr[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/[#;].*/, "").trim();
    if (line === "") return;
    if (!networks && !parseIp(line)) throw new FormatError(`line ${i + 1}: ${JSON.stringify(line.slice(0, 60))} is not an IPv4/IPv6 address`);
    out.push(cidrOrFail(line, i + 1));
  });
  return out;
}

/** A line template with <HOST> (anchored like a rule's): every non-empty, non-comment line must match. */
function templated(text: string, template: string): Cidr[] {
  const t = compileTemplate(template);
  if (typeof t === "string") throw new FormatError(`format template ${JSON.stringify(template)} ${t}`);
  const out: Cidr[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = t.regex.exec(line);
    const ip = m ? parseIp(m[t.groups.HOST]!) : null;
    if (!ip) throw new FormatError(`line ${i + 1}: does not match ${JSON.stringify(template)}`);
    out.push(cidrOrFail(ip.text, i + 1));
  });
  return out;
}

/** `format` is one of FORMATS, or a line template holding <HOST>. */
function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError("not UTF-8 text");
  }
}

export function parseList(format: string, body: Uint8Array<ArrayBuffer>): Cidr[] {
  const text = () => utf8(body);
  switch (format) {
    case "spamhaus-json":
      return spamhausJson(text());
    case "spamhaus-txt":
      return spamhausTxt(text());
    case "nixspam": {
      let plain: Uint8Array<ArrayBuffer>;
      try {
        plain = body[0] === 0x1f && body[1] === 0x8b ? Bun.gunzipSync(body) : body;
      } catch {
        throw new FormatError("not a valid gzip file");
      }
      return nixspam(utf8(plain));
    }
    case "ip-lines":
      return lines(text(), false);
    case "cidr-lines":
      return lines(text(), true);
    default:
      return templated(text(), format);
  }
}
