/**
 * Rule files: load (TOML), validate (zod), compile, match.
 *
 * A rule names the programs it listens to, a plain-substring `pattern` that prefilters
 * lines cheaply, and a `host` template that extracts the address from where the service
 * writes it. Templates are anchored (`^` and/or `$`) and linted so that text an attacker
 * controls (a user name, a client banner) can never choose the address:
 *  - at most one <USER> (attacker text, matched greedily) and one <ANY> (server text, lazily),
 *    at most one of them on each side of <HOST>;
 *  - a wildcard before <HOST> needs `$` (the address is then the one followed by the
 *    server-written tail), one after <HOST> needs `^` (the one after the server-written head);
 *    with one on each side, both anchors.
 * Each template compiles to a regex whose cost is linear in the line, whatever the line (see
 * compileTemplate). A rule without `host` takes the address of its session (program[pid]). A
 * template may read the service's own session id instead of an address (<SESSION>, no <HOST>:
 * OpenSMTPD names the client only on a session's first line), linted the same way: the line then
 * takes the address the server wrote on that session's other lines (sessions.ts).
 *
 * A line that reads two ways yields no address of its own: when the rule's templates place <HOST>
 * at two places of the line (a user name holding "from 10.0.0.1 port 22 ssh2:", auth info after
 * "ssh2: " holding the same), whichever the attacker wrote could be the one taken, so the line's
 * session decides (see sessions.ts). `session = "start"` / `"end"` mark the lines where the server
 * starts and ends a connection, so that a reused pid never inherits an earlier client's address.
 */
import { z } from "zod";
import { ConfigError } from "./errors";
import { type Ip, parseLoggedIp } from "./ip";
import { parseToml } from "./toml";
import type { HeaderScan } from "./syslog";

export const ACTIONS = ["count", "ban", "ignore", "success"] as const;
export type Action = (typeof ACTIONS)[number];
export type Mode = "normal" | "aggressive";

const RuleSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "lower-case letters, digits and dashes"),
    /** plain text the line must contain ("^text": start with, "text$": end with); a list: any one of them */
    pattern: z.union([z.string().min(1, "must not be empty"), z.array(z.string().min(1, "must not be empty")).min(1)], {
      error: "expected string: the text a line must contain, or a list of such texts",
    }),
    host: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: "expected string: a template, or a list of templates" }).optional(),
    action: z.enum(ACTIONS).default("count"),
    mode: z.enum(["normal", "aggressive"]).default("normal"),
    group: z.string().min(1).optional(),
    stream: z.string().min(1).optional(),
    once: z.boolean().default(false),
    /** what the line does to its session: "start" (a new connection: the pid's earlier lines are another
        client's) or "end" (the server's last word on the connection: later lines without an address are not its) */
    session: z.enum(["start", "end"], { error: 'expected "start" (the line starts a connection) or "end" (it ends one)' }).optional(),
    /** lines of rules in different files naming the same pair, with the same address within PAIR_SECONDS,
        are one attempt written by two programs (PAM's line and Dovecot's): the second counts nothing */
    pair: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "lower-case letters, digits and dashes").optional(),
    /** what a legitimate user writes on the way to logging in (a key its agent offered, one PAM module's
        failure in a stack): what its lines account for is withdrawn when the connection logs in,
        whatever forgiveOnSuccess says (which governs the other lines) */
    forgiven: z.boolean().default(false),
    /** what a legitimate user also writes on the way to logging in (a key its agent offered that the
        server refused, PAM's failure of one module of a stack): its line waits for its connection's
        verdict and counts only when the connection fails (sessions.ts); a login for the account forgets it */
    held: z.boolean().default(false),
    /** a rate rule: its lines count per address and vhost, and more than `hits` within `seconds` is one affair */
    rate: z.object({ hits: z.number().int().min(1), seconds: z.number().int().min(1) }).strict().optional(),
    description: z.string().optional(),
  })
  .strict();

/** A program name, or a family of them: one `*` stands for a name part (Postfix multi-instance: postfix-NAME/smtpd) */
const ProgramSchema = z
  .string()
  .min(1)
  .refine((p) => !/\*.*\*/.test(p) && p !== "*", 'at most one "*", beside other text: a "*" stands for one part of a name ([A-Za-z0-9_.-]+)');

const RuleFileSchema = z
  .object({
    programs: z.array(ProgramSchema).min(1, "list at least one program"),
    /*
     * Programs of `programs` whose lines a client can write whole: the server writes client text
     * raw, newlines too, so one request makes it write a line like any other, naming any address
     * (nginx's own error log file: a decoded path). This file's rules read their lines in
     * aggressive mode only; in normal mode they take them and count nothing.
     */
    forgeable: z.array(ProgramSchema).default([]),
    rule: z.array(RuleSchema).min(1, "define at least one [[rule]]"),
  })
  .strict()
  .refine((f) => f.forgeable.every((p) => f.programs.includes(p)), { message: "every program in forgeable is one of programs", path: ["forgeable"] });

export type RuleSpec = z.infer<typeof RuleSchema>;

export interface CompiledRule {
  readonly name: string;
  readonly file: string;
  /** position in load order: earlier rules win */
  readonly index: number;
  readonly action: Action;
  readonly mode: Mode;
  /** lines of one session in the same group describe the same attempts (see sessions.ts) */
  readonly group: string | null;
  readonly stream: string;
  /** counts at most one affair per session, however often it repeats */
  readonly once: boolean;
  /** the line starts its session (a new connection) or ends it (the server closed it); null: neither */
  readonly session: "start" | "end" | null;
  /** see RuleSchema.pair; null: the rule's lines pair with none */
  readonly pair: string | null;
  /** see RuleSchema.forgiven */
  readonly forgiven: boolean;
  /** see RuleSchema.held */
  readonly held: boolean;
  /**
   * its file marks where sessions start or end, so its program's pid stands for one connection at
   * a time; without marks (a service whose process serves many clients at once), a line without an
   * address of its own (no host template, or one that reads two ways) is never given one. True
   * also for a sessionOnly rule: a service's session id names one connection.
   */
  readonly connections: boolean;
  /**
   * its templates read the service's session id, not an address (OpenSMTPD writes the client only
   * on a session's `connected` line): a line takes the address the server wrote on its session's
   * other lines, never its pid's (every session of such a process shares it), and a line whose id
   * reads two ways takes none
   */
  readonly sessionOnly: boolean;
  /** the line must contain one of these */
  readonly patterns: readonly string[];
  /** per pattern, whether the message must end with it ("text$"); absent when none must */
  readonly patternEnds?: readonly boolean[];
  /** true when every matching message starts with one of the patterns: a startsWith, not an includes */
  readonly patternIsPrefix: boolean;
  /** its templates read <PATH> or <AGENT>: a pattern counts only where that token read it (the line's other text only prefilters) */
  readonly scoped: boolean;
  /** some template reads <PATH>: a line holding "%" passes the prefilter, as its path may spell a pattern percent-encoded (pathHoldsPattern) */
  readonly pathScoped: boolean;
  /**
   * present (true) when every template's literal head holds one of the patterns (no pattern must
   * end the message): a message that starts with no head is turned away by matchTemplates at no
   * more cost than the patterns' includes, and one that starts with a head holds a pattern, so
   * the includes is not run
   */
  readonly patternInHeads?: true;
  readonly rate: { readonly hits: number; readonly seconds: number } | null;
  /** literal starts of the messages this rule can match, for the prefix index; empty: unindexed */
  readonly heads: readonly string[];
  readonly templates: readonly CompiledTemplate[];
}

/** Tokens whose text a match hands on */
type Captured = "HOST" | "USER" | "COUNT" | "VHOST" | "SESSION" | "SCOPE";

interface CompiledTemplate {
  readonly source: string;
  readonly regex: RegExp;
  /** capture group of each captured token, 0 when the template has none */
  readonly groups: Readonly<Record<Captured, number>>;
  /**
   * Where <HOST> is found by a wildcard's search (it follows <USER> or <ANY>): the same template
   * with that wildcard searching from the other end, so that a match places <HOST> at the last
   * place it fits (regex) and at the first (alt). Two places: the line reads two ways. Both then
   * capture, in group `place`, the message up to the end of <HOST>: its length is the place (the
   * `d` flag would tell it too, at the cost of an array of indices per group and match). null:
   * <HOST> has one place, fixed by ^ or $.
   */
  readonly alt: RegExp | null;
  /** see alt; 0 when alt is null */
  readonly place: number;
  /**
   * The literal text the searched segment (the one holding <HOST>, after the wildcard) starts
   * with, "" when it starts with a token: where the message lacks it, the template cannot fit;
   * where it holds it once, regex and alt find the same match, and only the lazier runs. Why:
   * both regexes are the same but for that wildcard's greed, and what comes before it is read
   * the same way by both (from ^, or a first place found inside a lookahead, which is never
   * retried), so they differ only in where the wildcard stops, p. At each p, what follows is the
   * same regex (its back-references name groups of its own or of the part before the wildcard,
   * never the wildcard's), so it fits, and places <HOST>, the same way in both; regex takes the
   * first p it fits at from one end, alt from the other. Every such p starts with this text: held
   * once, the message has one such p, and both take it.
   */
  readonly lead: string;
  /** of regex and alt, the one whose wildcard searches lazily (reads the least where lead stands once): regex when alt is null */
  readonly lazier: RegExp;
  /** literal text the message must start (head) and end (tail) with for the regex to match: a startsWith and an endsWith turn most lines away before it runs */
  readonly head: string;
  readonly tail: string;
  /** the scope of the rule's patterns: the template reads <PATH> (they are looked for in a request's path) or <AGENT> (in that field); null for neither */
  readonly scope: "path" | "field" | null;
}

export interface RuleMatch {
  readonly rule: CompiledRule;
  /** null when the rule has no host template: the session supplies the address */
  readonly host: Ip | null;
  /** the account the line names (never a password: templates capture only the user field) */
  readonly user: string | null;
  /** the web server instance the line names */
  readonly vhost: string | null;
  /** the service's own session id (Dovecot's session=<...>), to merge its lines by */
  readonly session: string | null;
  /** attempts this line stands for (<COUNT>), 1 otherwise */
  readonly count: number;
  /**
   * the rule's templates read an address at more than one place of the line (or read different
   * addresses): host is then null, and the line's session decides (never text an attacker wrote)
   */
  readonly ambiguous: boolean;
}

/*
 * The address position takes the whole word the server wrote there, up to a delimiter, and
 * parseIp then decides: a host name such as "192.0.2.7.example.net" or a scoped "fe80::1%eth0"
 * is no address, and never yields a prefix of itself, nor sends the match looking for another
 * (attacker-written) position where something address-like stands. "@" ends a word too: no
 * address holds one, and Pure-FTPd writes its client as (account@address).
 */
const HOST_DELIMITER = "[\\s,;()<>\\[\\]\"'=@]";
const HOST_WORD = "[^\\s,;()<>\\[\\]\"'=@]";
/* a word starts after a delimiter, or after the tag of an IPv6 address literal (RFC 5321), which
   only a template that writes it reads: Sendmail's `relay=[IPv6:2001:db8::5]`, `[IPv6:<HOST>]` */
const WORD_START = `(?<=^|${HOST_DELIMITER}|\\[IPv6:)`;

type TokenName = "HOST" | "PORT" | "COUNT" | "WORD" | "FIELD" | "TEXT" | "NOCOLON" | "PATH" | "AGENT" | "VHOST" | "SESSION" | "USER" | "ANY";

interface Token {
  readonly name: TokenName;
  /**
   * bounded: at most `max` characters of `chars`; run: any number of them, read once (see
   * compileTemplate); wildcard: any text, attacker-written (USER, greedy) or server-written (ANY, lazy)
   */
  readonly shape: "bounded" | "run" | "wildcard";
  /** a regex character class */
  readonly chars: string;
  readonly min: number;
  readonly max: number;
  readonly captured?: Captured;
  readonly lazy?: boolean;
  /** the token starts a word: the character before it is a delimiter (or the line starts) */
  readonly wordStart?: boolean;
}

function token(name: TokenName, shape: Token["shape"], chars: string, min: number, max: number, extra: Partial<Token> = {}): Token {
  return { name, shape, chars, min, max, ...extra };
}

const TOKENS: Readonly<Record<TokenName, Token>> = {
  /* an address, never cut in the middle of a word; parseIp decides whether it is one */
  HOST: token("HOST", "bounded", HOST_WORD, 2, 253, { captured: "HOST", wordStart: true }),
  PORT: token("PORT", "bounded", "[0-9]", 1, 5),
  COUNT: token("COUNT", "bounded", "[0-9]", 1, 6, { captured: "COUNT" }),
  /* a run of text without spaces or brackets */
  WORD: token("WORD", "run", "[^ ()<>\\[\\]]", 0, Infinity),
  /* the inside of a quoted field: it cannot cross a double quote */
  FIELD: token("FIELD", "run", '[^"]', 0, Infinity),
  /* server text that cannot cross an angle bracket (Dovecot writes the user as user=<...>) */
  TEXT: token("TEXT", "run", "[^<>]", 0, Infinity),
  /* text without a colon: a basic-auth user name can hold anything but one */
  NOCOLON: token("NOCOLON", "run", "[^:]", 0, Infinity),
  /* where a web log's rule looks for its patterns, and nowhere else in the line (a Referer or a query
     string names what a link's author chose, and every visitor who follows the link sends it): a
     request target as the servers log it (no space, no double quote), read up to its query's `?`;
     the inside of a quoted field (the User-Agent) */
  PATH: token("PATH", "run", '[^ "]', 0, Infinity, { captured: "SCOPE" }),
  AGENT: token("AGENT", "run", '[^"]', 0, Infinity, { captured: "SCOPE" }),
  /* a server name, or an address literal (IPv6 too) where a server has no name */
  VHOST: token("VHOST", "bounded", "[A-Za-z0-9_.:-]", 1, 253, { captured: "VHOST" }),
  SESSION: token("SESSION", "bounded", "[A-Za-z0-9+/=_.-]", 1, 64, { captured: "SESSION" }),
  /* attacker text: greedy, so the server-written delimiters nearest the address win */
  USER: token("USER", "wildcard", "[\\s\\S]", 0, Infinity, { captured: "USER" }),
  ANY: token("ANY", "wildcard", "[\\s\\S]", 0, Infinity, { lazy: true }),
};
const TOKEN_RE = /<(HOST|PORT|COUNT|WORD|FIELD|TEXT|NOCOLON|PATH|AGENT|VHOST|SESSION|USER|ANY)>/g;
/** anything written like a token: a known one, or a typo that would otherwise be literal text */
const TOKEN_LIKE_RE = /<([A-Z][A-Z0-9_]*)>/g;

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

type Item = { readonly text: string; readonly token?: undefined } | { readonly text?: undefined; readonly token: Token };

const classTests = new Map<string, RegExp>();
/** Whether `c` belongs to a token's character class. */
function inClass(t: Token, c: string): boolean {
  let re = classTests.get(t.chars);
  if (!re) classTests.set(t.chars, (re = new RegExp(`^${t.chars}$`, "s")));
  return re.test(c);
}

/**
 * A segment (the items between two wildcards) can be searched for, attempt after attempt at
 * successive positions, in time linear in the line, when no run in it can reach over the
 * segment's own literal text: every run must exclude some character of the literal text that
 * comes before it in the segment (attempts that read it from its start) or after it (attempts
 * that read it from its end). Then an attempt's runs never cross the start (or end) of another
 * attempt, so each character of the line is read by a bounded number of attempts. Returns the
 * first run that breaks the rule, or null.
 */
function unsearchableRun(segment: readonly Item[], direction: "forward" | "backward"): Token | null {
  const items = direction === "forward" ? segment : [...segment].reverse();
  let literal = "";
  for (const item of items) {
    if (item.token === undefined) literal += item.text;
    else if (item.token.shape === "run" && ![...literal].some((c) => !inClass(item.token, c))) return item.token;
  }
  return null;
}

/** Builds the regex source left to right, numbering capture groups as they open. */
class Emitter {
  private count = 0;
  readonly groups: Record<Captured, number> = { HOST: 0, USER: 0, COUNT: 0, VHOST: 0, SESSION: 0, SCOPE: 0 };
  /** the group that holds the message up to the end of the `placed` token (CompiledTemplate.place), 0 for none */
  readonly place: number;
  /** how the regex starts: `^`, and the place group's "(" (closed after the placed token) */
  readonly start: string;

  /**
   * `flip`: wildcards search from the other end (<USER> lazily, <ANY> greedily); `placed`: the token
   * whose place the regex captures (see CompiledTemplate.alt)
   */
  constructor(
    private readonly flip = false,
    private readonly placed: TokenName | null = null,
  ) {
    this.place = placed ? this.open() : 0;
    this.start = placed ? "^(" : "^";
  }

  /** the number of the capture group whose "(" is written next */
  open(captured?: Captured): number {
    this.count++;
    if (captured) this.groups[captured] = this.count;
    return this.count;
  }

  bounded(t: Token): string {
    const body = `${t.chars}{${t.min},${t.max}}`;
    const core = t.captured ? (this.open(t.captured), `(${body})`) : body;
    return (t.wordStart ? WORD_START : "") + core + (t.name === this.placed ? ")" : "");
  }

  /**
   * A segment read forward from a known start. A run takes its whole run of characters and
   * then gives back to the last place where the literal after it fits, once (an atomic group:
   * the lookahead captures it, the back-reference consumes it); nothing ever retries it.
   */
  forward(segment: readonly Item[]): string {
    let out = "";
    segment.forEach((item, i) => {
      if (item.token === undefined) out += escapeRegex(item.text);
      else if (item.token.shape !== "run") out += this.bounded(item.token);
      else {
        const next = segment[i + 1];
        const follow = next && next.token === undefined ? next.text : "";
        /* a run followed by text holding a character the run cannot hold has one end only, just
           before that character: greedy matching finds it, and no atomic group is needed */
        if ([...follow].some((c) => !inClass(item.token, c))) out += this.run(item.token, `${item.token.chars}*`);
        else {
          const n = this.open(item.token.captured);
          out += `(?=(${item.token.chars}*)${escapeRegex(follow)})(?:\\${n})`;
        }
      }
    });
    return out;
  }

  /**
   * A segment read backward from a known end, inside a lookbehind (which JavaScript matches
   * right to left). A run stops, once, at the nearest place where the literal before it fits
   * (`nearest`), or at the farthest one within its run of characters.
   */
  backward(segment: readonly Item[], nearest: boolean): string {
    let out = "";
    segment.forEach((item, i) => {
      if (item.token === undefined) out += escapeRegex(item.text);
      else if (item.token.shape !== "run") out += this.bounded(item.token);
      else {
        const prev = segment[i - 1];
        const before = prev && prev.token === undefined ? prev.text : "";
        if ([...before].some((c) => !inClass(item.token, c))) out += this.run(item.token, `${item.token.chars}*`);
        else {
          const n = this.open(item.token.captured);
          out += `(?:\\${n})(?<=${escapeRegex(before)}(${item.token.chars}*${before && nearest ? "?" : ""}))`;
        }
      }
    });
    return out;
  }

  /** a run's regex, in a group of its own when the run is captured */
  private run(t: Token, body: string): string {
    return t.captured ? (this.open(t.captured), `(${body})`) : body;
  }

  /** a wildcard searching for the segment after it: greedy (USER) or lazy (ANY); the other way round when flipped */
  wildcard(t: Token): string {
    const body = `[\\s\\S]*${(t.lazy ?? false) !== this.flip ? "?" : ""}`;
    return t.captured ? (this.open(t.captured), `(${body})`) : body;
  }

  /** a wildcard filling the gap up to a tail already placed: its extent is known, greedy is cheapest */
  gap(t: Token): string {
    return t.captured ? (this.open(t.captured), "([\\s\\S]*)") : "[\\s\\S]*";
  }
}

function describeToken(t: Token): string {
  return `<${t.name}>`;
}

/**
 * Compile and lint one template; returns an error text for the operator instead of throwing.
 *
 * The regex costs time linear in the line, whatever the line. (A plain backtracking regex does
 * not: a long line of repeated template text makes it try a wildcard's every place and read a
 * long run again from each, quadratic time or worse.) How:
 *  - A run (<WORD>, <TEXT>, <FIELD>, <NOCOLON>) is read once and never retried. Where the text
 *    after it holds a character the run cannot hold, the run has one possible end anyway; else an
 *    atomic group takes the last place where that text fits (read forward), or the nearest one
 *    (read backward from the tail a <USER> precedes). Bounded tokens (<HOST>, <PORT>, <COUNT>,
 *    <VHOST>, <SESSION>) may be retried, at most their length times.
 *  - The text before the first wildcard is read once, forward from ^. Without ^, it is found at
 *    its first place in the line, by a search whose attempts cannot overlap (unsearchableRun):
 *    forward, or backward from each place where its last literal text ends.
 *  - The text after a wildcard is found by the wildcard's own search (the last place for <USER>,
 *    the first for <ANY>) when those attempts cannot overlap; otherwise it is read once, backward
 *    from $, and the wildcard takes what lies between.
 *  - Between two wildcards and after the second, bounded tokens only.
 * A template none of this reads in linear time is refused, naming the token to change. Where a
 * run ends at a delimiter it cannot hold, the match is the one a backtracking regex finds; where
 * it does not, the server's own text nearest the address wins, which is the lint's rule too.
 *
 * Where <HOST> follows a wildcard and that wildcard's search finds it, the template may fit the
 * line with <HOST> at several places (a user name holding the template's own text). A second
 * regex, the same with the search from the other end (`alt`, as linear as the first), finds the
 * other extreme: the same place, one reading; two places, the line reads two ways (matchTemplates).
 */
export function compileTemplate(source: string): CompiledTemplate | string {
  let body = source;
  const anchoredStart = body.startsWith("^");
  const anchoredEnd = body.endsWith("$") && !body.endsWith("\\$");
  if (anchoredStart) body = body.slice(1);
  if (anchoredEnd) body = body.slice(0, -1);
  if (!anchoredStart && !anchoredEnd) return "must be anchored with ^ at the start or $ at the end, so the address comes from where the service writes it";
  for (const m of body.matchAll(TOKEN_LIKE_RE)) {
    if (!(m[1]! in TOKENS)) {
      return `has an unknown token <${m[1]}> (known: ${Object.keys(TOKENS)
        .map((n) => `<${n}>`)
        .join(", ")})`;
    }
  }
  /* the token whose place the lint guards: the address, or in a template without one the service's
     session id (the line's address is then the one the server wrote on that session's other lines) */
  const key: "HOST" | "SESSION" = body.includes("<HOST>") || !body.includes("<SESSION>") ? "HOST" : "SESSION";
  const items: Item[] = [];
  const counts: Partial<Record<TokenName, number>> = {};
  let keySeen = false;
  let unboundedBeforeKey = 0;
  let unboundedAfterKey = 0;
  let last = 0;
  for (const m of body.matchAll(TOKEN_RE)) {
    const t = TOKENS[m[1] as TokenName];
    if (m.index > last) items.push({ text: body.slice(last, m.index) });
    items.push({ token: t });
    last = m.index + m[0].length;
    counts[t.name] = (counts[t.name] ?? 0) + 1;
    if (t.captured && counts[t.name]! > 1) return `has <${t.name}> more than once`;
    if (counts.PATH && counts.AGENT) return "may hold <PATH> or <AGENT>, not both: the rule's patterns are looked for in one place";
    if (t.name === "ANY" && counts.ANY! > 1) return "has <ANY> more than once";
    if (t.name === key) keySeen = true;
    if (t.shape === "wildcard") {
      if (keySeen) unboundedAfterKey++;
      else unboundedBeforeKey++;
    }
  }
  if (last < body.length) items.push({ text: body.slice(last) });
  if (!keySeen) return "must contain <HOST> exactly once (or, to take the address of the service's session, <SESSION>)";
  const what = key === "HOST" ? "the address" : "the session id";
  if (unboundedBeforeKey > 1 || unboundedAfterKey > 1) return `may hold at most one <ANY> or <USER> on each side of <${key}>`;
  if (unboundedBeforeKey && !anchoredEnd) return `has <ANY>/<USER> before <${key}>, so it must end with $ (otherwise a user name could supply ${what})`;
  if (unboundedAfterKey && !anchoredStart) return `has <ANY>/<USER> after <${key}>, so it must start with ^ (otherwise a user name could supply ${what})`;

  /* a run needs literal text on each side (or the start or end of the template): that text is what ends it */
  for (let i = 0; i < items.length; i++) {
    const t = items[i]!.token;
    if (t?.shape !== "run") continue;
    const neighbour = items[i + 1]?.token ?? items[i - 1]?.token;
    if (neighbour) return `has ${describeToken(t)} right next to ${describeToken(neighbour)}: write the text that separates them between the two`;
  }

  const segments: Item[][] = [[]];
  const wildcards: Token[] = [];
  for (const item of items) {
    if (item.token?.shape === "wildcard") {
      wildcards.push(item.token);
      segments.push([]);
    } else segments[segments.length - 1]!.push(item);
  }
  const slow = (t: Token, where: string) =>
    `cannot be read in time linear in the line: ${describeToken(t)} ${where} can hold every character of the text around it, so a long line could make it be read once per place of that text; use a narrower token, or put next to it a delimiter it cannot hold`;

  /* the regex, with the wildcards searching from their own end, or (flip) from the other */
  const emit = (flip: boolean, placed: boolean): { regex: string; groups: Record<Captured, number>; place: number } | string => {
    const e = new Emitter(flip, placed ? key : null);
    let regex = e.start;
    if (wildcards.length === 0) {
      const [segment] = segments as [Item[]];
      /* read from the anchored side: forward from ^, or backward from $ (the first place it fits there) */
      regex = anchoredStart ? `^${e.forward(segment)}${anchoredEnd ? "$" : ""}` : `^(?=[\\s\\S]*$(?<=${e.backward(segment, false)}))`;
    } else {
      const head = segments[0]!;
      if (head.length > 0) {
        if (anchoredStart) {
          /* read once: its bounded tokens (the only places it could be read another way) are not
             retried for each place of a tail that can fail (an empty tail after <ANY>/<USER> cannot) */
          const tailCanFail = segments.slice(1).some((segment) => segment.length > 0);
          if (tailCanFail && head.some((item) => item.token?.shape === "bounded")) {
            const n = e.open();
            regex += `(?=(${e.forward(head)}))(?:\\${n})`;
          } else regex += e.forward(head);
        } else if (!unsearchableRun(head, "forward")) {
          const n = e.open();
          regex += `(?=([\\s\\S]*?${e.forward(head)}))(?:\\${n})`;
        } else if (!unsearchableRun(head, "backward")) {
          /* only where its last text ends is the head read backward from */
          const end = head[head.length - 1]!;
          const n = e.open();
          regex += `(?=([\\s\\S]*?${end.token === undefined ? escapeRegex(end.text) : ""})(?<=${e.backward(head, false)}))(?:\\${n})`;
        } else return slow(unsearchableRun(head, "forward")!, `before ${describeToken(wildcards[0]!)}, in a template without ^,`);
      }
      if (wildcards.length === 1) {
        const [w] = wildcards as [Token];
        const tail = segments[1]!;
        /* a wildcard that ends the template takes the rest of the line, greedy or lazy: greedy gets there at once */
        if (tail.length === 0 && anchoredEnd) regex += `${e.gap(w)}$`;
        else if (tail.length === 0 || !unsearchableRun(tail, "forward")) regex += `${e.wildcard(w)}${e.forward(tail)}${anchoredEnd ? "$" : ""}`;
        else if (anchoredEnd) {
          const n = e.open();
          regex += `(?=[\\s\\S]*$(?<=(${e.backward(tail, !w.lazy)})))${e.gap(w)}(?:\\${n})$`;
        } else return slow(unsearchableRun(tail, "forward")!, `after ${describeToken(w)}, in a template without $,`);
      } else {
        /* <USER> and <ANY> on either side of <HOST> (both anchors, by the lint above): the address's
           segment is searched for between them, so it and the tail hold bounded tokens only */
        const [w1, w2] = wildcards as [Token, Token];
        const [, middle, tail] = segments as [Item[], Item[], Item[]];
        const run = [...middle, ...tail].find((item) => item.token?.shape === "run")?.token;
        if (run) return slow(run, `after ${describeToken(w1)}, in a template with two wildcards,`);
        let tailGroup = 0;
        if (tail.length > 0) {
          tailGroup = e.open();
          regex += `(?=[\\s\\S]*$(?<=(${e.backward(tail, !w2.lazy)})))`;
        }
        regex += `${e.wildcard(w1)}${e.forward(middle)}${e.gap(w2)}${tailGroup ? `(?:\\${tailGroup})` : ""}$`;
      }
    }
    return { regex, groups: e.groups, place: e.place };
  };
  /* <HOST> (or <SESSION>, see key) after a wildcard whose search finds it (the last place for
     <USER>, the first for <ANY>) may fit at other places too: the flipped search finds the other
     extreme (see CompiledTemplate.alt) */
  const keySegment = segments.findIndex((segment) => segment.some((item) => item.token?.name === key));
  const searched = keySegment === 1 && (wildcards.length === 2 || !unsearchableRun(segments[1]!, "forward"));
  const main = emit(false, searched);
  if (typeof main === "string") return main;
  const alt = searched ? emit(true, true) : null;
  if (typeof alt === "string") return alt;
  const lead = searched ? segments[keySegment]![0]!.text ?? "" : "";
  /* the wildcard that searches for <HOST>: lazy, its regex finds the first place; greedy (<USER>), alt does */
  const searchesLazily = searched && (wildcards[0]!.lazy ?? false);
  /* dotAll: a user name holding U+2028 or U+2029 (line separators to a regex) must not hide its line */
  const regex = new RegExp(main.regex, "s");
  const altRegex = alt ? new RegExp(alt.regex, "s") : null;
  return {
    source,
    regex,
    groups: main.groups,
    alt: altRegex,
    lazier: altRegex && !searchesLazily ? altRegex : regex,
    place: main.place,
    lead,
    head: literalHead(source),
    tail: anchoredEnd ? items.at(-1)!.text ?? "" : "",
    scope: counts.PATH ? "path" : counts.AGENT ? "field" : null,
  };
}

/** The literal text a template's message must start with, or "" when it has none. */
function literalHead(template: string): string {
  if (!template.startsWith("^")) return "";
  const body = template.slice(1);
  const token = body.search(TOKEN_RE);
  return token < 0 ? body.replace(/\$$/, "") : body.slice(0, token);
}

function describeZodIssue(file: string, data: unknown, issue: z.core.$ZodIssue): string {
  const path = issue.path;
  let where = path.length ? `field ${path.join(".")}` : "file";
  if (path[0] === "rule" && typeof path[1] === "number") {
    const rules = (data as { rule?: unknown[] }).rule;
    const name = (rules?.[path[1]] as { name?: unknown } | undefined)?.name;
    const label = typeof name === "string" ? `rule "${name}"` : `rule #${path[1] + 1}`;
    where = path.length > 2 ? `${label}, field ${path.slice(2).join(".")}` : label;
  }
  return `${file}: ${where}: ${issue.message}`;
}

/** Parse one rule file's text; `file` names it in every error. */
export function parseRuleFile(file: string, text: string): { programs: string[]; forgeable: string[]; rules: RuleSpec[] } {
  const data = parseToml(file, text);
  const parsed = RuleFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => describeZodIssue(file, data, i)).join("\n"));
  }
  return { programs: parsed.data.programs, forgeable: parsed.data.forgeable, rules: parsed.data.rule };
}

export interface RuleSource {
  readonly file: string;
  readonly text: string;
}

interface ProgramRules {
  readonly program: string;
  /** a program family (postfix-NAME/smtpd): the text before and after its `*`; null for one program */
  readonly glob: { readonly head: string; readonly tail: string } | null;
  /** message prefix length (≤ 4 chars) used as the index key */
  readonly keyLength: number;
  readonly byKey: Map<number, readonly CompiledRule[]>;
  /** rules that can match whatever the message starts with */
  readonly unindexed: readonly CompiledRule[];
}

/** The first `length` chars at `at`, packed into a number (collisions only add candidates). */
function prefixKey(text: string, at: number, length: number): number {
  let key = 0;
  for (let i = 0; i < length; i++) key = (key << 8) | (text.charCodeAt(at + i) & 0xff);
  return key >>> 0;
}

/** All rules of one module, compiled and indexed by program and message prefix. */
export class RuleSet {
  readonly rules: readonly CompiledRule[];
  /** a short list: a linear scan with length check beats slicing the program name */
  private readonly byProgram: ProgramRules[] = [];
  /** program families, tried when no program of byProgram is the line's */
  private readonly byGlob: ProgramRules[] = [];

  constructor(sources: readonly RuleSource[], mode: Mode) {
    const all: CompiledRule[] = [];
    const programRules = new Map<string, CompiledRule[]>();
    const seen = new Map<string, string>();
    for (const { file, text } of sources) {
      const spec = parseRuleFile(file, text);
      const connections = spec.rules.some((r) => r.session !== undefined);
      for (const r of spec.rules) {
        const other = seen.get(r.name);
        if (other) throw new ConfigError(`${file}: rule "${r.name}": name already used in ${other}`);
        seen.set(r.name, file);
        const templates: CompiledTemplate[] = [];
        for (const [i, t] of (r.host === undefined ? [] : typeof r.host === "string" ? [r.host] : r.host).entries()) {
          const compiled = compileTemplate(t);
          const field = typeof r.host === "string" ? "host" : `host[${i}]`;
          if (typeof compiled === "string") throw new ConfigError(`${file}: rule "${r.name}", field ${field}: template ${JSON.stringify(t)} ${compiled}`);
          templates.push(compiled);
        }
        const sessionOnly = templates.length > 0 && templates.every((t) => t.groups.HOST === 0);
        if (!sessionOnly && templates.some((t) => t.groups.HOST === 0)) {
          throw new ConfigError(`${file}: rule "${r.name}", field host: either every template holds <HOST> or none does (then each reads the line's <SESSION>)`);
        }
        if (!r.group && (r.stream !== undefined || r.once)) {
          throw new ConfigError(`${file}: rule "${r.name}", field ${r.once ? "once" : "stream"}: needs a group to merge in`);
        }
        if (r.action === "ban" && templates.length === 0) {
          throw new ConfigError(`${file}: rule "${r.name}", field host: a rule with action "ban" needs a host template`);
        }
        /* patterns written "^text" must start the message (and index the rule); plain ones may stand anywhere */
        const listed = typeof r.pattern === "string" ? [r.pattern] : r.pattern;
        const anchored = listed.some((p) => p.startsWith("^"));
        if (anchored && !listed.every((p) => p.startsWith("^"))) {
          throw new ConfigError(`${file}: rule "${r.name}", field pattern: either every pattern starts with ^ or none does`);
        }
        /* "text$": the message ends with it (a file name that must be the last thing a server wrote) */
        const ends = listed.map((p) => !anchored && p.length > 1 && p.endsWith("$"));
        const patterns = anchored ? listed.map((p) => p.slice(1)) : listed.map((p, i) => (ends[i] ? p.slice(0, -1) : p));
        if (patterns.some((p) => p === "")) throw new ConfigError(`${file}: rule "${r.name}", field pattern: must not be empty`);
        if (r.held && (r.action !== "count" || !connections)) {
          throw new ConfigError(`${file}: rule "${r.name}", field held: only a counting rule (action = "count") in a file that marks where connections start or end (session = "start" / "end") can wait for its connection's verdict`);
        }
        const scoped = templates.some((t) => t.scope !== null);
        if (scoped && !templates.every((t) => t.scope !== null)) {
          throw new ConfigError(`${file}: rule "${r.name}", field host: either every template holds <PATH> or <AGENT> or none does (the rule's patterns are looked for there)`);
        }
        if (scoped && anchored) throw new ConfigError(`${file}: rule "${r.name}", field pattern: a rule whose templates read <PATH> or <AGENT> looks for its patterns there, so none may start with ^`);
        const templateHeads = templates.map((t) => literalHead(t.source));
        /* the prefilter may act as a startsWith if every template's message starts with it */
        const patternIsPrefix = anchored || (!scoped && patterns.length === 1 && !ends[0] && templates.length > 0 && templateHeads.every((h) => h.startsWith(patterns[0]!)));
        const patternInHeads = !patternIsPrefix && !scoped && templates.length > 0 && !ends.includes(true) && templateHeads.every((h) => patterns.some((p) => h.includes(p)));
        const heads = anchored ? patterns : templates.length > 0 && templateHeads.every((h) => h !== "") ? [...new Set(templateHeads)] : [];
        /* an aggressive rule that marks its session's start or end keeps doing so in normal mode,
           counting nothing: a probe's "Connection closed by A port N [preauth]" still ends the pid's session */
        const inactive = r.mode === "aggressive" && mode !== "aggressive";
        const rule: CompiledRule = {
          name: r.name,
          file,
          index: all.length,
          action: inactive && r.session ? "ignore" : r.action,
          mode: r.mode,
          group: r.group ?? null,
          stream: r.stream ?? r.name,
          once: r.once,
          session: r.session ?? null,
          pair: r.pair ?? null,
          forgiven: r.forgiven,
          held: r.held,
          connections: connections || sessionOnly,
          sessionOnly,
          patterns,
          ...(ends.includes(true) ? { patternEnds: ends } : {}),
          patternIsPrefix,
          scoped,
          pathScoped: templates.some((t) => t.scope === "path"),
          ...(patternInHeads ? { patternInHeads: true as const } : {}),
          rate: r.rate ?? null,
          heads,
          templates,
        };
        all.push(rule);
        if (inactive && !r.session) continue;
        /* a forgeable program's lines are taken and count nothing in normal mode (RuleFileSchema.forgeable) */
        const untrusted = mode !== "aggressive" && rule.action !== "ignore" ? { ...rule, action: "ignore" as const } : rule;
        for (const p of spec.programs) {
          const list = programRules.get(p) ?? [];
          list.push(spec.forgeable.includes(p) ? untrusted : rule);
          programRules.set(p, list);
        }
      }
    }
    this.rules = all;
    for (const [program, rules] of programRules) {
      const index = indexRules(program, rules);
      (index.glob ? this.byGlob : this.byProgram).push(index);
    }
  }

  /** the programs listened to; a family as written (postfix-NAME/smtpd) */
  get programs(): string[] {
    return [...this.byProgram, ...this.byGlob].map((p) => p.program);
  }

  /**
   * The first rule that matches the line text[start, end) whose header is `h`, with what it
   * extracted; null for no match. Lines of other programs cost a few char compares.
   */
  match(text: string, h: HeaderScan, end: number): RuleMatch | null {
    const programLength = h.programEnd - h.programStart;
    for (const p of this.byProgram) {
      if (p.program.length === programLength && text.startsWith(p.program, h.programStart)) return matchIn(p, text, h.messageStart, end);
    }
    for (const p of this.byGlob) if (inFamily(p.glob!, text, h.programStart, h.programEnd)) return matchIn(p, text, h.messageStart, end);
    return null;
  }

  /** The same for a line without a syslog header (a web server's own log file), of `program`. */
  matchRaw(program: string, text: string, start: number, end: number): RuleMatch | null {
    const index = this.byProgram.find((p) => p.program === program);
    return index ? matchIn(index, text, start, end) : null;
  }
}

/** Whether text[start, end) is a name of the family: its head, one or more name characters, its tail. */
function inFamily(glob: { readonly head: string; readonly tail: string }, text: string, start: number, end: number): boolean {
  const middleEnd = end - glob.tail.length;
  if (middleEnd - start - glob.head.length < 1 || !text.startsWith(glob.head, start) || !text.startsWith(glob.tail, middleEnd)) return false;
  for (let i = start + glob.head.length; i < middleEnd; i++) {
    const c = text.charCodeAt(i);
    /* A-Z a-z 0-9 _ . - */
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 46 || c === 45)) return false;
  }
  return true;
}

/* a plain loop: this runs for every candidate rule of every line of a listened-to program */
function containsAny(message: string, patterns: readonly string[]): boolean {
  for (let i = 0; i < patterns.length; i++) if (message.includes(patterns[i]!)) return true;
  return false;
}

function containsOrEndsWithAny(message: string, patterns: readonly string[], ends: readonly boolean[]): boolean {
  for (let i = 0; i < patterns.length; i++) if (ends[i] ? message.endsWith(patterns[i]!) : message.includes(patterns[i]!)) return true;
  return false;
}

function startsWithAny(text: string, at: number, patterns: readonly string[]): boolean {
  for (let i = 0; i < patterns.length; i++) if (text.startsWith(patterns[i]!, at)) return true;
  return false;
}

function matchIn(index: ProgramRules, text: string, at: number, end: number): RuleMatch | null {
  const candidates = (end - at >= index.keyLength && index.byKey.get(prefixKey(text, at, index.keyLength))) || index.unindexed;
  let message: string | null = null;
  for (const rule of candidates) {
    if (rule.patternIsPrefix) {
      if (!startsWithAny(text, at, rule.patterns)) continue;
      message ??= text.slice(at, end);
    } else {
      message ??= text.slice(at, end);
      if (!rule.patternInHeads && (rule.patternEnds && !rule.scoped ? !containsOrEndsWithAny(message, rule.patterns, rule.patternEnds) : !containsAny(message, rule.patterns) && !(rule.pathScoped && message.includes("%")))) continue;
    }
    const m = matchTemplates(rule, message);
    if (m) return m;
  }
  return null;
}

/** A request target's path: the text before its query. */
function pathOf(target: string): string {
  const query = target.indexOf("?");
  return query < 0 ? target : target.slice(0, query);
}

/**
 * Whether the path of a request target holds one of the rule's patterns, as logged or as the
 * server reads it: servers log the request line raw and decode %XX once before they look for the
 * file, so `GET /%2eenv` fetches /.env (the query, split off first, is never decoded into the path).
 */
function pathHoldsPattern(rule: CompiledRule, target: string): boolean {
  const path = pathOf(target);
  if (holdsPattern(rule, path)) return true;
  return path.includes("%") && holdsPattern(rule, path.replace(PERCENT_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))));
}

const PERCENT_ESCAPE = /%([0-9A-Fa-f]{2})/g;

/** Whether `text` holds one of the rule's patterns (ends with it, for a pattern written "text$"). */
function holdsPattern(rule: CompiledRule, text: string): boolean {
  return rule.patternEnds ? containsOrEndsWithAny(text, rule.patterns, rule.patternEnds) : containsAny(text, rule.patterns);
}

/**
 * Where the template's <HOST> (or <SESSION>) word ends in a match of one of its searched regexes
 * (CompiledTemplate.place): the place of that word in the line (words end at delimiters), whether
 * or not it was read after an address literal's tag (`IPv6:A` and `A` are one word).
 */
function placeOf(m: RegExpExecArray, t: CompiledTemplate): number {
  return m[t.place]!.length;
}

/** How often `text` (not "") stands in `message`: 0, 1, or 2 for more (CompiledTemplate.lead). */
function occurrences(message: string, text: string): 0 | 1 | 2 {
  const first = message.indexOf(text);
  if (first < 0) return 0;
  return message.indexOf(text, first + 1) < 0 ? 1 : 2;
}

/**
 * What one rule reads in a message that passed its prefilter: null when no template yields an
 * address. The first template that does gives the match; every other template that fits is read
 * too, and so is each template's other extreme (CompiledTemplate.alt, unless the text before the
 * place it searched for stands once in the message: CompiledTemplate.lead). If they place <HOST> at two
 * places, or read two different addresses, the line reads two ways: it is still this rule's line,
 * but its address (and service session id) are left to its session, `ambiguous` set. So it is when
 * a template finds, after a wildcard, a word that is no address (sshd with UseDNS writes the
 * client's name) at another place than the address read: that address could be the client's text.
 * Cost: a few linear regexes, for the lines a rule matches only.
 */
export function matchTemplates(rule: CompiledRule, message: string): RuleMatch | null {
  if (rule.templates.length === 0) return { rule, host: null, user: null, vhost: null, session: null, count: 1, ambiguous: false };
  let first: RuleMatch | null = null;
  let ambiguous = false;
  /* where templates that search for <HOST> found a word that is no address, and an address */
  let unreadableAt = -1;
  let readAt = -1;
  for (const t of rule.templates) {
    if (!message.startsWith(t.head) || !message.endsWith(t.tail)) continue;
    /* <HOST> searched for after a wildcard: its lead absent, the template cannot fit; held once, it has one place, and the lazier regex alone finds it */
    const leads = t.alt && t.lead !== "" ? occurrences(message, t.lead) : 2;
    if (leads === 0) continue;
    const m = (leads === 1 ? t.lazier : t.regex).exec(message);
    if (!m) continue;
    const g = t.groups;
    if (t.scope !== null && !(t.scope === "path" ? pathHoldsPattern(rule, m[g.SCOPE]!) : holdsPattern(rule, m[g.SCOPE]!))) continue;
    const host = rule.sessionOnly ? null : parseLoggedIp(m[g.HOST]!);
    if (!host && !rule.sessionOnly) {
      if (t.alt) unreadableAt = placeOf(m, t);
      continue;
    }
    if (t.alt) {
      readAt = placeOf(m, t);
      if (leads === 2) {
        const other = t.alt.exec(message);
        /* the flipped search fits wherever the first did; if it does not, the reading is not certain */
        if (!other || placeOf(other, t) !== readAt) ambiguous = true;
      }
    }
    if (first === null) {
      first = {
        rule,
        host,
        user: (g.USER && m[g.USER]) || null,
        vhost: g.VHOST ? m[g.VHOST]!.toLowerCase() : null,
        session: g.SESSION ? m[g.SESSION]! : null,
        count: g.COUNT ? Math.max(1, Number(m[g.COUNT])) : 1,
        ambiguous: false,
      };
    } else if (host ? host.text !== first.host!.text : m[g.SESSION] !== first.session) ambiguous = true;
    if (ambiguous) break;
  }
  if (first === null) return null;
  if (unreadableAt >= 0 && readAt >= 0 && unreadableAt !== readAt) ambiguous = true;
  return ambiguous ? { ...first, host: null, session: null, ambiguous: true } : first;
}

function indexRules(program: string, rules: CompiledRule[]): ProgramRules {
  const keyLength = Math.min(4, ...rules.flatMap((r) => r.heads.map((h) => h.length)));
  /* a rule is indexed under each of its heads, if every head is long enough to give a key */
  const indexed = (r: CompiledRule) => r.heads.length > 0 && r.heads.every((h) => h.length >= keyLength);
  const unindexed = rules.filter((r) => !indexed(r));
  const byKey = new Map<number, CompiledRule[]>();
  for (const r of rules.filter(indexed)) {
    for (const head of r.heads) {
      const key = prefixKey(head, 0, keyLength);
      if (!byKey.has(key)) byKey.set(key, [...unindexed]);
      const list = byKey.get(key)!;
      if (!list.includes(r)) list.push(r);
    }
  }
  for (const list of byKey.values()) list.sort((a, b) => a.index - b.index);
  const star = program.indexOf("*");
  const glob = star < 0 ? null : { head: program.slice(0, star), tail: program.slice(star + 1) };
  return { program, glob, keyLength, byKey, unindexed };
}
