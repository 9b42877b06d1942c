// Runs one of the hub's platform-storage pages' inline script against a
// fake LMS frame that implements the LTI Client Side postMessage protocol
// (lti.put_data / lti.get_data), and prints what happened as JSON.
//
// usage: node platform-storage-harness.js <script-file> <platform-origin> <stored-value>
const fs = require("fs");
const vm = require("vm");
const [script, platformOrigin, storedValue] = process.argv.slice(2);
const events = [];
const listeners = [];
const form = {
  elements: { lti_storage_secret: { value: "" } },
  submit() { events.push({ submitted: form.elements.lti_storage_secret.value }); },
};
const slow = { hidden: true };
const lms = {
  frames: {},
  postMessage(message, targetOrigin) {
    events.push({ sent: message, targetOrigin });
    const reply = { subject: message.subject + ".response", message_id: message.message_id, key: message.key };
    if (message.subject === "lti.get_data") reply.value = storedValue;
    setImmediate(() => listeners.forEach((l) => l({ origin: platformOrigin, data: reply })));
  },
};
const window = {
  parent: lms,
  location: { replace(url) { events.push({ navigated: url }); } },
  addEventListener(type, l) { if (type === "message") listeners.push(l); },
};
const document = {
  forms: [form],
  getElementById(id) { return id === "slow" ? slow : null; },
};
vm.runInNewContext(fs.readFileSync(script, "utf8"), { window, document, setTimeout, Math });
setTimeout(() => { events.push({ slowShown: !slow.hidden }); console.log(JSON.stringify(events)); process.exit(0); }, 200);
