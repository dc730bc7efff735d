/**
 * `watcher completion bash|zsh`: a shell function that asks watcher itself what may come next
 * (yargs answers `--get-yargs-completions`: commands, options, module names), so completion
 * stays true to the binary installed. The scripts are ours because yargs picks its script by
 * $SHELL, while an operator writing /etc/bash_completion.d/watcher from a root shell names it.
 */
import type { CommandModule } from "yargs";
import type { GlobalArgs } from "./common";

const SCRIPTS = {
  bash: `# watcher completion for bash: eval "$(watcher completion bash)" in ~/.bashrc,
# or watcher completion bash > /etc/bash_completion.d/watcher
_watcher_completions() {
  local IFS=$'\\n'
  COMPREPLY=($(compgen -W "$(watcher --get-yargs-completions "\${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null)" -- "\${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _watcher_completions watcher
`,
  zsh: `#compdef watcher
# watcher completion for zsh: eval "$(watcher completion zsh)" in ~/.zshrc (after compinit),
# or watcher completion zsh > "\${fpath[1]}/_watcher"
_watcher() {
  local -a reply
  reply=("\${(@f)$(watcher --get-yargs-completions "\${(@)words[1,CURRENT]}" 2>/dev/null)}")
  if (( \${#reply} )); then compadd -a reply; else _default; fi
}
compdef _watcher watcher
`,
} as const;

interface Args extends GlobalArgs {
  shell: keyof typeof SCRIPTS;
}

export const completionCommand: CommandModule<GlobalArgs, Args> = {
  command: "completion <shell>",
  describe: "print the shell completion script (commands, options, module names)",
  builder: (y) =>
    y
      .positional("shell", { choices: Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[], demandOption: true, describe: "the shell the script is for" })
      .example('eval "$($0 completion bash)"', "in ~/.bashrc")
      .example("$0 completion bash > /etc/bash_completion.d/watcher", "for every user"),
  handler: (argv) => {
    process.stdout.write(SCRIPTS[argv.shell]);
  },
};
