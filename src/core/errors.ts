/**
 * Errors are values written for the operator: what failed, where, what was expected.
 * One place (src/cli.ts) turns them into exit codes.
 */
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export class WatcherError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_RUNTIME,
  ) {
    super(message);
    this.name = "WatcherError";
  }
}

/** Bad usage, configuration or rule file: exit status 2. */
export class ConfigError extends WatcherError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = "ConfigError";
  }
}
