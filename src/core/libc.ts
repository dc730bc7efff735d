/** The few libc calls Bun has no API for (flock, fcntl on pipes, dup2, errno), opened once, on first use. */
import { dlopen, FFIType } from "bun:ffi";

function open() {
  return dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  }).symbols;
}

let symbols: ReturnType<typeof open> | null = null;

export function libc(): ReturnType<typeof open> {
  symbols ??= open();
  return symbols;
}
