// Builds ui/src into api/ui_static, which `syringe serve` serves at / (the bundle is committed, so serving
// needs no Node.js). `node build.mjs --check` builds into a temporary directory and fails when the result
// differs from the committed bundle: the source and the bundle cannot drift.
import { build } from "esbuild";
import { mkdtempSync, readdirSync, readFileSync, rmSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const committed = join(here, "..", "api", "ui_static");
const checking = process.argv.includes("--check");
const outdir = checking ? mkdtempSync(join(tmpdir(), "syringe-ui-")) : committed;

if (!checking) {
  // Stale chunks from an earlier build would be served (and committed) otherwise.
  for (const name of readdirSync(committed, { withFileTypes: true }).filter((e) => e.isFile())) {
    if (name.name !== "__init__.py") rmSync(join(committed, name.name));
  }
}
mkdirSync(outdir, { recursive: true });

await build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  splitting: true, // the lesson view (and xterm.js) loads only when a lesson opens: the catalog paints first
  format: "esm",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  minify: true,
  legalComments: "linked",
  outdir,
  entryNames: "[name]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".woff2": "file" },
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(outdir, "index.html"));

if (checking) {
  const names = (dir) => readdirSync(dir).filter((n) => n !== "__init__.py" && n !== "__pycache__").sort();
  const built = names(outdir);
  const have = names(committed);
  const differ = [...new Set([...built, ...have])].filter(
    (n) => !built.includes(n) || !have.includes(n) || !readFileSync(join(outdir, n)).equals(readFileSync(join(committed, n))),
  );
  rmSync(outdir, { recursive: true });
  if (differ.length) {
    console.error(`api/ui_static differs from a build of ui/src: ${differ.join(", ")}; run: cd ui && npm run build`);
    process.exit(1);
  }
  console.log("api/ui_static matches ui/src");
}
