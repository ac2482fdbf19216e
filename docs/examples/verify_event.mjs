// Verify a Nightwatch Edge event (or alert) JSON with the site's HMAC key, without Python.
//
//   node verify_event.mjs EVENT.json KEYFILE [IMAGE_DIR]
//
// The signature is HMAC-SHA256 over the RFC 8785 canonical JSON of the document without its
// "signature" field: keys sorted, no whitespace, numbers as JavaScript writes them. For the
// documents we publish (plain keys, numbers within +-2^53) that is JSON.stringify with sorted keys.
// The key is the key file's bytes with leading and trailing whitespace removed.
// With IMAGE_DIR, every image listed under "images" is also checked against its sha256.
// Exit status: 0 valid, 1 invalid (signature or an image), 2 unsigned, 3 usage or read error.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort(); // UTF-16 code unit order, as RFC 8785 says
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

function main(argv) {
  if (argv.length < 2) {
    console.error("usage: node verify_event.mjs EVENT.json KEYFILE [IMAGE_DIR]");
    return 3;
  }
  let doc, key;
  try {
    doc = JSON.parse(readFileSync(argv[0], "utf8"));
    key = Buffer.from(readFileSync(argv[1], "latin1").replace(/^[ \t\r\n\v\f]+|[ \t\r\n\v\f]+$/g, ""), "latin1");
  } catch (e) {
    console.error(`cannot read: ${e.message}`);
    return 3;
  }
  const sig = doc.signature;
  if (sig === undefined) { console.log("unsigned"); return 2; }
  const unsigned = { ...doc };
  delete unsigned.signature;
  const expected = createHmac("sha256", key).update(Buffer.from(canonical(unsigned), "utf8")).digest();
  const given = Buffer.from(typeof sig?.value === "string" ? sig.value : "", "hex");
  const ok = sig?.alg === "hmac-sha256" && given.length === expected.length && timingSafeEqual(given, expected);
  let bad = ok ? 0 : 1;
  console.log(`signature ${ok ? "valid" : "INVALID"}`);
  if (argv[2] && doc.images) {
    for (const [name, meta] of Object.entries(doc.images)) {
      let digest;
      try { digest = createHash("sha256").update(readFileSync(join(argv[2], name))).digest("hex"); }
      catch (e) { console.log(`${name}: missing`); bad = 1; continue; }
      const match = digest === meta.sha256;
      console.log(`${name}: sha256 ${match ? "ok" : "MISMATCH"}`);
      if (!match) bad = 1;
    }
  }
  return bad;
}

process.exit(main(process.argv.slice(2)));
