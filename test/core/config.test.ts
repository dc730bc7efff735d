import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discoverRoot, loadConfig, parseConfig } from "../../src/core/config";
import { ConfigError, EXIT_USAGE } from "../../src/core/errors";

function configError(text: string): ConfigError {
  try {
    parseConfig("etc/watcher.toml", text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected the config to be refused");
}

describe("watcher.toml", () => {
  test("every key has a default", () => {
    const c = parseConfig("x", "");
    expect(c.firewall).toBe("auto");
    expect(c.modules.LG).toMatchObject({ enabled: true, maxAffairs: 5, findTime: 3600, banTime: 3600, banTimeFactor: 2, maxBanTime: 604800, mode: "normal", forgiveOnSuccess: false });
    expect(c.modules.LG.sources).toEqual([{ type: "fifo" }]);
  });
  test("durations as numbers or with units", () => {
    const c = parseConfig("x", '[modules.LG]\nfindTime = "10m"\nbanTime = 90\nmaxBanTime = "2w"\n');
    expect([c.modules.LG.findTime, c.modules.LG.banTime, c.modules.LG.maxBanTime]).toEqual([600, 90, 1209600]);
  });
  test("errors name the key and what was expected, exit status 2", () => {
    const e = configError('[modules.LG]\nbanTime = "soon"\n');
    expect(e.message).toBe('etc/watcher.toml: modules.LG.banTime: expected a duration such as 600, "90s", "10m", "1h", "7d", got "soon"');
    expect(e.exitCode).toBe(EXIT_USAGE);
    expect(configError("[modules.LG]\nmaxAffairs = 0\n").message).toStartWith("etc/watcher.toml: modules.LG.maxAffairs: ");
    expect(configError("[modules.XX]\n").message).toBe('etc/watcher.toml: modules: unknown key(s) "XX"');
    expect(configError("fifobase = 1\n").message).toBe('etc/watcher.toml: (top level): unknown key(s) "fifobase"');
    expect(configError('[modules.LG]\nsources = [{ type = "file" }]\n').message).toStartWith("etc/watcher.toml: modules.LG.sources.0.path: ");
    expect(configError("a = 1\nb = ").message).toStartWith("etc/watcher.toml:2:");
    expect(configError("a = 1\nb = ").message).toContain(": not valid TOML: ");
  });
});

describe("root", () => {
  test("--root, then WATCHER_ROOT, then the folder above the source", () => {
    expect(discoverRoot("/opt/w")).toBe("/opt/w");
    const saved = process.env.WATCHER_ROOT;
    process.env.WATCHER_ROOT = "/srv/w";
    expect(discoverRoot()).toBe("/srv/w");
    delete process.env.WATCHER_ROOT;
    expect(discoverRoot()).toBe(join(import.meta.dir, "..", ".."));
    if (saved !== undefined) process.env.WATCHER_ROOT = saved;
  });
  test("paths are relative to the root unless absolute", () => {
    const root = mkdtempSync(join(tmpdir(), "watcher-config-"));
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc", "watcher.toml"), 'fifoBase = "/run/watcher"\n');
    const { paths } = loadConfig(root);
    expect(paths.fifoBase).toBe("/run/watcher");
    expect(paths.dbDir).toBe(join(root, "var", "db"));
    expect(paths.whitelist).toBe(join(root, "etc", "whitelist"));
  });
});
