import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../../src/core/duration";

describe("parseDuration", () => {
  test.each([
    ["90s", 90],
    ["10m", 600],
    ["1h", 3600],
    ["7d", 604800],
    ["2w", 1209600],
    ["0s", 0],
    ["0", 0],
    ["45", 45],
    ["3600", 3600],
    ["36h", 129600],
  ])("%p is %p seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  test("a bare number in a string means seconds", () => {
    expect(parseDuration("300")).toBe(parseDuration("300s")!);
  });

  test("surrounding whitespace and a space before the unit are allowed", () => {
    expect(parseDuration("  10m  ")).toBe(600);
    expect(parseDuration("10 m")).toBe(600);
  });

  test("a number is seconds", () => {
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(90)).toBe(90);
    expect(parseDuration(86400)).toBe(86400);
  });

  test.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])("rejects the number %p", (n) => {
    expect(parseDuration(n)).toBeNull();
  });

  test.each([
    "",
    " ",
    "s",
    "m",
    "-5",
    "-5m",
    "+5m",
    "1.5h",
    "1,5h",
    "1H",
    "10M",
    "1y",
    "1ms",
    "1hour",
    "1h30m",
    "1h 30m",
    "h1",
    "ten",
    "0x10",
    "1e3",
  ])("rejects %p", (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe("formatDuration", () => {
  test.each([
    [45, "45s"],
    [1, "1s"],
    [60, "1m"],
    [90, "1m 30s"],
    [3600, "1h"],
    [3660, "1h 1m"],
    [86400, "1d"],
    [86400 + 3 * 3600, "1d 3h"],
    [7 * 86400, "7d"],
    [14 * 86400, "14d"],
  ])("%p seconds is %p", (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  test("shows at most the two largest units", () => {
    expect(formatDuration(86400 + 3600 + 60 + 1)).toBe("1d 1h");
    expect(formatDuration(3600 + 60 + 1)).toBe("1h 1m");
  });

  test("zero and negative durations are 0s", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(-5)).toBe("0s");
  });

  test("fractions are rounded to whole seconds", () => {
    expect(formatDuration(89.6)).toBe("1m 30s");
    expect(formatDuration(44.4)).toBe("44s");
  });

  test("a positive duration below half a second is 0s, never empty", () => {
    expect(formatDuration(0.4)).toBe("0s");
  });

  test.each([45, 60, 600, 3600, 86400, 7 * 86400])("a single-unit result parses back: %p", (seconds) => {
    expect(parseDuration(formatDuration(seconds))).toBe(seconds);
  });
});
