// Bundle agents_page.mjs (the Agents SDK, the openai SDK, zod) into one browser script.
// Usage: node bundle.mjs <outfile>. esbuild's JS API, so it works whether or not npm ran
// esbuild's install script (which swaps bin/esbuild for the platform's binary).
import { build } from "esbuild";

await build({
  entryPoints: [new URL("agents_page.mjs", import.meta.url).pathname],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  logLevel: "warning",
  outfile: process.argv[2],
});
