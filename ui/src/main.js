// Routes by the URL's fragment: #/ is the catalog, #/lesson/<slug> a live lesson of that lesson. The lesson
// view (with xterm.js) is a chunk of its own, loaded when a lesson opens, so the catalog paints first.
import { showCatalog } from "./catalog.js";
import { get } from "./api.js";
import "@xterm/xterm/css/xterm.css"; // here, not in the lesson chunk: only the entry point's CSS is linked
import "./style.css";

let leaveCurrent = () => {};

async function route() {
  leaveCurrent();
  leaveCurrent = () => {};
  const match = /^#\/lesson\/([a-z0-9-]+)$/.exec(location.hash);
  if (match) {
    const { showLesson } = await import("./lesson.js");
    leaveCurrent = await showLesson(match[1]);
  } else {
    leaveCurrent = await showCatalog();
  }
  document.getElementById("main").focus({ preventScroll: true });
}

get("/api/v1/curriculum")
  .then((curriculum) => {
    document.getElementById("curriculum-name").textContent = curriculum.name;
  })
  .catch(() => {});
window.addEventListener("hashchange", route);
route();
