"""The text a person sees on an HTML page, and what the page would load from elsewhere."""

from __future__ import annotations

from html.parser import HTMLParser

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"style", "title", "script", "head"})
# Elements that load something: a self-contained page has none of them.
_LOADING = frozenset({"script", "img", "iframe", "link", "source", "object", "embed"})


class PageText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.loads: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        values = dict(attrs)
        if tag in _LOADING or "src" in values:
            self.loads.append(f"{tag} {values}")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.text.append(" ".join(data.split()))


def read_page(page: str) -> PageText:
    parser = PageText()
    parser.feed(page)
    return parser


def visible_text(page: str) -> str:
    """The page's text nodes outside head, style and script, joined by single spaces."""
    return " ".join(read_page(page).text)
