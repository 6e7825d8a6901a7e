// The lesson's topology, drawn from /api/v1/lessons/{slug}/topology: endpoints on a circle, each connection
// with both sides' interface names and addresses, and each endpoint's state from the event stream.
// Activating an endpoint (click, Enter or Space) opens its first presentation's tab.
import { h, svg } from "./util.js";

const WIDTH = 720;
const NODE_W = 150;
const NODE_H = 62;

// One or two endpoints sit on a line, in a short drawing; more go round an ellipse.
const heightFor = (count) => (count <= 2 ? 150 : 400);

function positions(count) {
  const HEIGHT = heightFor(count);
  if (count === 1) return [[WIDTH / 2, HEIGHT / 2]];
  if (count === 2) return [[WIDTH * 0.2, HEIGHT / 2], [WIDTH * 0.8, HEIGHT / 2]];
  const rx = WIDTH / 2 - NODE_W / 2 - 20;
  const ry = HEIGHT / 2 - NODE_H / 2 - 20;
  return Array.from({ length: count }, (_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / count;
    return [WIDTH / 2 + rx * Math.cos(angle), HEIGHT / 2 + ry * Math.sin(angle)];
  });
}

export function stateOf(endpoint, status) {
  if (!endpoint) return { key: "unknown", text: "unknown" };
  if (status === "ERROR" && !endpoint.healthy) return { key: "error", text: endpoint.reason ? "failed" : endpoint.phase };
  if (endpoint.healthy) return { key: "ok", text: "reachable" };
  if (endpoint.phase === "running") return { key: "wait", text: "starting services" };
  return { key: "wait", text: endpoint.phase.startsWith("pending") ? "booting" : endpoint.phase };
}

const plural = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function label(x, y, lines, anchor = "middle") {
  return svg(
    "text",
    { x, y, "text-anchor": anchor, class: "link-label" },
    lines.map((line, i) => svg("tspan", { x, dy: i ? "1.2em" : 0 }, line)),
  );
}

export function topologyDiagram(topology, onOpen) {
  const placed = positions(topology.endpoints.length);
  const places = Object.fromEntries(topology.endpoints.map((e, i) => [e.name, placed[i]]));
  const links = topology.links.map((link) => {
    const [ax, ay] = places[link.a.endpoint];
    const [bx, by] = places[link.b.endpoint];
    const at = (t) => [ax + (bx - ax) * t, ay + (by - ay) * t];
    // Labels sit a little off the line, past the node's edge on each side.
    const along = Math.min(0.42, (NODE_W * 0.5 + 60) / Math.hypot(bx - ax, by - ay));
    const [lax, lay] = at(along);
    const [lbx, lby] = at(1 - along);
    const [mx, my] = at(0.5);
    return svg(
      "g",
      { class: "link" },
      svg("line", { x1: ax, y1: ay, x2: bx, y2: by }),
      label(lax, lay - 26, [link.a.interface, link.a.address]),
      label(lbx, lby - 26, [link.b.interface, link.b.address]),
      label(mx, my + 22, [link.subnet]),
    );
  });
  const stateTexts = {};
  const nodes = topology.endpoints.map((endpoint) => {
    const [x, y] = places[endpoint.name];
    const stateText = svg("text", { x, y: y + 22, "text-anchor": "middle", class: "node-state" }, "…");
    stateTexts[endpoint.name] = stateText;
    const open = () => onOpen(endpoint.name);
    // Named by what it shows (name, image, state: WCAG 2.5.3, label in name); the caption says what it does.
    return svg(
      "g",
      {
        class: "node state-unknown",
        tabindex: 0,
        role: "button",
        "data-endpoint": endpoint.name,
        onclick: open,
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            open();
          }
        },
      },
      svg("rect", { x: x - NODE_W / 2, y: y - NODE_H / 2, width: NODE_W, height: NODE_H, rx: 8 }),
      svg("text", { x, y: y - 8, "text-anchor": "middle", class: "node-name" }, endpoint.name),
      svg("text", { x, y: y + 8, "text-anchor": "middle", class: "node-image" }, endpoint.image),
      stateText,
    );
  });
  const drawing = svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${heightFor(topology.endpoints.length)}`,
      class: "topology",
      role: "group",
      "aria-label": "Topology diagram",
    },
    links,
    nodes,
  );
  const element = h(
    "figure",
    { class: "diagram" },
    drawing,
    h("figcaption", { class: "muted" }, `${plural(topology.endpoints.length, "endpoint")}, ${plural(topology.links.length, "link")}. Select an endpoint to open it.`),
  );
  const update = (view) => {
    for (const node of nodes) {
      const name = node.dataset.endpoint;
      const state = stateOf(view.endpoints.find((e) => e.name === name), view.status);
      node.setAttribute("class", `node state-${state.key}`);
      stateTexts[name].textContent = state.text;
    }
  };
  return { element, update };
}
