"""Stage guides rendered to HTML: markdown directly, Jupyter notebooks cell by cell."""

from __future__ import annotations

import html
import json
from typing import Any

import nh3
from markdown_it import MarkdownIt

from syringe.errors import GuideError

# Guides come from the curriculum, which operators review like code; authors may embed HTML, as
# Antidote's guides did (buttons that run a snippet in a terminal). An operator who does not review every
# pull request turns on sanitize_guides, and sanitize_html takes the scripts out.
_markdown = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")

# ammonia's defaults (nh3.ALLOWED_TAGS and ALLOWED_ATTRIBUTES: no script, style, iframe, form or on*
# handler), plus class on every element, which the renderer itself writes (language-python, cell code).
_SANITIZED_ATTRIBUTES = {**nh3.ALLOWED_ATTRIBUTES, "*": {*nh3.ALLOWED_ATTRIBUTES.get("*", set()), "class"}}
_SANITIZED_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> str:
    rendered: str = _markdown.render(text)
    return rendered


def _joined(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def render_notebook(text: str) -> str:
    try:
        notebook = json.loads(text)
        cells = notebook["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise GuideError(f"not a Jupyter notebook: {exc}") from exc
    parts = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            parts.append(f'<div class="cell markdown">{render_markdown(source)}</div>')
        elif cell.get("cell_type") == "code":
            outputs = []
            for output in cell.get("outputs") or []:
                text_out = _joined(output.get("text") or (output.get("data") or {}).get("text/plain"))
                if text_out:
                    outputs.append(f'<pre class="output">{html.escape(text_out)}</pre>')
            parts.append(
                '<div class="cell code"><pre><code class="language-python">'
                f"{html.escape(source)}</code></pre>{''.join(outputs)}</div>"
            )
    return "\n".join(parts)


def sanitize_html(rendered: str) -> str:
    """``rendered`` without anything that runs in the learner's browser: scripts, event handlers, styles,
    frames, forms, and links other than http(s), mailto and relative ones."""
    return nh3.clean(rendered, attributes=_SANITIZED_ATTRIBUTES, url_schemes=_SANITIZED_SCHEMES)


def render_guide(text: str, guide_type: str, sanitize: bool = False) -> str:
    rendered = render_notebook(text) if guide_type == "jupyter" else render_markdown(text)
    return sanitize_html(rendered) if sanitize else rendered
