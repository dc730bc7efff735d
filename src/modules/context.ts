/** Everything a module needs, opened from the root: config, rules, lists, store, firewall. */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { type Config, discoverRoot, type LoadedConfig, loadConfig, type ModuleConfig, type ModuleName, type Paths, moduleConfig } from "../core/config";
import { type ConfigFiles, diskFiles, RecordingFiles, savedFiles } from "../core/config-files";
import { ConfigError } from "../core/errors";
import { createFirewall } from "../core/firewall";
import type { Firewall } from "../core/firewall/types";
import { Lists } from "../core/lists";
import type { Mode, RuleSet } from "../core/rules";
import { ModuleStore } from "../store/module-db";
import { loadRules } from "./registry";
import { dbPath, defaultRunDir, inForceFile } from "../core/layout";
import { nowSeconds } from "../core/duration";

export interface ModuleContext {
  readonly module: ModuleName;
  readonly config: Config;
  readonly moduleConfig: ModuleConfig;
  readonly paths: Paths;
  readonly rules: RuleSet;
  readonly lists: Lists;
  readonly store: ModuleStore;
  readonly firewall: Firewall;
  close(): Promise<void>;
}

export interface Reloadable {
  /** the whole configuration: what a module reads only at start is compared with it (start-settings.ts) */
  readonly config: Config;
  readonly moduleConfig: ModuleConfig;
  readonly rules: RuleSet;
  readonly lists: Lists;
}

/** Config, rules and lists read again (SIGHUP); throws, the old ones still in force, when one is bad. */
export function readReloadable(root: string, module: ModuleName, files: ConfigFiles = diskFiles): Reloadable {
  const { config, paths } = loadConfig(root, files);
  const settings = moduleConfig(config, module);
  return {
    config,
    moduleConfig: settings,
    rules: loadRules(module, paths.rulesDir, settings.mode, files),
    lists: Lists.of(paths, files),
  };
}

/** A configuration read from disk that proved good: keep it as the one in force. */
export function keepInForce(root: string, module: ModuleName, files: RecordingFiles): void {
  files.save(inForceFile(root, module), nowSeconds());
}

/**
 * The resident module's open. From the disk, keeping what it read as the configuration in
 * force; when a file on disk is broken (an edit not yet reloaded, found by a restart after a
 * crash), from the configuration in force, so that protection goes on: `configError` then says
 * which file is broken, for the log and `watcher status`.
 */
export function openModuleInForce(root: string | undefined, module: ModuleName): { ctx: ModuleContext; configError: string | null } {
  const files = new RecordingFiles();
  try {
    const ctx = openModule(root, module, undefined, files);
    keepInForce(ctx.paths.root, module, files);
    return { ctx, configError: null };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const saved = savedFiles(inForceFile(discoverRoot(root), module));
    if (!saved) throw e;
    const since = new Date(saved.savedAt * 1000).toISOString();
    return { ctx: openModule(root, module, undefined, saved), configError: `${e.message} (running on the configuration in force since ${since} until this is fixed)` };
  }
}

/**
 * The configuration the controls act on (ban, unban, bans, why, report, doctor): the disk's, or,
 * while watcher.toml or a list there does not load (an edit half done), the running modules'
 * configuration in force (the newest of var/run/*.in-force.json), said on stderr: a ban that locks
 * someone out can still be lifted, and a drop explained. `files` reads the files it came from.
 */
export function controlConfig(root: string | undefined): { loaded: LoadedConfig; files: ConfigFiles } {
  try {
    const loaded = loadConfig(root);
    Lists.of(loaded.paths);
    return { loaded, files: diskFiles };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const saved = newestInForce(root);
    if (!saved) throw e;
    process.stderr.write(`warning: ${e.message}\n  (acting on the configuration in force since ${new Date(saved.savedAt * 1000).toISOString()}, as the running watcher does, until this is fixed)\n`);
    return { loaded: loadConfig(root, saved), files: saved };
  }
}

/** The configuration in force a module saved last, null when none was (or the root is none). */
function newestInForce(root: string | undefined): ReturnType<typeof savedFiles> {
  let runDir: string;
  let names: string[];
  try {
    runDir = defaultRunDir(discoverRoot(root));
    names = readdirSync(runDir).filter((n) => n.endsWith(".in-force.json"));
  } catch {
    return null;
  }
  let newest: ReturnType<typeof savedFiles> = null;
  for (const name of names) {
    const saved = savedFiles(join(runDir, name));
    if (saved && (!newest || saved.savedAt > newest.savedAt)) newest = saved;
  }
  return newest;
}

/**
 * Open in the order that lets a bad rule file or list stop us before anything is touched:
 * config, rules and lists are validated first, the database and firewall come last.
 */
export function openModule(root: string | undefined, module: ModuleName, mode?: Mode, files: ConfigFiles = diskFiles): ModuleContext {
  const { config, paths } = loadConfig(root, files);
  const settings = moduleConfig(config, module);
  const rules = loadRules(module, paths.rulesDir, mode ?? settings.mode, files);
  const lists = Lists.of(paths, files);
  const store = new ModuleStore(dbPath(paths, module));
  const firewall = createFirewall(config, paths);
  return {
    module,
    config,
    moduleConfig: settings,
    paths,
    rules,
    lists,
    store,
    firewall,
    async close() {
      await firewall.close();
      store.close();
    },
  };
}
