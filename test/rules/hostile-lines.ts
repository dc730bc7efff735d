/**
 * Hostile messages that stress one rule's templates, and a clock for what the rule costs on
 * them: used by test/safety/rule-cost.test.ts (cost must grow linearly with the line) and
 * bench/rule-worst.ts (each shipped rule's worst case, in milliseconds).
 *
 * A backtracking regex gets slow when one part of it is tried again at many places and reads
 * far each time: a wildcard that retries the rest of the template at every place the next
 * text appears, a start that is tried at every place the template's head appears, a run that
 * gives back character by character to look for the text after it. So a hostile message here
 * is a head (nothing, or the template's own text up to one of its tokens, filled in) followed by
 * one unit repeated to the wanted length (a piece of the template's literal text, the rest of
 * the template filled in from some point on, or a delimiter), and a tail (nothing, a character
 * that ends a run, or the template's last text). Each family is the same message at any length.
 */
import { type CompiledRule, matchTemplates } from "../../src/core/rules";

export interface Family {
  readonly head: string;
  readonly unit: string;
  readonly tail: string;
}

/**
 * The family's message at about `length` characters: the unit repeated a whole number of times,
 * so that the message ends the same way at every length (a cut unit could match at one length
 * and not at another).
 */
export function hostileMessage(f: Family, length: number): string {
  const fill = Math.max(0, length - f.head.length - f.tail.length);
  return f.head + f.unit.repeat(Math.max(1, Math.round(fill / f.unit.length))) + f.tail;
}

/* a plausible value for each token, to fill a template in */
const SAMPLE: Readonly<Record<string, string>> = {
  HOST: "192.0.2.1",
  PORT: "22",
  COUNT: "1",
  WORD: "w",
  FIELD: "f",
  TEXT: "t",
  NOCOLON: "n",
  VHOST: "v",
  SESSION: "s",
  USER: "u",
  ANY: "a",
};
const WIDE = new Set(["WORD", "FIELD", "TEXT", "NOCOLON", "USER", "ANY"]);
/* delimiters and shapes that end (or do not end) the runs of the tokens */
const GENERIC_UNITS = [" ", ",", "xx,", "x", ":", "a: ", " from ", "(", "<x", "[x", '"', "=", "192.0.2.1 ", "::1", ",uid=1"];
const TAILS = ["", "<", ")", '"', "]", " x"];

type Piece = { readonly text: string; readonly token?: undefined } | { readonly text?: undefined; readonly token: string };

function pieces(source: string): Piece[] {
  const body = source.replace(/^\^/, "").replace(/\$$/, "");
  const out: Piece[] = [];
  let last = 0;
  for (const m of body.matchAll(/<([A-Z]+)>/g)) {
    if (m.index > last) out.push({ text: body.slice(last, m.index) });
    out.push({ token: m[1]! });
    last = m.index + m[0].length;
  }
  if (last < body.length) out.push({ text: body.slice(last) });
  return out;
}

function filled(ps: readonly Piece[]): string {
  return ps.map((p) => (p.token === undefined ? p.text : (SAMPLE[p.token] ?? "x"))).join("");
}

/** The hostile families of one rule: those of each of its templates, or its patterns' for a rule without one. */
export function hostileFamilies(rule: CompiledRule): Family[] {
  const seen = new Set<string>();
  const out: Family[] = [];
  const add = (head: string, unit: string, tail: string) => {
    if (unit === "") return;
    /* the prefilter must let the message through, or no template is ever tried */
    const probe = head + unit + unit + tail;
    const passes = rule.patternIsPrefix ? rule.patterns.some((p) => probe.startsWith(p)) : rule.patterns.some((p) => probe.includes(p));
    if (!passes) head = rule.patterns[0]! + head;
    const key = `${head}\u0000${unit}\u0000${tail}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ head, unit, tail });
  };
  for (const p of rule.patterns) for (const u of GENERIC_UNITS) add(rule.patternIsPrefix ? p : "", u, "");
  for (const t of rule.templates) {
    const ps = pieces(t.source);
    const literals = ps.filter((p) => p.token === undefined).map((p) => p.text);
    /* heads: nothing, or the template filled in up to each wide token (where the retrying starts) */
    const heads = new Set<string>([""]);
    ps.forEach((p, i) => {
      if (p.token !== undefined && WIDE.has(p.token)) heads.add(filled(ps.slice(0, i)));
    });
    /* units: pieces of literal text (whole or broken), the template filled in from each point, delimiters */
    const units = new Set<string>(GENERIC_UNITS);
    for (const l of literals) {
      units.add(l);
      units.add(`${l}x`);
      units.add(`x${l}`);
    }
    for (let i = 0; i < ps.length; i++) units.add(filled(ps.slice(i)));
    const tails = new Set<string>([...TAILS, literals[literals.length - 1] ?? ""]);
    /* the longest filled-in head up to a wide token: where the costliest retrying happens */
    const deepest = [...heads].reduce((a, b) => (b.length > a.length ? b : a), "");
    for (const u of units) {
      for (const h of heads) add(h, u, "");
      for (const tail of tails) {
        add(deepest, u, tail);
        add("", u, tail);
      }
    }
  }
  return out;
}

/**
 * What the daemon does with a message for this rule: the prefilter, then its templates (every one
 * that fits, and each one's other reading, to tell a line that reads two ways: matchTemplates).
 */
export function runRule(rule: CompiledRule, message: string): boolean {
  const passes = rule.patternIsPrefix ? rule.patterns.some((p) => message.startsWith(p)) : rule.patterns.some((p) => message.includes(p));
  if (!passes) return false;
  return matchTemplates(rule, message) !== null;
}

/** Nanoseconds for `reps` runs of the rule on the message. */
export function timeRule(rule: CompiledRule, message: string, reps: number): number {
  const start = Bun.nanoseconds();
  for (let i = 0; i < reps; i++) runRule(rule, message);
  return Bun.nanoseconds() - start;
}

export interface Cost {
  readonly family: Family;
  /** nanoseconds for one message, the least of the runs */
  readonly short: number;
  readonly long: number;
}

/**
 * The cost of one family at two lengths: each message is timed alone (well under a scheduler's
 * time slice, so most runs are not interrupted), the two lengths in alternation (a busy machine
 * slows both alike), and the least of `runs` counts (what the rule itself needs: interference only
 * adds). Stops early once three runs of the long message each cost more than `giveUpRatio`
 * times the short one (a blow-up that would otherwise take minutes to measure).
 */
export function measure(rule: CompiledRule, family: Family, shortLength: number, longLength: number, runs = 15, giveUpRatio = Infinity): Cost {
  const short = hostileMessage(family, shortLength);
  const long = hostileMessage(family, longLength);
  for (let i = 0; i < 3; i++) timeRule(rule, short, 1);
  let bestShort = Infinity;
  let bestLong = Infinity;
  let blownUp = 0;
  for (let r = 0; r < runs; r++) {
    bestShort = Math.min(bestShort, timeRule(rule, short, 1), timeRule(rule, short, 1));
    const t = timeRule(rule, long, 1);
    bestLong = Math.min(bestLong, t);
    if (t > giveUpRatio * bestShort && ++blownUp >= 3) break;
  }
  return { family, short: bestShort, long: bestLong };
}

/**
 * The families most likely to show a rule's worst case: after a pass that warms the rule up
 * (the first runs pay for compiling its regexes), every family is timed at `screenLength` and
 * at an eighth of it, the least of two runs each; the `keep` costliest and the `keep`
 * fastest-growing are returned.
 */
export function worstFamilies(rule: CompiledRule, screenLength: number, keep = 3): Family[] {
  const families = hostileFamilies(rule).map((family) => ({ family, big: hostileMessage(family, screenLength), small: hostileMessage(family, screenLength >> 3) }));
  for (const f of families) runRule(rule, f.small);
  const scored = families.map(({ family, big, small }) => {
    const tBig = Math.min(timeRule(rule, big, 1), timeRule(rule, big, 1));
    const tSmall = Math.min(timeRule(rule, small, 4), timeRule(rule, small, 4)) / 4;
    return { family, tBig, growth: tBig / Math.max(tSmall, 50) };
  });
  const byCost = [...scored].sort((a, b) => b.tBig - a.tBig).slice(0, keep);
  const byGrowth = [...scored].sort((a, b) => b.growth - a.growth).slice(0, keep);
  return [...new Set([...byCost, ...byGrowth].map((s) => s.family))];
}

export function describeFamily(f: Family): string {
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);
  return `${JSON.stringify(cut(f.head, 50))} + ${JSON.stringify(cut(f.unit, 40))}… + ${JSON.stringify(f.tail)}`;
}
