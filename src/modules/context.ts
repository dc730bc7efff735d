/** Everything a module needs, opened from the root: config, rules, lists, store, firewall. */
import { join } from "node:path";
import { type Config, loadConfig, type ModuleConfig, type ModuleName, type Paths } from "../core/config";
import { createFirewall } from "../core/firewall";
import type { Firewall } from "../core/firewall/types";
import { Lists } from "../core/lists";
import type { Mode, RuleSet } from "../core/rules";
import { ModuleStore } from "../core/store";
import { loadRules } from "./registry";

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
  readonly moduleConfig: ModuleConfig;
  readonly rules: RuleSet;
  readonly lists: Lists;
}

/** Config, rules and lists read again from disk (SIGHUP); throws, the old ones still in force, when one is bad. */
export function readReloadable(root: string, module: ModuleName): Reloadable {
  const { config, paths } = loadConfig(root);
  const moduleConfig = config.modules[module];
  return {
    moduleConfig,
    rules: loadRules(module, paths.rulesDir, moduleConfig.mode),
    lists: Lists.load(paths.whitelist, paths.blacklist),
  };
}

export function dbPath(paths: Paths, module: ModuleName): string {
  return join(paths.dbDir, `${module}.db`);
}

/** The node's record of fleet decisions (see core/fleet FleetStore). */
export function fleetDbPath(paths: Paths): string {
  return join(paths.dbDir, "fleet.db");
}

/**
 * Open in the order that lets a bad rule file or list stop us before anything is touched:
 * config, rules and lists are validated first, the database and firewall come last.
 */
export function openModule(root: string | undefined, module: ModuleName, mode?: Mode): ModuleContext {
  const { config, paths } = loadConfig(root);
  const moduleConfig = config.modules[module];
  const rules = loadRules(module, paths.rulesDir, mode ?? moduleConfig.mode);
  const lists = Lists.load(paths.whitelist, paths.blacklist);
  const store = new ModuleStore(dbPath(paths, module));
  const firewall = createFirewall(config, paths);
  return {
    module,
    config,
    moduleConfig,
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
