/**
 * `tcp.ts serve PORT`: answer every connection (IPv4 and IPv6) with "hello".
 * `tcp.ts probe HOST PORT LOCAL_ADDRESS TIMEOUT_MS`: print "open" when the service answers
 * (or accepts: an SSH server speaks first, but a connect is enough) from that source address
 * in time, "blocked" otherwise (dropped packets simply time out).
 */
import net from "node:net";

const [mode, a, b, c, d] = process.argv.slice(2);
if (mode === "serve") {
  net.createServer((s) => s.end("hello\n")).listen(Number(a), "::", () => console.log("listening"));
} else if (mode === "probe") {
  const socket = net.connect({ host: a, port: Number(b), localAddress: c });
  const done = (result: string) => {
    console.log(result);
    socket.destroy();
    process.exit(0);
  };
  socket.on("connect", () => done("open"));
  socket.on("error", () => done("blocked"));
  setTimeout(() => done("blocked"), Number(d));
}
