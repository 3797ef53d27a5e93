"""Views of one plan value. Each returns a string; printing is the caller's business."""

from __future__ import annotations

from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown, render_markdown_comments
from reconciler.render.text import render_text

__all__ = ["render_json", "render_markdown", "render_markdown_comments", "render_text"]
