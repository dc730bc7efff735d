/**
 * Everything that can be wrong before watcher touches anything: watcher.toml, the rule files of
 * the enabled modules, the lists, the blocklist settings, the fleet key and CA, the programs of
 * the actions, the logger's group, the firewall backend (installed, ours to use), and the files
 * start opens: each module's FIFO path and database. One pass that collects every problem
 * the loaders name (file:line or key), so that an operator fixes them all at once: `watcher
 * check` prints them, and start and restart refuse (exit 2) with the same list.
 */
import { stringify } from "smol-toml";
import { checkFifoGroup, ConfigSchema, discoverRoot, enabledModules, type LoadedConfig, loadConfig, type ModuleName, requireRoot, moduleConfig } from "../core/config";
import { diskFiles } from "../core/config-files";
import { ConfigError } from "../core/errors";
import { resolveBackend } from "../core/firewall";
import { ipsetAvailable } from "../core/firewall/ipset";
import { nftablesAvailable } from "../core/firewall/nftables";
import { existsSync, statSync } from "node:fs";
import { configFile, dbPath, fifoPath, fleetDbPath } from "../core/layout";
import { openReadOnlyDatabase } from "../store/sqlite";
import { Lists } from "../core/lists";
import { RuleSet } from "../core/rules";
import { parseToml } from "../core/toml";
import { dynLists } from "../dynload/lists";
import { readFleetCa } from "../fleet/link";
import { loadFleetKey } from "../fleet/protocol";
import { checkFirewallFree } from "../master/claim";
import { ruleSources } from "../modules/registry";
import { checkActionPrograms } from "./actions";

export interface CheckReport {
  readonly root: string;
  /** what is wrong, one problem a line, each naming its file (and line) or key */
  readonly problems: string[];
  /** what was found good, one line per part, for the operator */
  readonly checked: string[];
  /** the enabled modules and the lists, when they are usable */
  readonly modules: ModuleName[];
  readonly lists: Lists | null;
}

/** Run `step`; a ConfigError it throws becomes problems (one per line of its message). */
function collect<T>(problems: string[], step: () => T): T | null {
  try {
    return step();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.message.split("\n"));
    return null;
  }
}

/** "1 rule", "2 rules" */
export const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * The configuration of a root, its problems listed in `problems`. A watcher.toml that does not
 * load is read again with each key in error left out (its default in force), so that the rules,
 * lists and keys it points to are checked too.
 */
function loadLeniently(rootOption: string | undefined, problems: string[]): LoadedConfig {
  const loaded = collect(problems, () => loadConfig(rootOption));
  if (loaded) return loaded;
  const file = configFile(discoverRoot(rootOption));
  let data: Record<string, unknown> = {};
  try {
    data = parseToml(file, diskFiles.read(file) ?? "") as Record<string, unknown>;
  } catch {
    /* not TOML at all: the rest is checked with every default */
  }
  const dropped = new Set<string>();
  for (let tries = 0; tries < 100; tries++) {
    const parsed = ConfigSchema.safeParse(data);
    if (parsed.success) break;
    for (const issue of parsed.error.issues) {
      const paths = issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
      for (let path of paths.map(upToArray)) {
        /* a key whose default fails too (a required one) goes with the table that holds it */
        while (path.length > 0 && dropped.has(path.join("\0"))) path = path.slice(0, -1);
        dropped.add(path.join("\0"));
        data = removeKey(data, path);
      }
    }
  }
  const text = stringify(data);
  return loadConfig(rootOption, { read: (p) => (p === file ? text : diskFiles.read(p)), list: diskFiles.list });
}

/** A key path cut before its first array index: an array with a bad item goes whole (its default in force). */
function upToArray(path: readonly PropertyKey[]): string[] {
  const index = path.findIndex((k) => typeof k === "number");
  return (index < 0 ? path : path.slice(0, index)).map(String);
}

/** `data` without the key at `path` (the whole of it for an empty path). */
function removeKey(data: Record<string, unknown>, path: string[]): Record<string, unknown> {
  if (path.length === 0) return {};
  let table: unknown = data;
  for (const key of path.slice(0, -1)) {
    if (typeof table !== "object" || table === null) return data;
    table = (table as Record<string, unknown>)[key];
  }
  if (typeof table === "object" && table !== null) delete (table as Record<string, unknown>)[path.at(-1)!];
  return data;
}

/** The rule files of one module: each file alone (every file's problems), then together (names used twice). */
function checkRules(loaded: LoadedConfig, module: ModuleName, problems: string[]): string | null {
  const mode = moduleConfig(loaded.config, module).mode;
  const sources = collect(problems, () => ruleSources(module, loaded.paths.rulesDir));
  if (!sources) return null;
  const before = problems.length;
  for (const source of sources) collect(problems, () => new RuleSet([source], mode));
  if (problems.length > before) return null;
  const rules = collect(problems, () => new RuleSet(sources, mode));
  return rules && `rules ${module}: ${count(rules.rules.length, "rule")} in ${count(sources.length, "file")} (${mode} mode)`;
}

/** Each blocklist's settings alone, so that every list in error is named. */
function checkBlocklists(loaded: LoadedConfig, problems: string[]): string {
  const { config } = loaded;
  const own = Object.entries(config.dynload.lists);
  const before = problems.length;
  for (const [name, list] of own) collect(problems, () => dynLists({ ...config, dynload: { ...config.dynload, lists: { [name]: list } } }));
  const lists = problems.length > before ? null : collect(problems, () => dynLists(config));
  const enabled = (lists ?? []).filter((l) => l.enabled).map((l) => l.name);
  return `blocklists: ${enabled.length ? enabled.join(", ") : "none enabled"}`;
}

/** Is the configured firewall backend installed and usable by this process, and not another root's? */
function checkFirewall(loaded: LoadedConfig): string {
  const { config, paths } = loaded;
  const backend = resolveBackend(config.firewall);
  if (backend === "nftables" && !nftablesAvailable()) throw new ConfigError(`firewall: "nftables" needs libnftables.so.1, which does not load here (Debian/Ubuntu: apt install nftables); or set firewall = "ipset"`);
  if (backend === "ipset" && !ipsetAvailable()) throw new ConfigError(`firewall: "ipset" needs the ipset, iptables and ip6tables commands (Debian/Ubuntu: apt install ipset iptables)`);
  if (backend !== "dryrun" && process.getuid?.() !== 0) throw new ConfigError(`firewall: the ${backend} backend needs root; run as root, or set firewall = "dryrun" to try watcher out`);
  checkFirewallFree(backend, paths.root, "firewall");
  const auto = config.firewall === "auto" ? ` (firewall = "auto"${backend === "dryrun" ? ": no kernel backend usable here, nothing will be dropped" : ""})` : "";
  return `firewall: ${backend}${auto}`;
}

/**
 * What start would stop at after it has stopped the running watcher (restart): a FIFO path that
 * holds another kind of file, a database SQLite cannot read through (quick_check reads every page:
 * a second or so for a database of a million hosts). A file source that is not there yet is only
 * noted: the module reads it once it appears.
 */
function checkModuleFiles(loaded: LoadedConfig, module: ModuleName, databases: boolean, problems: string[]): string {
  const { paths } = loaded;
  const fifo = fifoPath(paths.fifoBase, module);
  if (existsSync(fifo) && !statSync(fifo).isFIFO()) problems.push(`${fifo} exists but is not a FIFO; move it away (start makes the FIFO)`);
  if (databases) checkDatabase(dbPath(paths, module), problems);
  const files = moduleConfig(loaded.config, module).sources.flatMap((s) => (s.type === "file" ? [s.path] : []));
  const notFiles = files.filter((f) => existsSync(f) && !statSync(f).isFile());
  for (const f of notFiles) problems.push(`modules.${module}.sources: ${f} is no file (a folder?): name the log file itself`);
  const missing = files.filter((f) => !existsSync(f));
  return `files ${module}: ${missing.length ? `${missing.join(", ")} not there yet (read from its start once it appears)` : "ok"}`;
}

/** A database that exists must read whole; a missing one is made at start. */
function checkDatabase(path: string, problems: string[]): void {
  if (!existsSync(path)) return;
  try {
    const db = openReadOnlyDatabase(path);
    try {
      const result = db.query<{ quick_check: string }, []>("PRAGMA quick_check(1)").get()?.quick_check;
      if (result !== "ok") problems.push(`${path}: damaged (${result}); move it away (start makes a new one) or repair it (sqlite3 ${path} .recover)`);
    } finally {
      db.close();
    }
  } catch (e) {
    problems.push(`${path}: ${(e as Error).message.replace(`cannot open database ${path}`, "cannot be read")}; move it away (start makes a new one) or repair it`);
  }
}

/**
 * Every check of a loaded configuration; problems are added to `problems`. `databases`: read each
 * database whole too (the commands do; the master, at its start and on SIGHUP, opens them anyway).
 */
export function checkLoaded(loaded: LoadedConfig, problems: string[] = [], databases = false): CheckReport {
  const { config, paths } = loaded;
  const checked: string[] = [];
  const root = paths.root;
  const rootOk = collect(problems, () => requireRoot(root)) !== null;
  if (!rootOk) return { root, problems, checked, modules: [], lists: null };
  const note = (line: string | null) => line && checked.push(line);
  note(`configuration: ${diskFiles.read(paths.configFile) === null ? `${paths.configFile} (none: every setting at its default)` : paths.configFile}`);
  const modules = enabledModules(config);
  note(`modules: ${modules.join(", ") || "none enabled"}`);
  for (const m of modules) note(checkRules(loaded, m, problems));
  for (const m of modules) note(checkModuleFiles(loaded, m, databases, problems));
  const lists = collect(problems, () => Lists.of(paths));
  if (lists) note(`lists: whitelist ${count(lists.whitelist.size, "entry", "entries")}, blacklist ${count(lists.blacklist.size, "entry", "entries")}${lists.leftOut.map((l) => `; ${l}`).join("")}`);
  note(checkBlocklists(loaded, problems));
  if (config.fleet) {
    const fleet = config.fleet;
    const key = collect(problems, () => loadFleetKey(paths.fleetKey));
    const ca = fleet.tlsCa ? collect(problems, () => readFleetCa(fleet.tlsCa!)) : "";
    if (key && ca !== null) note(`fleet: node ${fleet.node}, key ${paths.fleetKey}${fleet.tlsCa ? `, CA ${fleet.tlsCa}` : ""}`);
    if (databases) checkDatabase(fleetDbPath(paths), problems);
  } else note("fleet: off");
  if (config.actions.length && collect(problems, () => checkActionPrograms(config.actions, paths.configFile)) !== null) note(`actions: ${config.actions.map((a) => a.name).join(", ")}`);
  if (collect(problems, () => checkFifoGroup(config.fifoGroup)) !== null) note(`FIFOs: group ${config.fifoGroup}`);
  note(collect(problems, () => checkFirewall(loaded)));
  return { root, problems, checked, modules, lists };
}

/** `watcher check` (and start, restart): the root's configuration and all it points to, every problem listed. */
export function checkInstall(rootOption: string | undefined): CheckReport {
  const problems: string[] = [];
  const loaded = loadLeniently(rootOption, problems);
  const report = checkLoaded(loaded, problems, true);
  /* a watcher.toml in error gets no "ok" line; the rest was checked with its keys in error (all of them, when it is no TOML) at their defaults */
  if (!problems.some((p) => p.startsWith(loaded.paths.configFile))) return report;
  return { ...report, checked: report.checked.filter((line) => !line.startsWith("configuration: ")) };
}

/** A ConfigError (exit 2) listing every problem, or nothing when there is none. */
export function refuseProblems(report: CheckReport, what: string): void {
  if (report.problems.length === 0) return;
  throw new ConfigError(`${what}: ${count(report.problems.length, "problem")} (watcher check lists them too):\n${report.problems.map((p) => `  ${p}`).join("\n")}`);
}
