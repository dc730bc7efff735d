/**
 * Session attribution and merging. A session is one connection as the log shows it: the lines of
 * one `program[pid]` (or of one service session id: Dovecot's `session=<...>`, OpenSMTPD's
 * leading id, whose lines but the first name no client) from the line that starts the connection to
 * the one that ends it. sshd writes several lines per connection, some without the address, some
 * describing the same failed attempt twice (PAM's `authentication failure` and sshd's `Failed
 * password`).
 *  - Address: only an address the server itself wrote (a line's own, unambiguous, see rules.ts)
 *    becomes the session's. A line without one, or one that reads two ways, belongs to the open
 *    session that has an address; lines that come before the address wait for it. Only in rule
 *    files that mark where sessions start or end (CompiledRule.connections): elsewhere a pid may
 *    serve many clients at once (Dovecot's auth process), and such a line is unattributed. A pid is reused
 *    by later connections, so a session ends where the server ends it: a rule's `session = "end"`
 *    line (sshd's `Connection closed by`, `Disconnected from`, `session closed`), or a `session =
 *    "start"` line (`Connection from`), or a line of the pid with another address, or ttl seconds
 *    without a line. After its end, a session keeps only the lines that carry its own address (the
 *    connection's last words); a line without one starts the next session. Waiting lines whose
 *    session ends without an address, and address-less lines of no session, are counted as
 *    unattributed: never against an address the server did not write for their connection.
 *  - Merging: within one rule group, each stream (a rule, or rules sharing `stream`) adds up the
 *    attempts it has seen; the session's attempts are the largest of those totals, and only
 *    an increase counts. So `pam`+`Failed password`+`PAM 2 more` over three tries is 3, not 6.
 *  - Held lines: a `held` rule's line (a key the agent offered that the server refused, PAM's
 *    failure of one module of a stack) is what a legitimate user writes on the way to logging in,
 *    so it waits for its connection's verdict and is counted on the line that gives it: a further
 *    failure (another rule's, or a held line for another user), a login for another user (a
 *    login cannot wash away failures for other accounts), or the connection's end; a login for
 *    the same user forgets it. A session that ends otherwise (ttl, a new connection under its pid,
 *    the table's bound) counts what it held, on the held lines themselves: a flood of connections
 *    must not wash an attacker's failures away.
 *  - Withdrawal: a good login (a `success` line) withdraws what its session counted: all of it with
 *    forgiveOnSuccess, else what only its `forgiven` rules' streams account for (PAM's failure of
 *    one module, counted at once): a group's attempts fall to the largest total of its other
 *    streams. A mistyped password (PAM's line and sshd's `Failed password`) stays counted unless
 *    forgiveOnSuccess.
 *  - Pairs: one attempt may be written by two programs with no session in common (Dovecot through
 *    PAM: pam_unix's `authentication failure; ... rhost=A` from the auth process, Dovecot's own
 *    `pam(user,A): pam_authenticate() failed`). Rules of different files that name the same `pair`
 *    match their lines one to one: a line that finds an unpaired line of the other file with the
 *    same address within PAIR_SECONDS is that line's attempt and counts nothing; otherwise it
 *    counts, and waits for its partner. So one attempt stays one affair whether one or both logs
 *    are read, and n attempts from one address stay n.
 * The map is bounded (oldest sessions go first) and sessions expire, so a flood of new pids
 * cannot grow memory.
 */
import { BoundedMap } from "../core/bounded-map";
import type { Ip } from "../core/ip";
import type { CompiledRule } from "../core/rules";
import { type HeaderScan, sessionKey } from "../core/syslog";
import { detached } from "./split";

interface Tally {
  readonly group: string;
  readonly stream: string;
  /** the stream's rules are `forgiven`: a good login withdraws what only it accounts for */
  readonly forgiven: boolean;
  total: number;
}

interface Waiting {
  readonly rule: CompiledRule;
  readonly weight: number;
  readonly tag: number;
}

/** A held line: waiting for its connection's verdict, with the account it tried (null: unknown) */
interface Held extends Waiting {
  readonly user: string | null;
}

interface Session {
  /** the address the server wrote for this connection; null until a line brings it */
  host: Ip | null;
  lastSeen: number;
  /** the server ended the connection: only lines carrying `host` still belong to it */
  ended: boolean;
  /** attempts per group and stream: a few entries, so a list (Maps churn memory) */
  tallies: Tally[] | null;
  /** affairs counted against the host for this session (what a success may forgive) */
  counted: number;
  /** of those, counted by forgiven rules outside any group */
  forgivenLoose: number;
  /** the lines that counted (their tags, for `rules test`), latest MAX_COUNTED_TAGS */
  countedTags: { readonly tag: number; readonly forgiven: boolean }[] | null;
  /** weight seen before the address was known, by rule */
  waiting: Waiting[] | null;
  /** lines of held rules waiting for the connection's verdict (the address is known) */
  held: Held[] | null;
  /** held lines a login for their account forgot since the last forgive(): `rules test` marks them */
  forgotten: number[] | null;
}

export interface Attributed {
  readonly host: Ip;
  readonly rule: CompiledRule;
  /** the line being attributed (true) or an earlier one that waited for the address or a verdict */
  readonly current: boolean;
  /** affairs to count: 0 when merged into attempts already counted */
  readonly weight: number;
  /** the tag the line was attributed with (`rules test` passes its line number) */
  readonly tag: number;
  /**
   * the tag of the line it is counted on: the line being attributed, which brought the address or
   * the verdict; an earlier line's own tag when its session ended without either (held lines)
   */
  readonly at: number;
}

export interface SessionStats {
  /** lines of counting rules that no session could give an address the server wrote: never counted
      (lines still waiting when the table, full, forgets their session are not in it) */
  unattributed: number;
}

const MAX_WAITING = 16;
/** held lines per session: sshd's MaxAuthTries is 6 by default; beyond the bound they count */
const MAX_HELD = 16;
const MAX_COUNTED_TAGS = 64;

/** What a good login withdrew from its session: affairs, and the lines (tags) they were counted by */
export interface Withdrawn {
  readonly affairs: number;
  readonly tags: readonly number[];
}

const NOTHING_WITHDRAWN: Withdrawn = { affairs: 0, tags: [] };

/** Seconds between the two lines of one attempt in a pair: PAM's line and Dovecot's come within a second or two (its failure delay) */
export const PAIR_SECONDS = 10;
/** unpaired lines kept per pair and address, the latest: a flood from one address cannot grow memory */
const MAX_UNPAIRED = 16;

interface Unpaired {
  /** the rule file of the line: its partner comes from another */
  readonly file: string;
  readonly time: number;
}

/** Sessions by key, bounded (see BoundedMap): a flood of new pids cannot grow memory. */
export class SessionTable {
  private readonly sessions: BoundedMap<SessionKey, Session>;
  /**
   * Sessions whose lines still wait for their address, when a flood of other sessions pushes them
   * out of `sessions`: a flood of new connections must not wash an attacker's waiting affairs away.
   */
  private readonly waitingRefuge: BoundedMap<SessionKey, Session>;
  /** lines of a pair still without their partner, by pair and address */
  private readonly unpaired: BoundedMap<string, Unpaired[]>;
  readonly stats: SessionStats = { unattributed: 0 };
  /** held lines of sessions that ended without a verdict, handed out with the next attribution */
  private released: Attributed[] = [];
  /** sessions holding lines, oldest first (expireHeld) */
  private readonly holding = new Map<SessionKey, Session>();
  private nextHeldCheck = 0;

  constructor(
    maxSessions = 8192,
    private readonly ttlSeconds = 600,
  ) {
    this.waitingRefuge = new BoundedMap(Math.max(2, maxSessions / 4), (_key, s) => this.lost(s));
    this.sessions = new BoundedMap(maxSessions, (key, s) => (s.waiting?.length || s.held?.length ? this.waitingRefuge.set(key, s) : undefined));
    this.unpaired = new BoundedMap(maxSessions);
  }

  get size(): number {
    return this.sessions.size + this.waitingRefuge.size;
  }

  /**
   * A session the tables could not keep, or that ended without a verdict: its waiting lines never
   * learn their address, and its held lines count, each on itself.
   */
  private lost(s: Session): void {
    this.stats.unattributed += s.waiting?.length ?? 0;
    s.waiting = null;
    if (s.held && s.host) for (const h of s.held) this.released.push(this.release(s, s.host, h, h.tag));
    s.held = null;
  }

  private lookup(key: SessionKey): Session | undefined {
    const s = this.sessions.get(key);
    if (s || this.waitingRefuge.size === 0) return s;
    const refugee = this.waitingRefuge.get(key);
    if (!refugee) return undefined;
    this.waitingRefuge.delete(key);
    this.sessions.set(key, refugee);
    return refugee;
  }

  /** A session is over: its waiting lines never learn their address. */
  private drop(key: SessionKey, s: Session): void {
    this.lost(s);
    this.sessions.delete(key);
  }

  /**
   * The session a line of `key` belongs to: the open one, unless this line starts a connection,
   * carries another address than the session's, or follows the session's end without carrying its
   * address; then a new one.
   */
  private sessionFor(key: SessionKey, host: Ip | null, rule: CompiledRule, now: number): Session {
    let s = this.lookup(key);
    if (s) {
      const sameHost = host !== null && s.host !== null && s.host.text === host.text;
      const over =
        now - s.lastSeen > this.ttlSeconds /* pid reused long after */ ||
        rule.session === "start" /* a new connection */ ||
        (host !== null && s.host !== null && !sameHost) /* a new connection under a reused pid */ ||
        (s.ended && !sameHost); /* the connection ended: a line without its address is another's */
      if (over) {
        this.drop(key, s);
        s = undefined;
      }
    }
    if (!s) {
      s = { host: null, lastSeen: now, ended: false, tallies: null, counted: 0, forgivenLoose: 0, countedTags: null, waiting: null, held: null, forgotten: null };
      /* lookup missed it, or drop deleted it */
      this.sessions.add(key, s);
    }
    s.lastSeen = now;
    return s;
  }

  /** Weight after merging: how much this line raises the session's attempts in its group. */
  private merge(s: Session, rule: CompiledRule, weight: number): number {
    const group = rule.group;
    if (!group) return weight;
    s.tallies ??= [];
    let before = 0;
    let tally: Tally | undefined;
    for (const t of s.tallies) {
      if (t.group !== group) continue;
      before = Math.max(before, t.total);
      if (t.stream === rule.stream) tally = t;
    }
    if (!tally) s.tallies.push((tally = { group, stream: rule.stream, forgiven: rule.forgiven, total: 0 }));
    tally.total = rule.once ? Math.min(1, tally.total + weight) : tally.total + weight;
    return Math.max(0, tally.total - before);
  }

  /** Weight after pairing: nothing when the line is the other program's record of an attempt already counted. */
  private pair(rule: CompiledRule, host: Ip, weight: number, now: number): number {
    if (rule.pair === null || rule.action !== "count") return weight;
    const key = `${rule.pair} ${host.text}`;
    /* lines may come out of time order (two logs read at their own pace, a replay of one after the
       other): a partner may be earlier or later; lines too far apart to pair go when the list is full */
    const open = this.unpaired.get(key) ?? [];
    const partner = open.findIndex((u) => u.file !== rule.file && Math.abs(u.time - now) <= PAIR_SECONDS);
    if (partner >= 0) open.splice(partner, 1);
    else open.push({ file: rule.file, time: now });
    if (open.length > 0) this.unpaired.set(key, open.slice(-MAX_UNPAIRED));
    else this.unpaired.delete(key);
    return partner >= 0 ? 0 : weight;
  }

  /**
   * Attribute one matched line. `key` is program[pid] ("" when the line has no pid: then
   * only lines with their own address count, each alone); `host` the address the server wrote in
   * the line (null when it has none, or reads two ways); `user` the account it names. Returns what
   * to count now, which may include earlier lines that were waiting for this session's address or
   * verdict. `tag` is handed back with the line's attribution, now or later.
   */
  attribute(key: SessionKey, host: Ip | null, rule: CompiledRule, weight: number, now: number, tag = 0, user: string | null = null): Attributed[] {
    const counting = rule.action === "count" || rule.action === "ban";
    /* a program whose rules never say where a connection starts or ends: its pid is no connection */
    if (!host && !rule.connections) key = "";
    if (key === "") {
      if (host) return [{ host, rule, current: true, weight: this.pair(rule, host, weight, now), tag, at: tag }];
      if (counting) this.stats.unattributed++;
      return [];
    }
    if (this.holding.size > 0) this.expireHeld(now);
    const s = this.sessionFor(key, host, rule, now);
    const out: Attributed[] = [];
    if (host && !s.host) {
      s.host = host;
      if (s.waiting) for (const w of s.waiting) out.push(this.release(s, host, w, tag));
      s.waiting = null;
    }
    if (!s.host) {
      if (rule.action === "count" && s.ended === false && rule.session !== "end" && (s.waiting?.length ?? 0) < MAX_WAITING) {
        (s.waiting ??= []).push({ rule, weight, tag });
      } else if (counting) this.stats.unattributed++;
    } else if (!(counting && rule.held && !s.ended && this.hold(key, s, rule, weight, tag, user))) {
      /* a further failure, a login or the connection's end is the verdict on the held lines */
      if (s.held && (counting || rule.action === "success" || rule.session === "end")) {
        const sameAccount = rule.action === "success" && s.held.every((h) => sameUser(h.user, user));
        if (sameAccount) (s.forgotten ??= []).push(...s.held.map((h) => h.tag));
        else for (const h of s.held) out.push(this.release(s, s.host, h, tag));
        s.held = null;
      }
      const merged = rule.action === "count" ? this.merge(s, rule, weight) : weight;
      out.push(this.counted(s, { host: s.host, rule, current: true, weight: host ? this.pair(rule, host, merged, now) : merged, tag, at: tag }));
    }
    if (rule.session === "end") {
      s.ended = true;
      /* without an address the session has nothing left to keep: its waiting lines are unattributed */
      if (!s.host) this.drop(key, s);
    }
    if (this.released.length > 0) this.drainReleased(out);
    return out;
  }

  /** The log is over (a replay, `rules test`): held lines whose verdict never came count, each on itself. */
  endOfLog(): Attributed[] {
    for (const s of this.holding.values()) this.lost(s);
    this.holding.clear();
    const out: Attributed[] = [];
    this.drainReleased(out);
    return out;
  }

  /** Hands out the held lines of sessions that ended without a verdict. */
  private drainReleased(out: Attributed[]): void {
    for (const a of this.released) out.push(a);
    this.released = [];
  }

  /** Keeps a held line for its connection's verdict; false when that line is the verdict itself (another account, too many held). */
  private hold(key: SessionKey, s: Session, rule: CompiledRule, weight: number, tag: number, user: string | null): boolean {
    const held = (s.held ??= []);
    if (held.length >= MAX_HELD || held.some((h) => !sameUser(h.user, user))) return false;
    /* kept until the connection's verdict, minutes maybe: a copy, not a piece of the line's block */
    held.push({ rule, weight, tag, user: user === null ? null : detached(user) });
    this.holding.delete(key);
    this.holding.set(key, s);
    return true;
  }

  /**
   * Sessions holding lines whose connection went quiet for ttl seconds count them: sshd always
   * writes a connection's end, but a log can lose it. Once a second of the lines' time, the
   * holders are looked at oldest first, up to the first that is still waiting: the line loop pays
   * nothing for it.
   */
  private expireHeld(now: number): void {
    if (now < this.nextHeldCheck) return;
    this.nextHeldCheck = now + 1;
    for (const [key, s] of this.holding) {
      if (s.held && now - s.lastSeen <= this.ttlSeconds) return;
      this.holding.delete(key);
      if (s.held) this.lost(s);
    }
  }

  /** An earlier line of the session that waited (for the address, or a verdict), counted now on the line tagged `at`. */
  private release(s: Session, host: Ip, w: Waiting, at: number): Attributed {
    return this.counted(s, { host, rule: w.rule, current: false, weight: this.merge(s, w.rule, w.weight), tag: w.tag, at });
  }

  /** An attribution counted against its session: what a later good login may withdraw. */
  private counted(s: Session, a: Attributed): Attributed {
    if (a.rule.action !== "count") return a;
    s.counted += a.weight;
    if (a.rule.forgiven && !a.rule.group) s.forgivenLoose += a.weight;
    (s.countedTags ??= []).push({ tag: a.tag, forgiven: a.rule.forgiven });
    if (s.countedTags.length > MAX_COUNTED_TAGS) s.countedTags.shift();
    return a;
  }

  /**
   * A successful login: withdraws what this session counted, all of it (`everything`:
   * forgiveOnSuccess) or what only its forgiven rules account for, and returns it.
   */
  forgive(key: SessionKey, everything: boolean): Withdrawn {
    const s = this.sessions.get(key);
    if (!s) return NOTHING_WITHDRAWN;
    /* held lines the login forgot (attribute) were never counted: only `rules test` hears of them */
    const forgotten = s.forgotten;
    s.forgotten = null;
    /* nothing counted, merged or kept: nothing to withdraw (most good logins) */
    if (s.counted === 0 && s.forgivenLoose === 0 && s.tallies === null && s.countedTags === null) return forgotten ? { affairs: 0, tags: forgotten } : NOTHING_WITHDRAWN;
    let affairs = s.counted;
    if (!everything) {
      affairs = s.forgivenLoose;
      /* per group: the attempts fall to what the other streams saw */
      for (const group of new Set((s.tallies ?? []).map((t) => t.group))) {
        const tallies = s.tallies!.filter((t) => t.group === group);
        const before = Math.max(...tallies.map((t) => t.total));
        const after = Math.max(0, ...tallies.filter((t) => !t.forgiven).map((t) => t.total));
        for (const t of tallies) if (t.forgiven) t.total = Math.min(t.total, after);
        affairs += before - after;
      }
    }
    affairs = Math.min(affairs, s.counted);
    const withdrawnTags = affairs === 0 ? [] : (s.countedTags ?? []).filter((t) => everything || t.forgiven).map((t) => t.tag);
    const tags = forgotten ? [...forgotten, ...withdrawnTags] : withdrawnTags;
    s.counted -= affairs;
    s.forgivenLoose = 0;
    s.countedTags = everything ? null : (s.countedTags?.filter((t) => !t.forgiven) ?? null);
    if (everything) s.tallies = null;
    return { affairs, tags };
  }
}

/** Two accounts that may be one: an unknown one (null) may be any */
function sameUser(a: string | null, b: string | null): boolean {
  return a === null || b === null || a === b;
}

/**
 * A session's key: program and pid folded into one number where they can be (a Map finds a
 * number several times faster than a string, and this is a lookup or two per matched line), else
 * text, `program[pid]` or the service's `program:session`; "" for none.
 */
export type SessionKey = string | number;

/** programs given a number in session keys; the rules' programs, so a handful: beyond, keys stay text */
const MAX_KEYED_PROGRAMS = 64;
/** pids of up to 9 digits fold into a number (program × 1e9 + pid) */
const PID_DIGITS = 9;

/**
 * The session a line belongs to: the service's own session id where the rule found one
 * (Dovecot's `session=<...>`), else `program[pid]`, else none. Program names get their numbers
 * in the order they come; one key stands for one program and pid as written (`sshd[007]` is not
 * `sshd[7]`: a pid with a leading zero stays text).
 */
export class SessionKeys {
  private readonly programs: string[] = [];

  of(text: string, h: HeaderScan, serviceSession: string | null): SessionKey {
    if (serviceSession) return `${text.slice(h.programStart, h.programEnd)}:${serviceSession}`;
    const pid = pidNumber(text, h.pidStart, h.pidEnd);
    const program = pid < 0 ? -1 : this.programNumber(text, h.programStart, h.programEnd);
    return program < 0 ? sessionKey(text, h) : program * 1e9 + pid;
  }

  private programNumber(text: string, start: number, end: number): number {
    const { programs } = this;
    for (let i = 0; i < programs.length; i++) {
      const p = programs[i]!;
      if (p.length === end - start && text.startsWith(p, start)) return i;
    }
    if (programs.length >= MAX_KEYED_PROGRAMS) return -1;
    /* built a character at a time, not sliced: a slice would keep the read chunk alive */
    let name = "";
    for (let i = start; i < end; i++) name += text[i];
    programs.push(name);
    return programs.length - 1;
  }
}

/** text[start, end) as a number when it is 1 to PID_DIGITS digits without a leading zero (or "0"), else -1 */
function pidNumber(text: string, start: number, end: number): number {
  if (end <= start || end - start > PID_DIGITS || (text.charCodeAt(start) === 48 && end - start > 1)) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
