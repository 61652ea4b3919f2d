// Serves rasa-webchat from the app's own origin: copies the package's standalone build
// (it carries its own React 16, so it never meets the app's React 19) into public/vendor/.
// The build's CSS imports a Google Fonts stylesheet; that outbound request is stripped so
// the widget loads nothing from another host.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const appDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = require.resolve("rasa-webchat/lib/index.js");
const { version } = require("rasa-webchat/package.json");
const target = join(appDir, "public", "vendor", "rasa-webchat.js");

const fontImport = /@import url\(https:\/\/fonts\.googleapis\.com\/[^)]*\);/g;
const original = readFileSync(source, "utf8");
const stripped = original.replace(fontImport, "");
const leftover = stripped.match(/https?:\/\/fonts\.(googleapis|gstatic)\.com[^"')\s]*/);
if (leftover) {
  console.error(`vendor-webchat: rasa-webchat ${version} still references ${leftover[0]}; update the pattern`);
  process.exit(1);
}
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, `/* rasa-webchat ${version} (Apache-2.0), standalone build, external font import removed */\n${stripped}`);
console.log(`vendor-webchat: public/vendor/rasa-webchat.js from rasa-webchat ${version}`);
