// The REST API of docs/API.md. The session token lives in sessionStorage (this tab only, gone with it) and
// travels in the Authorization header; it is never put in the page's own URL.
import { createParser } from "eventsource-parser";

const TOKEN_KEY = "syringe.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function newSession() {
  const response = await fetch("/api/v1/sessions", { method: "POST" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const { token } = await response.json();
  sessionStorage.setItem(TOKEN_KEY, token);
  return token;
}

export async function token() {
  return sessionStorage.getItem(TOKEN_KEY) || newSession();
}

async function send(method, path, body, contentType, signal, retried = false) {
  const headers = { Authorization: `Bearer ${await token()}` };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : contentType ? body : JSON.stringify(body),
    signal,
  });
  if (response.status === 401 && !retried) {
    // The session expired (or the server restarted): a new one, once.
    sessionStorage.removeItem(TOKEN_KEY);
    return send(method, path, body, contentType, signal, true);
  }
  return response;
}

export async function call(method, path, body) {
  const response = await send(method, path, body);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export async function get(path) {
  const response = await fetch(path);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export async function rpc(path, xml) {
  const response = await send("POST", path, xml, "application/xml");
  const text = await response.text();
  if (!response.ok) {
    let problem = null;
    try {
      problem = JSON.parse(text);
    } catch {
      problem = { detail: text };
    }
    throw new ApiError(response.status, problem);
  }
  return text;
}

// Follows a live lesson's Server-Sent Events with fetch (EventSource cannot send the Authorization header),
// reconnecting after a dropped stream until `stop()` or a `deleted` event.
export function follow(livelessonId, onStatus, onDeleted, onTrouble) {
  const controller = new AbortController();
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const response = await send("GET", `/api/v1/livelessons/${livelessonId}/events`, undefined, undefined, controller.signal);
        if (response.status === 404) {
          onDeleted();
          return;
        }
        if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
        onTrouble(null);
        let deleted = false;
        const parser = createParser({
          onEvent(event) {
            if (event.event === "status") onStatus(JSON.parse(event.data));
            else if (event.event === "deleted") deleted = true;
          },
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
        if (deleted) {
          onDeleted();
          return;
        }
      } catch (error) {
        if (stopped) return;
        onTrouble(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  run();
  return () => {
    stopped = true;
    controller.abort();
  };
}
