// The catalog: lessons grouped by category and collection, searchable by name and tag. Each lesson shows
// its prerequisites, endpoints and stage count, and says before anyone clicks when it cannot run here.
import { get } from "./api.js";
import { h, setMain } from "./util.js";

const CATEGORY_NAMES = {
  fundamentals: "Fundamentals",
  tools: "Tools",
  workflows: "Workflows",
};

function lessonCard(lesson, names, runnable) {
  const cannot = runnable && !runnable.runnable;
  const prereqs = lesson.prereqs.length
    ? h("dd", {}, lesson.prereqs.map((slug, i) => [i ? ", " : "", h("a", { href: `#/lesson/${slug}` }, names[slug] || slug)]))
    : h("dd", {}, "none");
  return h(
    "li",
    { class: "card", dataset: { slug: lesson.slug } },
    h("h4", {}, lesson.name),
    h("p", { class: "muted" }, lesson.shortDescription || lesson.description.split("\n")[0]),
    lesson.tags.length ? h("ul", { class: "tags", "aria-label": "Tags" }, lesson.tags.map((t) => h("li", {}, t))) : null,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Prerequisites"),
      prereqs,
      h("dt", {}, "Endpoints"),
      h("dd", {}, lesson.endpoints.map((e) => `${e.name} (${e.image})`).join(", ")),
      h("dt", {}, "Stages"),
      h("dd", {}, String(lesson.stageCount)),
    ),
    cannot
      ? h("p", { class: "cannot", role: "note" }, h("strong", {}, "Cannot run here: "), runnable.reasons.join("; "))
      : h("a", { class: "button primary", href: `#/lesson/${lesson.slug}`, "aria-label": `Launch ${lesson.name}` }, "Launch"),
  );
}

export async function showCatalog() {
  let lessons, collections, runtime;
  try {
    const summaries = await get("/api/v1/lessons");
    [lessons, collections, runtime] = await Promise.all([
      Promise.all(summaries.map((s) => get(`/api/v1/lessons/${s.slug}`))),
      get("/api/v1/collections"),
      get("/api/v1/runtime"),
    ]);
  } catch (error) {
    setMain("Lessons", h("h1", {}, "Lessons"), h("p", { role: "alert", class: "error" }, `The catalog could not be read: ${error.message}`));
    return () => {};
  }
  const names = Object.fromEntries(lessons.map((l) => [l.slug, l.name]));
  const collectionTitles = Object.fromEntries(collections.map((c) => [c.slug, c.title]));
  const runnable = Object.fromEntries(runtime.lessons.map((r) => [r.slug, r]));
  const search = h("input", {
    type: "search",
    id: "lesson-search",
    placeholder: "Name or tag",
    autocomplete: "off",
  });
  const count = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const groups = h("div", { class: "groups" });

  const render = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = lessons.filter((lesson) => {
      const haystack = [lesson.name, lesson.slug, ...lesson.tags].join(" ").toLowerCase();
      return words.every((w) => haystack.includes(w));
    });
    const byCategory = new Map();
    for (const lesson of shown) {
      const category = byCategory.get(lesson.category) || new Map();
      const collection = lesson.collection || "";
      category.set(collection, [...(category.get(collection) || []), lesson]);
      byCategory.set(lesson.category, category);
    }
    groups.replaceChildren(
      ...[...byCategory.keys()].sort().map((category) =>
        h(
          "section",
          { class: "category", "aria-labelledby": `cat-${category}` },
          h("h2", { id: `cat-${category}` }, CATEGORY_NAMES[category] || category),
          [...byCategory.get(category).entries()]
            .sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)))
            .map(([collection, members]) => [
              h("h3", {}, collection ? `Collection: ${collectionTitles[collection] || collection}` : "Not in a collection"),
              h("ul", { class: "cards" }, members.map((l) => lessonCard(l, names, runnable[l.slug]))),
            ]),
        ),
      ),
    );
    count.textContent = `${shown.length} of ${lessons.length} lessons`;
  };
  search.addEventListener("input", render);
  render();
  const notice = runtime.available
    ? null
    : h("p", { class: "error", role: "note" }, `Live lessons cannot run on this server: ${runtime.problem}`);
  setMain(
    "Lessons",
    h("h1", {}, "Lessons"),
    notice,
    h("div", { class: "search" }, h("label", { for: "lesson-search" }, "Search lessons"), search),
    count,
    groups,
  );
  return () => {};
}
