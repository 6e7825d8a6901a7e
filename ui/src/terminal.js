// An xterm.js terminal on an ssh presentation, over Syringe's terminal WebSocket (docs/API.md, "Terminal"):
// binary frames carry bytes both ways, text frames resize. Browsers cannot set headers on a WebSocket, so
// the token goes in its query, as the API documents (Syringe keeps no access log).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { token } from "./api.js";
import { h } from "./util.js";

// api/deps.py: TERMINAL_PROTOCOL and BEARER_PROTOCOL_PREFIX.
const TERMINAL_PROTOCOL = "terminal.syringe.io";
const BEARER_PROTOCOL_PREFIX = "bearer.syringe.io.";

const encoder = new TextEncoder();

export class TerminalTab {
  constructor(terminalUrl, label) {
    this.terminalUrl = terminalUrl;
    this.label = label;
    this.socket = null;
    this.status = h("span", { class: "term-status", role: "status" }, "Connecting…");
    this.reconnectButton = h("button", { type: "button", hidden: true, onclick: () => this.connect() }, "Reconnect");
    const copy = h("button", { type: "button", onclick: () => this.copySelection() }, "Copy selection");
    const paste = h("button", { type: "button", onclick: () => this.pasteClipboard() }, "Paste");
    this.screen = h("div", { class: "term-screen" });
    this.element = h(
      "div",
      { class: "terminal" },
      h(
        "div",
        { class: "toolbar", role: "toolbar", "aria-label": `${label} terminal` },
        copy,
        paste,
        this.reconnectButton,
        this.status,
        h("span", { class: "hint" }, "Shift+Tab leaves the terminal"),
      ),
      this.screen,
    );
    this.term = new Terminal({
      cursorBlink: true,
      fontSize: 14,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
      theme: { background: "#0f172a", foreground: "#e2e8f0" },
      scrollback: 5000,
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    // Ctrl+Shift+C and Ctrl+Shift+V copy and paste, as in desktop terminals; Ctrl+C stays the interrupt.
    this.term.attachCustomKeyEventHandler((event) => {
      // Tab completes in the shell; Shift+Tab leaves the terminal, so the keyboard is never trapped in it.
      if (event.key === "Tab" && event.shiftKey && !event.ctrlKey && !event.altKey) return false;
      if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
      if (event.code === "KeyC") {
        this.copySelection();
        return false;
      }
      if (event.code === "KeyV") {
        this.pasteClipboard();
        return false;
      }
      return true;
    });
    this.term.onData((data) => this.sendBytes(data));
    this.term.onResize(({ cols, rows }) => {
      if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "resize", cols, rows }));
    });
    this.opened = false;
    this.resizeObserver = new ResizeObserver(() => this.refit());
  }

  // Called once the element is in the document and visible: xterm measures its cells then.
  show(focus = true) {
    if (!this.opened) {
      this.term.open(this.screen);
      this.term.textarea?.setAttribute("aria-label", `${this.label} terminal input`);
      this.opened = true;
      this.resizeObserver.observe(this.screen);
      this.refit();
      this.connect();
    } else {
      this.refit();
    }
    if (focus) this.term.focus();
  }

  refit() {
    if (this.opened && this.screen.offsetWidth > 0) this.fit.fit();
  }

  async connect() {
    this.socket?.close();
    this.reconnectButton.hidden = true;
    this.status.textContent = "Connecting…";
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const joiner = this.terminalUrl.includes("?") ? "&" : "?";
    const query = `cols=${this.term.cols}&rows=${this.term.rows}`;
    // The token goes as a subprotocol, not in the URL (which proxies log); the server answers with the
    // terminal protocol.
    const protocols = [TERMINAL_PROTOCOL, `${BEARER_PROTOCOL_PREFIX}${await token()}`];
    const socket = new WebSocket(`${scheme}//${location.host}${this.terminalUrl}${joiner}${query}`, protocols);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.status.textContent = "Connected";
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") this.term.write(new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      const why = event.reason ? `: ${event.reason}` : "";
      this.status.textContent = `Disconnected (${event.code}${why})`;
      this.reconnectButton.hidden = false;
      this.term.write(`\r\n\x1b[33m[disconnected${why}]\x1b[0m\r\n`);
    };
  }

  sendBytes(text) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(encoder.encode(text));
  }

  // A guide's snippet: typed into the shell as if the learner had.
  run(snippet) {
    const text = snippet.endsWith("\n") ? snippet : `${snippet}\n`;
    if (this.socket?.readyState === WebSocket.OPEN) this.sendBytes(text);
    else this.socket?.addEventListener("open", () => this.sendBytes(text), { once: true });
    this.term.focus();
  }

  async copySelection() {
    const selected = this.term.getSelection();
    if (selected) await navigator.clipboard?.writeText(selected).catch(() => {});
  }

  async pasteClipboard() {
    const text = await navigator.clipboard?.readText().catch(() => "");
    if (text) this.term.paste(text);
  }

  dispose() {
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.resizeObserver.disconnect();
    this.term.dispose();
  }
}
