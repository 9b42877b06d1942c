// Runs one of the hub's LTI pages' inline script against a fake LMS frame
// that implements the LTI Client Side postMessage protocol (lti.put_data /
// lti.get_data), and prints what happened as JSON: each event carries the
// milliseconds since the script started ("at").
//
// usage: node platform-storage-harness.js <script-file> <platform-origin> <stored-value> [options-json]
//
// options: {"tab": true}  the page runs in a tab the LMS opened, not in its
//                         frame: window.parent is the page itself and the
//                         LMS is window.opener
//          {"probe": 204} the status the hub answers the page's fetch with
//          {"wait": ms}   how long to watch a page that neither navigates
//                         nor submits (default 200)
const fs = require("fs");
const vm = require("vm");
const [script, platformOrigin, storedValue, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || "{}") || {};
const start = Date.now();
const events = [];
const listeners = [];
function record(e) { e.at = Date.now() - start; events.push(e); }
function finish() {
  events.push({ slowShown: !elements.slow.hidden, shown: Object.keys(elements).filter((id) => !elements[id].hidden) });
  console.log(JSON.stringify(events));
  process.exit(0);
}
// A page that navigates or submits is done: report once its script settles.
function done() { setImmediate(finish); }
const form = {
  elements: { lti_storage_secret: { value: "" } },
  submit() { record({ submitted: form.elements.lti_storage_secret.value }); done(); },
};
const elements = { slow: { hidden: true }, window: { hidden: true } };
const lms = {
  frames: {},
  postMessage(message, targetOrigin) {
    record({ sent: message, targetOrigin });
    const reply = { subject: message.subject + ".response", message_id: message.message_id, key: message.key };
    if (message.subject === "lti.get_data") reply.value = storedValue;
    setImmediate(() => listeners.forEach((l) => l({ origin: platformOrigin, data: reply })));
  },
};
const window = {
  location: { replace(url) { record({ navigated: url }); done(); } },
  addEventListener(type, l) { if (type === "message") listeners.push(l); },
};
if (options.tab) {
  // The page's own window: a message to it with the platform's origin as
  // target is dropped, as a browser drops it.
  window.parent = window;
  window.opener = lms;
  window.frames = {};
  window.postMessage = (message, targetOrigin) => record({ sentToSelf: message, targetOrigin });
} else {
  window.parent = lms;
  window.opener = null;
}
const document = {
  forms: [form],
  getElementById(id) { return elements[id] || null; },
};
function fetch(url) {
  record({ fetched: url });
  const status = options.probe || 404;
  return Promise.resolve({ ok: status >= 200 && status < 300, status });
}
vm.runInNewContext(fs.readFileSync(script, "utf8"), { window, document, setTimeout, Math, fetch });
setTimeout(finish, options.wait || 200);
