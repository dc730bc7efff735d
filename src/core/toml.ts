/**
 * TOML for watcher.toml and rule files, with errors that say where: smol-toml reports the line
 * and column of a mistake (Bun's built-in parser does not), which an operator needs to fix it.
 */
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "./errors";

export function parseToml(file: string, text: string): unknown {
  try {
    return parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const why = e.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`${file}:${e.line}:${e.column}: not valid TOML: ${why}`);
    }
    throw new ConfigError(`${file}: not valid TOML: ${(e as Error).message}`);
  }
}
