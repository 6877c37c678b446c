"""Reading the forms of an HTML page the way a browser would submit them (no JavaScript)."""

from __future__ import annotations

from html.parser import HTMLParser


class Forms(HTMLParser):
    """Collects forms: id -> (action, {name: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = values["id"]
            self.forms[self._current] = (values["action"], {})
        elif tag == "input" and self._current is not None:
            self.forms[self._current][1][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_of(html: str) -> dict[str, tuple[str, dict[str, str]]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms
