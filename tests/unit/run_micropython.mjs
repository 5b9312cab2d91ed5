// Run a Python file under MicroPython's PyScript build in Node, with the page-side package.
// Usage: node run_micropython.mjs <micropython.mjs> <script.py> <dir>:<guest dir> ...
// Used by tests/unit/test_page_client_micropython.py. Exit code 1 on a Python error.
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const [runtime, script, ...mounts] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(runtime).href);
const mp = await loadMicroPython({ stdout: (line) => console.log(line), stderr: (line) => console.error(line) });
for (const mount of mounts) {
  const [host, guest] = mount.split(":");
  mp.FS.mkdirTree(guest);
  for (const name of fs.readdirSync(host)) {
    if (name.endsWith(".py")) mp.FS.writeFile(`${guest}/${name}`, fs.readFileSync(`${host}/${name}`));
  }
}
try {
  // The script defines `async def main()`; awaiting it here keeps the file plain Python.
  await mp.runPythonAsync(`${fs.readFileSync(script, "utf8")}\nawait main()\nprint("OK", sys.implementation.name)\n`);
} catch (error) {
  console.error(String(error));
  process.exit(1);
}
