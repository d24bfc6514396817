"""XML documents: parsed through defusedxml (a document is input, not code), and edited in place.

Readings are written back by splicing the file's bytes: the elements that receive text are
located by a second pass of expat over the bytes defusedxml has already accepted, and only those
byte ranges change. Everything else (declaration, namespace prefixes, attribute order and
quoting, whitespace, comments) stays byte for byte as it was, which re-serialising a parsed tree
would not keep.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from text_recognizer.data.documents.record import DocumentError

START_TAG = re.compile(rb"<[^\"'>]*(?:(?:\"[^\"]*\"|'[^']*')[^\"'>]*)*>")
ATTRIBUTE = re.compile(rb"\s+([^\s=/>]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def parse(path: Path) -> tuple[bytes, Element]:
    """The file's bytes and its parsed root. Entity declarations (the billion-laughs payload),
    external references and malformed XML are refused naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(path, "no such file") from None
    except OSError as error:
        raise DocumentError(path, f"cannot be read ({error.strerror})") from None
    try:
        return data, fromstring(data)
    except EntitiesForbidden as error:
        raise DocumentError(
            path, f"refused: it declares the entity {error.name!r}; documents may not define any"
        ) from None
    except ExternalReferenceForbidden as error:
        raise DocumentError(path, f"refused: it refers to an external resource ({error})") from None
    except (DefusedXmlException, ParseError) as error:
        raise DocumentError(path, f"not well-formed XML ({error})") from None


def split_tag(tag: str) -> tuple[str, str]:
    """`{namespace}Local` -> (namespace, Local); ("", tag) without a namespace."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def qualifier(namespace: str) -> Callable[[str], str]:
    """`Local` -> `{namespace}Local`, as ElementTree names elements."""
    return lambda local: f"{{{namespace}}}{local}"


@dataclass
class Span:
    """Where an element lies in the file's bytes."""

    name: str
    """As written, with its prefix (`pc:TextLine`)."""
    attributes: dict[str, str]
    start: int
    open_end: int
    """Just after the start tag's `>`."""
    close_start: int
    """Where the end tag begins (`open_end` for an empty element)."""
    end: int
    children: list[Span] = field(default_factory=list)

    @property
    def local(self) -> str:
        return self.name.rpartition(":")[2]

    @property
    def prefix(self) -> str:
        """`pc:` for `pc:TextLine`, "" without a prefix."""
        return self.name[: len(self.name) - len(self.local)]

    def named(self, local: str) -> list[Span]:
        return [child for child in self.children if child.local == local]

    def walk(self) -> Iterator[Span]:
        yield self
        for child in self.children:
            yield from child.walk()


def spans(data: bytes) -> Span:
    """The element tree of `data` as byte spans (call only on bytes `parse` accepted)."""
    parser = expat.ParserCreate()
    stack: list[Span] = []
    found: list[Span] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        at = parser.CurrentByteIndex
        tag = START_TAG.match(data, at)
        assert tag is not None, f"no start tag at byte {at}"
        span = Span(name, attributes, at, tag.end(), -1, -1)
        (stack[-1].children if stack else found).append(span)
        stack.append(span)

    def end(name: str) -> None:
        span = stack.pop()
        if data[span.open_end - 2 : span.open_end] == b"/>":
            span.close_start = span.end = span.open_end
        else:
            span.close_start = parser.CurrentByteIndex
            span.end = data.index(b">", span.close_start) + 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)
    return found[0]


Edit = tuple[int, int, bytes]
"""Replace bytes [start, end) with these."""


def splice(data: bytes, edits: list[Edit]) -> bytes:
    out, at = [], 0
    for start, end, replacement in sorted(edits):
        if start < at:
            raise ValueError(f"overlapping edits at byte {start}")
        out += [data[at:start], replacement]
        at = end
    return b"".join([*out, data[at:]])


def encoder(data: bytes, path: Path) -> Callable[[str], bytes]:
    """Encodes inserted text as the file is encoded; characters the encoding cannot hold become
    character references. Only ASCII-compatible encodings can be spliced (UTF-16 cannot)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentError(path, "is UTF-16; readings are written back into UTF-8 files")
    declared = DECLARED_ENCODING.match(data.removeprefix(codecs.BOM_UTF8))
    name = declared.group(1).decode() if declared else "utf-8"
    try:
        codecs.lookup(name)
        ascii_compatible = '<a b="&">'.encode(name) == b'<a b="&">'
    except (LookupError, UnicodeError):
        ascii_compatible = False
    if not ascii_compatible:
        raise DocumentError(path, f"is encoded in {name}; readings are written back into UTF-8")
    return lambda text: text.encode(name, errors="xmlcharrefreplace")


def text_content(text: str) -> str:
    return escape(text)


def attribute_value(text: str) -> str:
    """Escaped for a double-quoted attribute. Newlines and tabs become character references,
    since a parser turns them, written as they are, into spaces."""
    return escape(text, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def element(prefix: str, name: str, attributes: dict[str, bytes], content: bytes | None) -> bytes:
    """A new element (attribute values already escaped and encoded; `content` None: empty)."""
    tag = (prefix + name).encode()
    pairs = b"".join(b" " + k.encode() + b'="' + v + b'"' for k, v in attributes.items())
    return b"<" + tag + pairs + (b"/>" if content is None else b">" + content + b"</" + tag + b">")


def with_attribute(tag: bytes, name: str, value: bytes) -> bytes:
    """A start tag with attribute `name` set to `value` (already escaped and encoded): replaced
    in place if present, else added after the last attribute."""
    for match in ATTRIBUTE.finditer(tag):
        if match.group(1) == name.encode():
            return tag[: match.start(2)] + b'"' + value + b'"' + tag[match.end(2) :]
    close = 2 if tag.endswith(b"/>") else 1
    body = tag[:-close].rstrip()
    return body + b" " + name.encode() + b'="' + value + b'"' + tag[len(body) :]


def own_line(data: bytes, offset: int) -> bytes:
    """The newline and indentation that put the element at `offset` on its own line, or b""
    when it shares its line with something before it: what a new sibling is preceded by."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    prefix = data[line_start:offset]
    return b"\n" + prefix if line_start and not prefix.strip() else b""


def rewrite(
    data: bytes, span: Span, attributes: dict[str, bytes], content: bytes | None
) -> list[Edit]:
    """Edits that set `attributes` (escaped, encoded) on the element at `span` and, unless
    `content` is None, replace what is between its tags (an empty element gets an end tag)."""
    tag = data[span.start : span.open_end]
    for name, value in attributes.items():
        tag = with_attribute(tag, name, value)
    if content is None:
        return [(span.start, span.open_end, tag)]
    if span.open_end == span.end:
        opened = tag[:-2].rstrip() + b">"
        return [(span.start, span.end, opened + content + b"</" + span.name.encode() + b">")]
    return [(span.start, span.open_end, tag), (span.open_end, span.close_start, content)]
