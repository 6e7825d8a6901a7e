// A small NETCONF console: send an RPC through Syringe (docs/API.md, "NETCONF"), see the reply indented.
import { rpc } from "./api.js";
import { h } from "./util.js";

const EXAMPLES = {
  "get-config (running)":
    '<get-config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n  <source><running/></source>\n</get-config>',
  get: '<get xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>',
};

export function formatXml(text) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (doc.getElementsByTagName("parsererror").length) return text;
  const lines = [];
  const walk = (node, depth) => {
    const pad = "  ".repeat(depth);
    if (node.nodeType === Node.TEXT_NODE) {
      const value = node.nodeValue.trim();
      if (value) lines.push(pad + value);
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const attrs = [...node.attributes].map((a) => ` ${a.name}="${a.value}"`).join("");
    const children = [...node.childNodes].filter((c) => c.nodeType === Node.ELEMENT_NODE || c.nodeValue?.trim());
    if (!children.length) lines.push(`${pad}<${node.nodeName}${attrs}/>`);
    else if (children.length === 1 && children[0].nodeType === Node.TEXT_NODE)
      lines.push(`${pad}<${node.nodeName}${attrs}>${children[0].nodeValue.trim()}</${node.nodeName}>`);
    else {
      lines.push(`${pad}<${node.nodeName}${attrs}>`);
      for (const child of children) walk(child, depth + 1);
      lines.push(`${pad}</${node.nodeName}>`);
    }
  };
  walk(doc.documentElement, 0);
  return lines.join("\n");
}

export function netconfConsole(rpcUrl, label, key) {
  const input = h("textarea", { id: `rpc-${key}`, rows: 6, value: Object.values(EXAMPLES)[0] });
  const examples = h(
    "select",
    { id: `rpc-example-${key}`, onchange: () => (input.value = EXAMPLES[examples.value]) },
    Object.keys(EXAMPLES).map((name) => h("option", { value: name }, name)),
  );
  const reply = h("pre", { class: "reply", tabindex: 0, "aria-label": `${label} reply` });
  const status = h("p", { class: "muted", role: "status" });
  const send = h("button", { type: "submit", class: "primary" }, "Send RPC");
  const form = h(
    "form",
    {
      class: "netconf",
      onsubmit: async (event) => {
        event.preventDefault();
        send.disabled = true;
        status.textContent = "Waiting for the reply…";
        try {
          reply.textContent = formatXml(await rpc(rpcUrl, input.value));
          status.textContent = "Reply received";
        } catch (error) {
          reply.textContent = "";
          status.textContent = `The RPC failed: ${error.message}`;
        } finally {
          send.disabled = false;
        }
      },
    },
    h("label", { for: `rpc-example-${key}` }, "Example"),
    examples,
    h("label", { for: `rpc-${key}` }, "RPC (an operation, or a whole <rpc>)"),
    input,
    h("div", {}, send),
    status,
    reply,
  );
  return form;
}
