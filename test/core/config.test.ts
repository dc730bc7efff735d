import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkFifoGroup, discoverRoot, fifoGroupId, loadConfig, parseConfig } from "../../src/core/config";
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
    expect(configError("[modules.lg]\n").message).toStartWith("etc/watcher.toml: modules.lg: a module's name is 2 to 8 capital letters and digits");
    expect(parseConfig("x", '[modules.AP]\ntitle = "shop logins"\n').modules.AP).toMatchObject({ enabled: true, title: "shop logins", maxAffairs: 5 });
    expect(configError("fifobase = 1\n").message).toBe('etc/watcher.toml: (top level): unknown key(s) "fifobase"');
    expect(configError('[modules.LG]\nsources = [{ type = "file" }]\n').message).toStartWith("etc/watcher.toml: modules.LG.sources.0.path: ");
    expect(configError("a = 1\nb = ").message).toStartWith("etc/watcher.toml:2:");
    expect(configError("a = 1\nb = ").message).toContain(": not valid TOML: ");
  });
});

describe("settings that would quietly disable protection are refused, naming the key", () => {
  test("banTime and findTime of 0 (or under a second)", () => {
    expect(configError("[modules.LG]\nbanTime = 0\n").message).toStartWith("etc/watcher.toml: modules.LG.banTime: expected a duration of at least 1 second");
    expect(configError('[modules.MB]\nbanTime = "0s"\n').message).toContain("modules.MB.banTime: ");
    expect(configError("[modules.LG]\nfindTime = 0\n").message).toStartWith("etc/watcher.toml: modules.LG.findTime: expected a duration of at least 1 second");
    expect(configError('[modules.WB]\nfindTime = "0m"\n').message).toContain("modules.WB.findTime: ");
    const c = parseConfig("x", '[modules.LG]\nbanTime = 1\nfindTime = "1s"\n');
    expect([c.modules.LG.banTime, c.modules.LG.findTime]).toEqual([1, 1]);
  });

  test("maxBanTime shorter than banTime, also against the default maxBanTime (7d)", () => {
    expect(configError('[modules.LG]\nbanTime = "2h"\nmaxBanTime = "1h"\n').message).toBe(
      "etc/watcher.toml: modules.LG.maxBanTime: 1h is shorter than banTime (2h): every ban would be cut to maxBanTime; raise maxBanTime (default 7d) or lower banTime",
    );
    expect(configError('[modules.MX]\nbanTime = "30d"\n').message).toStartWith("etc/watcher.toml: modules.MX.maxBanTime: 7d is shorter than banTime (30d)");
    expect(parseConfig("x", '[modules.LG]\nbanTime = "1h"\nmaxBanTime = "1h"\n').modules.LG.maxBanTime).toBe(3600);
    expect(parseConfig("x", '[modules.MX]\nbanTime = "30d"\nmaxBanTime = "60d"\n').modules.MX.banTime).toBe(30 * 86400);
  });

  test("a fifoMode that gives other users any access; modes that are not octal", () => {
    for (const mode of ["0666", "0622", "0602", "0604", "0601", "0777", "662"]) {
      const message = configError(`fifoMode = "${mode}"\n`).message;
      expect(message).toStartWith(`etc/watcher.toml: fifoMode: "${mode}" gives other users access to the FIFOs: whoever writes to one can ban any address`);
      expect(message).toContain('such as "0620"');
    }
    for (const mode of ["0999", "0779", "rw-rw----", "06200", "", "0o620"]) {
      expect(configError(`fifoMode = "${mode}"\n`).message).toBe('etc/watcher.toml: fifoMode: expected an octal mode such as "0620"');
    }
    expect(configError("fifoMode = 432\n").message).toStartWith("etc/watcher.toml: fifoMode: ");
    for (const mode of ["0620", "0660", "0600", "640"]) expect(parseConfig("x", `fifoMode = "${mode}"\n`).fifoMode).toBe(mode);
  });
});

describe("checkFifoGroup", () => {
  const dir = mkdtempSync(join(tmpdir(), "watcher-group-"));
  const groupFile = join(dir, "group");
  writeFileSync(groupFile, "root:x:0:\nadm:x:4:syslog\nwatcher-log:x:1234:\nbroken line\n\n");

  test("a group name or numeric gid of this machine passes, with its gid", () => {
    expect(fifoGroupId("root", groupFile)).toBe(0);
    expect(fifoGroupId("adm", groupFile)).toBe(4);
    expect(fifoGroupId("1234", groupFile)).toBe(1234);
    expect(fifoGroupId("0", groupFile)).toBe(0);
    expect(() => checkFifoGroup("watcher-log", groupFile)).not.toThrow();
    /* the real /etc/group has root */
    expect(() => checkFifoGroup("root")).not.toThrow();
  });

  test("a group this machine does not have is a ConfigError naming fifoGroup", () => {
    for (const [group, named] of [["syslog", '"syslog"'], ["4321", "with gid 4321"], ["x", '"x"'], ["broken line", '"broken line"']] as const) {
      let error: unknown;
      try {
        checkFifoGroup(group, groupFile);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(EXIT_USAGE);
      expect((error as ConfigError).message).toStartWith(`fifoGroup: there is no group ${named} in ${groupFile}: `);
    }
    expect(() => checkFifoGroup("root", join(dir, "missing"))).toThrow(ConfigError);
  });

  test("loadConfig does not check it: read-only commands work whatever the group", () => {
    const root = mkdtempSync(join(tmpdir(), "watcher-config-"));
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc", "watcher.toml"), 'fifoGroup = "no-such-group-here"\n');
    expect(loadConfig(root).config.fifoGroup).toBe("no-such-group-here");
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
