/**
 * Imported first by the CLI, before any schema is built: zod then parses without compiling a
 * fast path per object schema (`new Function`). Every schema here parses a file once per run
 * (configuration, rule files), where compiling cost more than it saved: a tenth of `rules test`'s
 * start-up.
 */
import { config } from "zod";

config({ jitless: true });
