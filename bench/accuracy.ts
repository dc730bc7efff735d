/**
 * How right the shipped rules are, per file: recall, wrong hosts and false matches on fail2ban's
 * annotated samples (Debian package fail2ban, read where it is installed and never copied: GPL)
 * and on our own annotated fixtures (test/fixtures/, format in test/helpers/annotated.ts).
 *
 *   node_modules/.bin/bun bench/accuracy.ts                 # the table (markdown) on stdout
 *   node_modules/.bin/bun bench/accuracy.ts --missed sshd   # also every line of that file we got wrong
 *   node_modules/.bin/bun bench/accuracy.ts --json
 *   node_modules/.bin/bun bench/accuracy.ts --rules /opt/watcher/rules   # with your rule files, as <root>/rules: same names replace, others add
 *
 * Lines go through `rules test` (testRules: the daemon's recogniser, sessions included), the
 * whole file at once as a user would run it, and judged per line: a line is found when a rule
 * that counts takes that very line with the annotated address; wrong when one takes it with
 * another; a false match when a rule counts a line fail2ban marks `"match": false` (without a
 * constraint), even if a good login withdraws it later. A line of our own fixtures is found wherever its
 * session counts it with the annotated address (a line may wait for a later line's address or verdict). Where we differ on purpose is counted
 * beside, never instead (see measure). Exit 0 when measured, 1 when the samples are missing, 2 on
 * bad arguments.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ModuleName } from "../src/core/config";
import { parseIp } from "../src/core/ip";
import type { Mode } from "../src/core/rules";
import { HeaderScan, scanSyslog, sessionKey } from "../src/core/syslog";
import { loadRules } from "../src/modules/registry";
import { type RuleTestMatch, testRules } from "../src/modules/ruletest";
import { journalLine } from "../src/pipeline/split";
import { affairHost, rawProgramOf, readExpectations } from "../test/helpers/annotated";

const REPO = join(import.meta.dir, "..");
let RULES = join(REPO, "rules");
const FIXTURES = join(REPO, "test", "fixtures");
const SAMPLES = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/**
 * fail2ban's sample files of the services we ship rules for: the modules that read them, and
 * the program their lines are when the file has no syslog header (as `rules test --program`).
 */
const SAMPLE_FILES: Readonly<Record<string, { modules: ModuleName[]; program?: string; filter?: string; journal?: boolean }>> = {
  sshd: { modules: ["LG"] },
  /*
   * journal entries as fail2ban's systemd backend renders them ("host ident[pid]: message", no
   * time: not journalctl output), read with fail2ban's sshd filter (an addFILE of sshd): each
   * becomes the line watcher's journal source makes of the same entry (journalLine)
   */
  "sshd-journal": { modules: ["LG"], filter: "sshd", journal: true },
  dropbear: { modules: ["LG"] },
  dovecot: { modules: ["MB"] },
  /* SASL failures are MB's (postfix-sasl.rule), the SMTP session MX's */
  postfix: { modules: ["MX", "MB"] },
  /* Exim's main log (format detection): AUTH failures are MB's, rejects MX's */
  exim: { modules: ["MX", "MB"] },
  /* AUTH failures are MB's; "possible SMTP attack: command=AUTH" (too many bad commands) MX's */
  "sendmail-auth": { modules: ["MX", "MB"] },
  "sendmail-reject": { modules: ["MX"] },
  "cyrus-imap": { modules: ["MB"] },
  "courier-auth": { modules: ["MB"] },
  /* AUTH failures are MB's (courier.rule), rejected recipients MX's (courier-esmtpd.rule) */
  "courier-smtp": { modules: ["MX", "MB"] },
  "uwimap-auth": { modules: ["MB"] },
  /* WB's files: headerless, their format found by detection as `rules test` finds it */
  "apache-auth": { modules: ["WB"] },
  "nginx-http-auth": { modules: ["WB"] },
  "nginx-limit-req": { modules: ["WB"] },
  "apache-noscript": { modules: ["WB"] },
  "apache-overflows": { modules: ["WB"] },
  "apache-nohome": { modules: ["WB"] },
  "apache-botsearch": { modules: ["WB"] },
  "apache-shellshock": { modules: ["WB"] },
  "apache-modsecurity": { modules: ["WB"] },
  "apache-badbots": { modules: ["WB"] },
  "nginx-botsearch": { modules: ["WB"] },
  "nginx-bad-request": { modules: ["WB"] },
  /* the modules that ship disabled: FTP, databases, name server */
  vsftpd: { modules: ["FT"] },
  proftpd: { modules: ["FT"] },
  "pure-ftpd": { modules: ["FT"] },
  /* the error log's own lines (several versions' times) and syslog lines mixed: each line's format found as `rules test` finds it */
  "mysqld-auth": { modules: ["DB"] },
  /* the error log's lines without a header: sqlservr's output, as the journal holds it */
  "mssql-auth": { modules: ["DB"], program: "sqlservr" },
  "named-refused": { modules: ["NS"] },
};

/**
 * fail2ban's journal lines ("host ident[pid]: message") as watcher's journal source writes the
 * same entries (journalLine: time, host, ident[pid]: message), a second apart, in place: the line
 * numbers stay. Comments and blank lines are left as they are.
 */
function asJournalLines(text: string): string {
  return text
    .split("\n")
    .map((line, i) => asJournalLine(line, i))
    .join("\n");
}

function asJournalLine(line: string, i: number): string {
  const m = /^(\S+) ([^\s[:]+)(?:\[(\d+)\])?: (.*)$/.exec(line);
  if (!m || line.startsWith("#")) return line;
  const entry = { __REALTIME_TIMESTAMP: String(Date.UTC(2026, 0, 1) * 1000 + i * 1_000_000), _HOSTNAME: m[1], SYSLOG_IDENTIFIER: m[2], _PID: m[3], MESSAGE: m[4] };
  return journalLine(entry) ?? line;
}

/**
 * The lines of a file's blocks that fail2ban tests as journal entries only (`# filterOptions:`
 * whose every option has `"logtype": "journal"`) made journal lines, as asJournalLines does for a
 * whole file; the other lines stay.
 */
function journalBlocksAsLines(text: string): string {
  let journal = false;
  return text
    .split("\n")
    .map((line, i) => {
      const options = /^#+ ?filterOptions:(.+)$/.exec(line);
      if (options) {
        const data = JSON.parse(options[1]!) as Record<string, unknown> | Record<string, unknown>[];
        journal = (Array.isArray(data) ? data : [data]).every((o) => o.logtype === "journal");
      }
      return journal ? asJournalLine(line, i) : line;
    })
    .join("\n");
}

/** fail2ban modes that add probes and disconnects to the default: our aggressive mode's ground */
const PROBE_MODES = new Set(["ddos", "extra", "aggressive"]);
/** fail2ban modes that read one kind of failure only (postfix's `errors`, `auth`, `rbl`; sshd's `ddos`) */
const NARROWING_MODES = new Set(["errors", "auth", "rbl", "ddos"]);

/** One annotated line: what must be counted, in which of our modes. */
interface Annotated {
  readonly line: number;
  readonly text: string;
  /** "match": true with an IP address for host: the address to find; null otherwise */
  readonly host: string | null;
  /** "match": false without a constraint: nothing may count it */
  readonly mustNotCount: boolean;
  readonly mode: Mode;
}

/**
 * fail2ban's sample format: `# filterOptions: JSON` (one options object or a list: the modes the
 * following lines are tested in), `# failJSON: JSON` (the annotation of the next line), and
 * `constraint` / `test.condition` expressions of a few shapes (name == 'x', opts.get('mode') ==
 * 'y'). A line is ours to read in normal mode when one of its filter options is fail2ban's
 * default or a mode that only narrows it to a kind of failure (auth, rbl, errors), else in
 * aggressive mode. Lines fail2ban does not test with the filter `name` are left out.
 */
function readFailJson(name: string, text: string): Annotated[] {
  const lines = text.split("\n");
  const out: Annotated[] = [];
  let modes: string[] = ["normal"];
  let fileOptions: Record<string, unknown> = {};
  let skipBlock = false;
  const condition = (expr: unknown, mode: string): boolean => {
    if (typeof expr !== "string") return true;
    const m = /^\s*(name|opts\.get\('mode'\))\s*(==|!=)\s*'([^']*)'\s*$/.exec(expr);
    if (!m) throw new Error(`${name}: constraint ${expr} has a shape this reader does not know`);
    const value = m[1] === "name" ? name : mode;
    return (value === m[3]) === (m[2] === "==");
  };
  for (let i = 0; i < lines.length; i++) {
    const directive = /^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$/.exec(lines[i]!);
    if (!directive) continue;
    const data = JSON.parse(directive[2]!) as Record<string, unknown> | Record<string, unknown>[];
    if (directive[1] === "fileOptions") fileOptions = data as Record<string, unknown>;
    if (directive[1] === "filterOptions") {
      const options = (Array.isArray(data) ? data : [data]).map((o) => ({ ...fileOptions, ...o }));
      skipBlock = options.some((o) => !condition(o["test.condition"], "normal"));
      modes = options.map((o) => (typeof o.mode === "string" ? o.mode : "normal"));
    }
    if (directive[1] !== "failJSON" || skipBlock) continue;
    const note = data as { match?: boolean; host?: string; constraint?: string };
    const text = lines[++i] ?? "";
    const testedIn = modes.filter((mode) => condition(note.constraint, mode));
    if (testedIn.length === 0) continue;
    const mode: Mode = testedIn.some((m) => !PROBE_MODES.has(m)) ? "normal" : "aggressive";
    const host = note.match === true && typeof note.host === "string" ? (parseIp(note.host)?.text ?? null) : null;
    /* "no failure" in a mode that narrows fail2ban's filter to one kind (errors only, auth only) says
       nothing about what a full reading may count: only a whole mode's "no failure" binds ours */
    const wholeMode = testedIn.some((m) => !NARROWING_MODES.has(m));
    out.push({ line: i + 1, text, host, mustNotCount: note.match !== true && note.constraint === undefined && wholeMode, mode });
  }
  return out;
}

/**
 * Our own fixtures: lines a counting rule must take with an address (in aggressive mode when the
 * rule is aggressive: one that ends a session still matches in normal mode, counting nothing),
 * and lines no rule may take.
 */
function readFixture(path: string, content: string, module: ModuleName): Annotated[] {
  const rules = new Map(loadRules(module, RULES, "aggressive").rules.map((r) => [r.name, r]));
  return readExpectations(path, content).map((e) => {
    const rule = e.rule === null ? undefined : rules.get(e.rule);
    const counts = rule !== undefined && (rule.action === "count" || rule.action === "ban");
    return {
      line: e.line,
      text: e.text,
      host: counts ? e.host : null,
      mustNotCount: e.rule === null,
      mode: e.aggressiveOnly || rule?.mode === "aggressive" ? "aggressive" : "normal",
    };
  });
}

interface Figures {
  readonly file: string;
  readonly modules: string;
  /** lines to find, found, found against another address */
  readonly toFind: number;
  readonly found: number;
  /** the same lines all read in our default (normal) mode, whatever mode fail2ban reports them in */
  readonly foundInDefaultMode: number;
  readonly wrong: number;
  /** lines no rule may count, and those counted */
  readonly toLeave: number;
  readonly falseMatches: number;
  /**
   * where we differ from fail2ban on purpose (the rule files say why): a reported line missed
   * because its connection's attempt was counted on an earlier line of it; false matches on lines
   * counted at once that a good login withdrew, or that fail2ban holds back and reports on a
   * later line of the same connection
   */
  readonly countedEarlier: number;
  /** a reported line missed in normal mode that our aggressive mode counts (a rule aggressive on purpose: forged sources) */
  readonly aggressiveOnly: number;
  readonly withdrawn: number;
  readonly heldBack: number;
  readonly unparsed: number;
  /** the lines got wrong, for --missed */
  readonly misses: string[];
}

/**
 * What the modules' counting rules make of each line, per mode. `wherever`: a line whose affair
 * was counted on a later line of its session (it waited for the address or the verdict) is taken
 * as counted too: our fixtures say whom a line's affair goes to, fail2ban's samples on which line.
 */
function counted(modules: readonly ModuleName[], text: string, program: string | null, wherever: boolean): { byMode: Record<Mode, Map<number, RuleTestMatch[]>>; unparsed: number } {
  const byMode = { normal: new Map<number, RuleTestMatch[]>(), aggressive: new Map<number, RuleTestMatch[]>() };
  let unparsed = 0;
  /* comments blanked (the line numbers stay): unparsed then counts log lines only */
  const logLines = text.replace(/^#.*$/gm, "");
  for (const mode of ["normal", "aggressive"] as const) {
    for (const module of modules) {
      const result = testRules(loadRules(module, RULES, mode), logLines, { program });
      if (mode === "normal") unparsed = Math.max(unparsed, result.unparsed);
      const byLine = new Map(result.matches.map((m) => [m.line, m]));
      for (const m of result.matches) {
        /* a line whose affair a good login of its connection withdrew later was still counted at once */
        const countedElsewhere = wherever && m.countedOn !== undefined && !m.withdrawn;
        const host = countedElsewhere ? affairHost(m, byLine) : m.host;
        if ((m.action !== "count" && m.action !== "ban" && !countedElsewhere) || host === null) continue;
        const list = byMode[mode].get(m.line) ?? [];
        list.push({ ...m, host });
        byMode[mode].set(m.line, list);
      }
    }
  }
  return { byMode, unparsed };
}

/**
 * Per line, as a reviewer reads `rules test`: a line fail2ban reports is found only when a
 * counting rule takes that very line with its address, and a line fail2ban leaves is a false
 * match when a counting rule takes it at all, even if a good login of its connection withdraws it
 * later. The differences that are ours on purpose are counted beside (Figures.countedEarlier, aggressiveOnly,
 * withdrawn, heldBack), never instead: one connection is one program[pid] of a syslog file.
 */
function measure(file: string, modules: readonly ModuleName[], text: string, program: string | null, annotated: readonly Annotated[], wherever = false): Figures {
  const { byMode, unparsed } = counted(modules, text, program, wherever);
  let toFind = 0;
  let found = 0;
  let foundInDefaultMode = 0;
  let wrong = 0;
  let toLeave = 0;
  let falseMatches = 0;
  let countedEarlier = 0;
  let aggressiveOnly = 0;
  let withdrawn = 0;
  let heldBack = 0;
  const misses: string[] = [];
  const countedOn = (a: Annotated) => byMode[a.mode].get(a.line) ?? [];
  const takes = (a: Annotated, host: string, withdrawnToo = true) => countedOn(a).some((m) => parseIp(m.host!)?.text === host && (withdrawnToo || !m.withdrawn));
  const takesInDefaultMode = (a: Annotated) => (byMode.normal.get(a.line) ?? []).some((m) => parseIp(m.host!)?.text === a.host);
  const connection = (a: Annotated) => (program ? "" : connectionOf(a.text).key);
  const sameConnection = (a: Annotated, b: Annotated) => b.mode === a.mode && connection(a) !== "" && connection(b) === connection(a);
  const describe = (a: Annotated) => `${file}:${a.line} (${a.mode}${program || connectionOf(a.text).parsed ? "" : ", header not understood"})`;
  for (const a of annotated) {
    const got = countedOn(a);
    const hosts = got.map((m) => `${m.rule} ${m.host}${m.withdrawn ? " (withdrawn)" : ""}`).join(", ") || "nothing";
    if (a.host !== null) {
      toFind++;
      if (takesInDefaultMode(a)) foundInDefaultMode++;
      if (takes(a, a.host)) found++;
      else {
        const earlier = annotated.some((b) => b.line < a.line && sameConnection(a, b) && takes(b, a.host!, false));
        const inAggressive = a.mode === "normal" && (byMode.aggressive.get(a.line) ?? []).some((m) => parseIp(m.host!)?.text === a.host);
        if (earlier) countedEarlier++;
        if (inAggressive) aggressiveOnly++;
        const why = earlier ? " (its connection counted on an earlier line)" : inAggressive ? " (counted in aggressive mode)" : "";
        misses.push(`${describe(a)}: missed ${a.host}, counted ${hosts}${why}\n    ${a.text}`);
      }
      if (got.some((m) => parseIp(m.host!)?.text !== a.host)) {
        wrong++;
        misses.push(`${describe(a)}: WRONG host, want ${a.host}, counted ${hosts}\n    ${a.text}`);
      }
    } else if (a.mustNotCount) {
      toLeave++;
      if (got.length === 0) continue;
      falseMatches++;
      let why = "";
      if (got.every((m) => m.withdrawn)) withdrawn++;
      else if (annotated.some((b) => b.line > a.line && b.host !== null && sameConnection(a, b) && got.some((m) => parseIp(m.host!)?.text === b.host))) {
        heldBack++;
        why = " (fail2ban reports it on a later line of the connection)";
      }
      misses.push(`${describe(a)}: false match, counted ${hosts}${why}\n    ${a.text}`);
    }
  }
  return { file, modules: modules.join("+") + (program ? ` (${program})` : ""), toFind, found, foundInDefaultMode, wrong, toLeave, falseMatches, countedEarlier, aggressiveOnly, withdrawn, heldBack, unparsed, misses };
}

/** program[pid] of a syslog line ("" without one), and whether its header is understood at all */
function connectionOf(line: string): { key: string; parsed: boolean } {
  const h = new HeaderScan();
  if (!scanSyslog(line, 0, line.length, h)) return { key: "", parsed: false };
  return { key: sessionKey(line, h), parsed: true };
}

function percent(n: number, of: number): string {
  return of === 0 ? "-" : `${((100 * n) / of).toFixed(1)} %`;
}

/** recall ≥ 95 %, no wrong host, false matches ≤ 5 % of the lines to leave */
function meetsAim(f: Figures): boolean {
  return (f.toFind === 0 || f.found >= 0.95 * f.toFind) && f.wrong === 0 && f.falseMatches <= 0.05 * f.toLeave;
}

function table(title: string, rows: readonly Figures[]): string {
  const out = [
    `### ${title}`,
    "",
    "| file | modules | found / to find | recall | found in the default mode | wrong hosts | false matches / must not count | false | of the missed: counted on an earlier line, in aggressive mode | of the false: withdrawn, held back by fail2ban | unparsed lines | aim |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
  ];
  for (const f of rows) {
    out.push(
      `| ${f.file} | ${f.modules} | ${f.found} / ${f.toFind} | ${percent(f.found, f.toFind)} | ${f.foundInDefaultMode} | ${f.wrong} | ${f.falseMatches} / ${f.toLeave} | ${percent(f.falseMatches, f.toLeave)} | ${f.countedEarlier}, ${f.aggressiveOnly} | ${f.withdrawn}, ${f.heldBack} | ${f.unparsed} | ${meetsAim(f) ? "yes" : "no"} |`,
    );
  }
  return out.join("\n");
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: bun bench/accuracy.ts [--missed FILE]... [--json] [--rules DIR]\n`);
  process.exit(2);
}

function main(): number {
  let args: { missed?: string[]; json?: boolean; rules?: string };
  try {
    args = parseArgs({ options: { missed: { type: "string", multiple: true }, json: { type: "boolean" }, rules: { type: "string" } } }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if (args.rules !== undefined) {
    if (!existsSync(args.rules)) usage(`--rules ${args.rules}: no such folder`);
    RULES = args.rules;
  }
  if (!existsSync(SAMPLES)) {
    process.stderr.write(`bench/accuracy: ${SAMPLES} is missing: apt-get install -y fail2ban\n`);
    return 1;
  }
  const samples = Object.entries(SAMPLE_FILES)
    .filter(([name]) => existsSync(join(SAMPLES, name)))
    .map(([name, { modules, program, filter, journal }]) => {
      const raw = readFileSync(join(SAMPLES, name), "utf8");
      const text = journal ? asJournalLines(raw) : journalBlocksAsLines(raw);
      return measure(name, modules, text, program ?? null, readFailJson(filter ?? name, text));
    });
  const fixtures: Figures[] = [];
  for (const dir of readdirSync(FIXTURES).sort()) {
    if (!["LG", "MB", "MX", "WB", "FT", "VP", "NS", "DB", "AD", "hostile"].includes(dir)) continue;
    for (const name of readdirSync(join(FIXTURES, dir)).filter((f) => f.endsWith(".log")).sort()) {
      const path = join(FIXTURES, dir, name);
      const content = readFileSync(path, "utf8");
      const module = (dir === "hostile" ? /^#! module (\S+)/m.exec(content)?.[1] : dir) as ModuleName;
      fixtures.push(measure(`${dir}/${name}`, [module], content, rawProgramOf(content), readFixture(path, content, module), true));
    }
  }
  const all = [...samples, ...fixtures];
  for (const name of args.missed ?? []) {
    const f = all.find((x) => x.file === name);
    if (!f) usage(`--missed ${name}: no such file measured (${all.map((x) => x.file).join(", ")})`);
  }
  if (args.json) {
    process.stdout.write(`${JSON.stringify(all.map(({ misses: _misses, ...f }) => f), null, 2)}\n`);
  } else {
    process.stdout.write(`${table(`fail2ban's samples (${SAMPLES})`, samples)}\n\n${table("our fixtures (test/fixtures)", fixtures)}\n`);
  }
  for (const name of args.missed ?? []) {
    const f = all.find((x) => x.file === name)!;
    process.stdout.write(`\n#### ${name}: ${f.misses.length} lines got wrong\n\n${f.misses.join("\n")}\n`);
  }
  return 0;
}

if (import.meta.main) process.exit(main());
