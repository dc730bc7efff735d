/**
 * What rule loading refuses in a template beyond the anchoring lint (test/core/rules.test.ts):
 * a token it does not know (issue 15, item 9: `<HSOT>` used to be literal text, so the rule
 * silently never matched), and a template that no plan reads in time linear in the line (item
 * 10). Also how the linear-time plans read the places where a plain regex would have backtracked.
 */
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors";
import { compileTemplate, matchTemplates, RuleSet } from "../../src/core/rules";
import { HeaderScan, scanSyslog } from "../../src/core/syslog";

function loadError(host: string): string {
  const text = `programs = ["dovecot"]\n[[rule]]\nname = "x"\npattern = "a"\nhost = ${host}\n`;
  try {
    new RuleSet([{ file: "test.rule", text }], "normal");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected the rule file to be refused");
}

function extract(template: string, message: string): { host: string; user?: string } | null {
  const t = compileTemplate(template);
  if (typeof t === "string") throw new Error(t);
  const m = t.regex.exec(message);
  if (!m) return null;
  return { host: m[t.groups.HOST]!, ...(t.groups.USER ? { user: m[t.groups.USER] } : {}) };
}

describe("unknown tokens are refused, naming the file, the rule and the field", () => {
  test("<HSOT> in a host template", () => {
    expect(loadError('"^from <HSOT> port <PORT>$"')).toBe(
      'test.rule: rule "x", field host: template "^from <HSOT> port <PORT>$" has an unknown token <HSOT> (known: <HOST>, <PORT>, <COUNT>, <WORD>, <FIELD>, <TEXT>, <NOCOLON>, <PATH>, <AGENT>, <VHOST>, <SESSION>, <USER>, <ANY>)',
    );
  });
  test("<IP> in the second template of a list", () => {
    expect(loadError('["^from <HOST>$", "^from <IP> port <PORT>$"]')).toStartWith('test.rule: rule "x", field host[1]: template "^from <IP> port <PORT>$" has an unknown token <IP> ');
  });
  test("a template without <HOST> but with a typo names the typo, not the missing <HOST>", () => {
    expect(compileTemplate("^rip=<HOTS>$")).toStartWith("has an unknown token <HOTS>");
  });
  test("angle brackets around other text stay literal text", () => {
    expect(typeof compileTemplate("^session=<<SESSION>> user=<> <x> <Host> from <HOST>$")).toBe("object");
    expect(extract("^user=<> <x> from <HOST>$", "user=<> <x> from 192.0.2.1")?.host).toBe("192.0.2.1");
  });
});

describe("templates no plan reads in linear time are refused", () => {
  test("a run needs literal text between it and another token", () => {
    expect(compileTemplate("^from <WORD><HOST>$")).toBe("has <WORD> right next to <HOST>: write the text that separates them between the two");
    expect(compileTemplate("^from <HOST> <USER><TEXT>$")).toContain("has <TEXT> right next to <USER>");
  });
  test("a head without ^ whose run could span its own text, read from either side", () => {
    expect(compileTemplate("a<TEXT>b <USER> <HOST>$")).toContain("cannot be read in time linear in the line: <TEXT> before <USER>");
  });
  test("a tail without $ whose run could span its own text", () => {
    expect(compileTemplate("^<HOST> <USER> x<TEXT>y")).toContain("cannot be read in time linear in the line: <TEXT> after <USER>");
  });
  test("a run between or after two wildcards", () => {
    expect(compileTemplate("^a <USER> <HOST> <WORD> <ANY>$")).toContain("<WORD> after <USER>, in a template with two wildcards");
  });
  test("the refusal reaches the operator as a ConfigError of the rule's field", () => {
    expect(loadError('"a<TEXT>b <USER> <HOST>$"')).toStartWith('test.rule: rule "x", field host: template "a<TEXT>b <USER> <HOST>$" cannot be read in time linear');
  });
});

describe("how the linear-time plans read ambiguous places", () => {
  test("a tail read backward from $ after <USER>: the server's text nearest the end wins", () => {
    /* <WORD> may hold commas, so the tail is read from the end, and a comma in the user name cannot move the address */
    expect(extract("^auth(<USER>,<HOST>,<WORD>)<<SESSION>>: <WORD>: Password mismatch$", "auth(x,192.0.2.9,y,203.0.113.5,sasl:plain)<s1>: sql: Password mismatch")).toEqual({
      host: "203.0.113.5",
      user: "x,192.0.2.9,y",
    });
  });
  test("a head without ^ is its first place in the line; the address still the last one the tail allows", () => {
    const t = "(auth failed, <COUNT> attempts in <WORD> secs)<TEXT>: user=<<USER>>, <TEXT>rip=<HOST>, lip=<WORD> <TEXT>session=<<SESSION>>$";
    const line =
      "imap-login: Disconnected (auth failed, 3 attempts in 2 secs): user=<x (auth failed, 9 attempts in 1 secs): user=<y>, rip=192.0.2.9, lip=1.2.3.4, session=<a>>, method=PLAIN, rip=203.0.113.7, lip=198.51.100.1, TLS, session=<b>";
    const c = compileTemplate(t);
    if (typeof c === "string") throw new Error(c);
    const m = c.regex.exec(line)!;
    expect(m[c.groups.COUNT]).toBe("3");
    expect(m[c.groups.HOST]).toBe("203.0.113.7");
    expect(m[c.groups.SESSION]).toBe("b");
  });
  test("a run whose following text it could also hold stops at the last place that text fits", () => {
    expect(extract("^conn (pid=<WORD>,uid=<WORD>): from <HOST>$", "conn (pid=1,uid=2,uid=3): from 192.0.2.1")).toEqual({ host: "192.0.2.1" });
  });
});

describe("lines that read two ways (issue 16, item 2)", () => {
  function ruleSet(host: string, extra = ""): RuleSet {
    return new RuleSet([{ file: "test.rule", text: `programs = ["sshd"]\n[[rule]]\nname = "x"\npattern = "Failed "\nhost = ${host}\n${extra}` }], "normal");
  }
  function read(rules: RuleSet, message: string) {
    const m = matchTemplates(rules.rules[0]!, message);
    return m && { host: m.host?.text ?? null, ambiguous: m.ambiguous };
  }

  test("one template, <HOST> between two wildcards: two places for the address text, no address", () => {
    const rules = ruleSet('"^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2: <ANY>$"');
    expect(read(rules, "Failed hostbased for dan from 203.0.113.9 port 1 ssh2: RSA SHA256:x, client user \"dan\"")).toEqual({ host: "203.0.113.9", ambiguous: false });
    /* the client's user name in the auth info repeats the template's text: either place could be sshd's */
    expect(read(rules, 'Failed hostbased for dan from 203.0.113.9 port 1 ssh2: RSA SHA256:x, client user "x from 192.0.2.9 port 2 ssh2: "')).toEqual({ host: null, ambiguous: true });
    /* so can the user name before it */
    expect(read(rules, "Failed password for x from 192.0.2.9 port 2 ssh2: from 203.0.113.9 port 1 ssh2: y")).toEqual({ host: null, ambiguous: true });
  });

  test("the second search runs only when the text before the address stands twice in the line", () => {
    const source = "^Accepted <WORD> for <USER> from <HOST> port <PORT> ssh2<ANY>$";
    const t = compileTemplate(source);
    if (typeof t === "string") throw new Error(t);
    expect(t.lead).toBe(" from ");
    const rules = ruleSet(JSON.stringify(source));
    const once = "Accepted publickey for deploy from 203.0.113.9 port 1 ssh2: ED25519 SHA256:x";
    const twice = "Accepted password for x from 192.0.2.9 port 2 ssh2 from 203.0.113.9 port 1 ssh2";
    /* once: the second search is not run, and would have found the first one's place */
    expect(read(rules, once)).toEqual({ host: "203.0.113.9", ambiguous: false });
    expect(t.alt!.exec(once)![t.place]).toBe(t.regex.exec(once)![t.place]!);
    /* twice: it runs, finds the other place, and the line reads two ways */
    expect(read(rules, twice)).toEqual({ host: null, ambiguous: true });
    expect(t.alt!.exec(twice)![t.place]!.length).toBeLessThan(t.regex.exec(twice)![t.place]!.length);
    /* a text that stands many times (a space) leaves it to the second search, which agrees here */
    const spaced = ruleSet('"^Disconnecting <USER> <HOST> port <PORT>: Too many authentication failures [preauth]$"');
    expect(spaced.rules[0]!.templates[0]!.lead).toBe(" ");
    expect(read(spaced, "Disconnecting root 203.0.113.9 port 4: Too many authentication failures [preauth]")).toEqual({ host: "203.0.113.9", ambiguous: false });
    /* a searched part that starts with a token has none: the second search always runs */
    const token = ruleSet('"^Failed for <USER><HOST> port <PORT><ANY>$"');
    expect(token.rules[0]!.templates[0]!.lead).toBe("");
    expect(read(token, "Failed for 192.0.2.9 port 2 203.0.113.9 port 1")).toEqual({ host: null, ambiguous: true });
  });

  test("two templates of one rule reading two addresses: no address", () => {
    const rules = ruleSet('["^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2$", "^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2: <ANY>$"]');
    expect(read(rules, "Failed password for invalid user test from 203.0.113.9 port 58946 ssh2: from 192.0.2.9 port 55555 ssh2")).toEqual({ host: null, ambiguous: true });
    /* the same address at both places reads one way */
    expect(read(rules, "Failed password for x from 203.0.113.9 port 1 ssh2: from 203.0.113.9 port 1 ssh2")).toEqual({ host: "203.0.113.9", ambiguous: false });
    expect(read(rules, "Failed password for invalid user from 192.0.2.9 from 203.0.113.9 port 58946 ssh2")).toEqual({ host: "203.0.113.9", ambiguous: false });
  });

  test("a template whose <HOST> is fixed by ^ or by a head read from ^ has no second regex; one found by a search has one", () => {
    for (const source of ["^Connection from <HOST> port <PORT> on <ANY>$", "rip=<HOST>, lip=<WORD>$", "^<WORD>: reject: <WORD> from <WORD>[<HOST>]: <ANY>$"]) {
      const t = compileTemplate(source);
      if (typeof t === "string") throw new Error(t);
      expect([source, t.alt]).toEqual([source, null]);
    }
    for (const source of ["^Invalid user <USER> from <HOST> port <PORT>$", "^warning: <ANY> limit exceeded: <WORD> from <WORD>[<HOST>] for service <WORD>$"]) {
      const t = compileTemplate(source);
      if (typeof t === "string") throw new Error(t);
      expect([source, t.alt === null]).toEqual([source, false]);
    }
  });

  test("where the text after the address must reach the end of the line, a copy of it earlier is no second reading", () => {
    const rules = new RuleSet(
      [{ file: "t.rule", text: 'programs = ["postfix/smtpd"]\n[[rule]]\nname = "limit"\npattern = "limit exceeded: "\nhost = "^warning: <ANY> limit exceeded: <WORD> from <WORD>[<HOST>] for service <WORD>$"\n' }],
      "normal",
    );
    const m = (s: string) => matchTemplates(rules.rules[0]!, s);
    expect(m("warning: Connection rate limit exceeded: 31 from unknown[203.0.113.9] for service smtp")?.host?.text).toBe("203.0.113.9");
    expect(m("warning: x limit exceeded: 1 from x[192.0.2.9] for service smtp limit exceeded: 31 from unknown[203.0.113.9] for service smtp")).toMatchObject({ ambiguous: false });
    expect(m("warning: x limit exceeded: 1 from x[192.0.2.9] for service smtp limit exceeded: 31 from unknown[203.0.113.9] for service smtp")?.host?.text).toBe("203.0.113.9");
    const users = ruleSet('"^Failed <WORD> for <USER> from <HOST> port <PORT> ssh2$"');
    expect(read(users, "Failed password for x from 192.0.2.9 port 2 ssh2 from 203.0.113.9 port 1 ssh2")).toEqual({ host: "203.0.113.9", ambiguous: false });
  });

  test("the session field: start or end, anything else refused naming the rule and the field", () => {
    expect(ruleSet('"^Failed <WORD> for <USER> from <HOST>$"', 'session = "end"\n').rules[0]!.session).toBe("end");
    expect(ruleSet('"^Failed <WORD> for <USER> from <HOST>$"').rules[0]!.session).toBeNull();
    expect(() => ruleSet('"^Failed <WORD> for <USER> from <HOST>$"', 'session = "close"\n')).toThrow('test.rule: rule "x", field session: expected "start" (the line starts a connection) or "end" (it ends one)');
  });

  test("an aggressive rule that ends a session still ends it in normal mode, counting nothing", () => {
    const text = `programs = ["sshd"]\n[[rule]]\nname = "probe"\npattern = "Connection closed by "\nhost = "^Connection closed by <HOST> port <PORT> [preauth]$"\nmode = "aggressive"\nsession = "end"\n[[rule]]\nname = "other"\npattern = "Timeout "\nhost = "^Timeout for <HOST>$"\nmode = "aggressive"\n`;
    const normal = new RuleSet([{ file: "t.rule", text }], "normal");
    const aggressive = new RuleSet([{ file: "t.rule", text }], "aggressive");
    const line = (message: string): [string, HeaderScan, number] => {
      const text = `Nov 25 10:00:00 srv sshd[7]: ${message}`;
      const h = new HeaderScan();
      scanSyslog(text, 0, text.length, h);
      return [text, h, text.length];
    };
    const closed = line("Connection closed by 203.0.113.9 port 4 [preauth]");
    expect([normal.match(...closed)?.rule.action, aggressive.match(...closed)?.rule.action]).toEqual(["ignore", "count"]);
    expect([normal.match(...line("Timeout for 203.0.113.9")), aggressive.match(...line("Timeout for 203.0.113.9"))?.rule.name]).toEqual([null, "other"]);
  });
});
