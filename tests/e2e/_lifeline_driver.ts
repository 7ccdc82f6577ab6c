/**
 * Starts a server with the tests' helper, prints its pid and waits to be killed
 * (serve_lifeline_test.ts).
 */
import { startPosternProcess } from "../_support/postern.ts";

const postern = await startPosternProcess({ clientAuth: "none" });
console.log(JSON.stringify({ pid: postern.pid, dir: postern.dir }));
setInterval(() => {}, 1000);
