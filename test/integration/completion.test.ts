/**
 * Everyday habits of the built binary (issue 20, item 8): `watcher completion bash|zsh` completes
 * commands, options and module names through the compiled binary (bash calls the function as
 * its completion does; zsh completes a typed line with a real Tab in a pseudo-terminal), and a
 * mistyped command gets a "did you mean".
 */
import { describe, expect, test } from "bun:test";
import { dirname } from "node:path";
import { makeRoot, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

const PATH = `${dirname(WATCHER)}:${process.env.PATH}`;

function run(argv: string[]) {
  const p = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PATH } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("watcher completion", () => {
  /** What bash offers for the words typed so far (the last one being completed). */
  function bashComplete(...words: string[]): string[] {
    const script = `eval "$(watcher completion bash)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _watcher_completions; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = run(["bash", "-c", script]);
    expect(r.err).toBe("");
    return r.out.split("\n").filter(Boolean).sort();
  }

  test("bash: commands, options and module names", () => {
    expect(bashComplete("watcher", "sta")).toEqual(["start", "stat", "status"]);
    expect(bashComplete("watcher", "do")).toEqual(["doctor"]);
    expect(bashComplete("watcher", "doctor", "--f")).toEqual(["--fix"]);
    expect(bashComplete("watcher", "inject", "")).toEqual(expect.arrayContaining(["LG", "MX", "MB", "WB", "--direct"]));
    /* a module of the root's own configuration too */
    const root = makeRoot("completion", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.AP]\n' });
    expect(bashComplete("watcher", "--root", root, "rules", "test", "A")).toEqual(["AD", "AP"]);
    expect(bashComplete("watcher", "--root", root, "report", "--module", "")).toEqual(expect.arrayContaining(["AP", "LG"]));
  });

  test("zsh: a Tab in a real interactive zsh completes the command", () => {
    /* zsh drives an interactive zsh in a pseudo-terminal (zpty), types "watcher doc" and a Tab */
    const driver = `
      zmodload zsh/zpty
      zpty z "zsh -f -i"
      zpty -w z 'PS1="> "; autoload -U compinit; compinit -u -D; eval "$(watcher completion zsh)"; print READY-$((1+1))'
      zpty -r z out '*READY-2*'
      zpty -w -n z $'watcher doc\\t'
      out=""
      for i in {1..600}; do
        while zpty -r -t z chunk; do out+=$chunk; done
        [[ $out == *"watcher doctor"* ]] && break
        sleep 0.1
      done
      zpty -d z
      print -r -- "$out"`;
    const r = run(["zsh", "-f", "-c", driver]);
    expect(r.out).toContain("watcher doctor");
  });

  test("an unknown shell is a usage error", () => {
    const r = run([WATCHER, "completion", "fish"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Choices: "bash", "zsh"');
  });
});

describe("mistyped commands", () => {
  test("a near miss gets a did-you-mean, exit 2", () => {
    const r = run([WATCHER, "--root", "/nonexistent", "stauts"]);
    expect(r.code).toBe(2);
    expect(r.err).toStartWith('watcher: unknown command "stauts"; did you mean status?\n');
    expect(run([WATCHER, "doctr", "--json"]).err).toStartWith('watcher: unknown command "doctr"; did you mean doctor?\n');
    /* a mistyped subcommand is named, not the command before it */
    expect(run([WATCHER, "rules", "tset"]).err).toStartWith('watcher: unknown command "tset"; did you mean test?\n');
  });

  test("a word like no command is called an unknown command", () => {
    const r = run([WATCHER, "frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err).toStartWith('watcher: unknown command "frobnicate"\n');
  });
});
