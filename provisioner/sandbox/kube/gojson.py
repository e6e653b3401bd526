"""Go's words for a JSON body that does not parse, and for a value of the wrong type.

kube-apiserver answers a malformed body with the message of Go's encoding/json
scanner ("invalid character 'o' in literal null (expecting 'u')", "unexpected end of
JSON input"); Python's parser reports positions instead. ``syntax_error`` runs the
scanner's state machine (encoding/json/scanner.go) over the bytes to find the same
first error. ``type_name`` gives encoding/json's names of JSON value kinds.
"""

from __future__ import annotations

from typing import Any

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}


def _quote(c: int) -> str:
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    char = chr(c)
    if char.isprintable():
        return f"'{char}'"
    return f"'\\x{c:02x}'" if c < 0x80 else f"'{char}'"


class _Error(Exception):
    pass


def _fail(c: int, context: str) -> _Error:
    return _Error(f"invalid character {_quote(c)} {context}")


class _Scanner:
    """One pass over the bytes with Go's parse-state stack ("key", "value", "array")."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.stack: list[str] = []

    def peek(self) -> int | None:
        while self.pos < len(self.data) and self.data[self.pos] in _SPACE:
            self.pos += 1
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self) -> int:
        c = self.peek()
        if c is None:
            raise _Error("unexpected end of JSON input")
        self.pos += 1
        return c

    def value(self, c: int) -> None:
        if c == ord("{"):
            c = self.take()
            if c == ord("}"):
                return
            while True:
                if c != ord('"'):
                    raise _fail(c, "looking for beginning of object key string")
                self.string()
                c = self.take()
                if c != ord(":"):
                    raise _fail(c, "after object key")
                self.value(self.take())
                c = self.take()
                if c == ord("}"):
                    return
                if c != ord(","):
                    raise _fail(c, "after object key:value pair")
                c = self.take()
        elif c == ord("["):
            c = self.take()
            if c == ord("]"):
                return
            while True:
                self.value(c)
                c = self.take()
                if c == ord("]"):
                    return
                if c != ord(","):
                    raise _fail(c, "after array element")
                c = self.take()
        elif c == ord('"'):
            self.string()
        elif c == ord("-") or c in _DIGITS:
            self.number(c)
        elif c in _LITERALS:
            word = _LITERALS[c]
            for expected in word[1:]:
                got = self.raw()
                if got != expected:
                    raise _fail(got, f"in literal {word.decode()} (expecting '{chr(expected)}')")
        else:
            raise _fail(c, "looking for beginning of value")

    def raw(self) -> int:
        """The next byte, spaces included (inside numbers and literals). At the end Go's
        scanner is fed one space, so a cut number or literal fails on ' '."""
        if self.pos >= len(self.data):
            return ord(" ")
        self.pos += 1
        return self.data[self.pos - 1]

    def string(self) -> None:
        while True:
            if self.pos >= len(self.data):
                raise _Error("unexpected end of JSON input")
            c = self.raw()
            if c == ord('"'):
                return
            if c == ord("\\"):
                c = self.raw()
                if c == ord("u"):
                    for _ in range(4):
                        c = self.raw()
                        if c not in _HEX:
                            raise _fail(c, "in \\u hexadecimal character escape")
                elif c not in b'bfnrt\\/"':
                    raise _fail(c, "in string escape code")
            elif c < 0x20:
                raise _fail(c, "in string literal")

    def digits(self) -> int | None:
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1
        return self.data[self.pos] if self.pos < len(self.data) else None

    def number(self, c: int) -> None:
        if c == ord("-"):
            c = self.raw()
            if c not in _DIGITS:
                raise _fail(c, "in numeric literal")
        nxt = self.digits() if c != ord("0") else self.peek_raw()
        if nxt == ord("."):
            self.pos += 1
            c = self.raw()
            if c not in _DIGITS:
                raise _fail(c, "after decimal point in numeric literal")
            nxt = self.digits()
        if nxt in (ord("e"), ord("E")):
            self.pos += 1
            c = self.raw()
            if c in (ord("+"), ord("-")):
                c = self.raw()
            if c not in _DIGITS:
                raise _fail(c, "in exponent of numeric literal")
            self.digits()

    def peek_raw(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None


def syntax_error(data: bytes) -> str | None:
    """Go's message for the first syntax error in ``data``; None when it parses."""
    scanner = _Scanner(data)
    try:
        scanner.value(scanner.take())
        c = scanner.peek()
        if c is not None:
            raise _fail(c, "after top-level value")
    except _Error as exc:
        return str(exc)
    return None


def type_name(value: Any) -> str:
    """encoding/json's name for a JSON value's kind ("number 1.5" for numbers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
