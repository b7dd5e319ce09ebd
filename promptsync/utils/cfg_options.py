"""Override config keys, applied after everything else.

KEY is a dotted config key; a number part indexes a list (tta.losses.1.weight=0.5).
VALUE is read as follows.
A number when the whole value is one number: 1e-3, -5, 0.5, inf.
True/False (any case, also true/false) and None (also none).
A 'quoted string' (quotes make a string: lr='0.1' is the string 0.1).
A list [1, 2] or tuple (0.3, 1.0), each element read by these rules; (x) is a one-element tuple.
A comma outside brackets and quotes makes a list: a,b is ['a', 'b'] and 1,2 is [1, 2].
A dict in Python syntax, {'a': 1} or dict(type='X', a=1), nested and inside lists.
A bare word, also inside a list or dict, is a string: [a, b] and dict(type=X) need no quotes.
Anything else is kept as the string exactly as written, spaces included:
ViT-B-16, /data/my images, and also 1e-3 0 (which a key holding a number refuses).
A key holding a number refuses a string, a key holding True/False refuses all but True/False/None.
Quote for the shell every item with spaces, brackets or quotes:
"data.dataset.root=/data/my images" "custom_hooks=[dict(type='ProgressBarHook', disable=True)]".
An empty value is an error: write key=None, or "key=''" for an empty string.
A key given twice: the last value wins.
"""
from __future__ import annotations

import argparse
import ast
from collections.abc import Mapping
from typing import Any

from promptsync.errors import ConfigError

CFG_OPTIONS_HELP = __doc__

_CLOSE = {'(': ')', '[': ']', '{': '}'}
_FIX_FORMAT = 'write KEY=VALUE with a dotted key, e.g. tta.optimizer.lr=0.001'


class _NotLiteral(Exception):
    pass


def _split_top_level(text: str) -> list[str] | None:
    """``text`` split at the commas outside brackets and quotes; None if brackets or quotes do not balance."""
    parts, expected, quote, start, escaped = [], [], None, 0, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == '\\':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in '\'"':
            quote = ch
        elif ch in _CLOSE:
            expected.append(_CLOSE[ch])
        elif ch in ')]}':
            if not expected or expected.pop() != ch:
                return None
        elif ch == ',' and not expected:
            parts.append(text[start:i])
            start = i + 1
    if expected or quote:
        return None
    return parts + [text[start:]]


def _elements(parts: list[str]) -> list[Any]:
    if parts and not parts[-1].strip():  # a trailing comma; also the only part of '[]'
        parts = parts[:-1]
    return [parse_value(p.strip()) for p in parts]


def _word(name: str) -> Any:
    """A bare word: true/false in any case, None/none, inf/nan, else the word itself."""
    if name.lower() in ('true', 'false'):
        return name.lower() == 'true'
    if name in ('None', 'none'):
        return None
    try:
        return float(name)  # inf, nan, infinity, as mmengine's DictAction
    except ValueError:
        return name


def _literal(node: ast.AST) -> Any:
    """The value of an expression made only of literals, bare words and dict(key=value, ...) calls."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, int, float))):
        return node.value
    if isinstance(node, ast.Name):
        return _word(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:  # None: a ** entry
        try:
            return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
        except TypeError:  # an unhashable key such as a list
            raise _NotLiteral from None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict'
            and not node.args and all(kw.arg for kw in node.keywords)):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    raise _NotLiteral


def parse_value(text: str) -> Any:
    """A --cfg-options value: see CFG_OPTIONS_HELP. Never evaluates code; what it cannot read is returned as is."""
    stripped = text.strip()
    for number in (int, float):
        try:
            return number(stripped)
        except ValueError:
            pass
    parts = _split_top_level(stripped)
    if parts is None:
        return text
    if len(parts) > 1:
        return _elements(parts)
    if stripped[:1] in ('[', '(') and stripped[-1] == _CLOSE[stripped[0]]:
        inner = _split_top_level(stripped[1:-1])
        if inner is not None:  # else the brackets do not pair up: '[1][2]'
            values = _elements(inner)
            return values if stripped[0] == '[' else tuple(values)
    try:
        node = ast.parse(stripped, mode='eval').body
        if ast.get_source_segment(stripped, node) == stripped:  # not 'a#comment'
            return _literal(node)
    except (SyntaxError, ValueError, _NotLiteral):
        pass
    return text


def parse_item(item: str) -> tuple[str, Any]:
    """``'KEY=VALUE'`` -> ``(KEY, parse_value(VALUE))``; a ConfigError for a malformed item."""
    key, sep, raw = item.partition('=')
    where = f'--cfg-options {item}'
    if not sep:
        raise ConfigError(f"'{item}' has no '=': each --cfg-options item is KEY=VALUE.", where=where, fix=_FIX_FORMAT)
    if not key:
        raise ConfigError(f"'{item}' has an empty key.", where=where, fix=_FIX_FORMAT)
    if any(ch.isspace() for ch in key):
        raise ConfigError(f"The key '{key}' contains a space.", where=where,
                          fix=f'{_FIX_FORMAT}; quote for the shell only values with spaces: "key=a b"')
    if '' in key.split('.'):
        raise ConfigError(f"The key '{key}' has an empty part (a leading, trailing or double dot).",
                          where=where, fix=_FIX_FORMAT)
    if not raw.strip():
        raise ConfigError(f"'{item}' has an empty value.", where=where,
                          fix=f"write {key}=None for None, or \"{key}=''\" (quoted for the shell) for an empty string")
    return key, parse_value(raw)


def _lookup(tree: Any, key: str) -> tuple[bool, Any]:
    """``(True, value)`` at the dotted ``key`` (a number part indexes a list), ``(False, None)`` if absent."""
    node = tree
    for part in key.split('.'):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def check_types(cfg_tree: Mapping, options: Mapping[str, Any]) -> None:
    """Refuse an option whose value cannot replace the one the config holds (call it before merging).

    A key holding a number (int or float, not bool) refuses a string; a key holding a bool refuses anything but
    a bool or None. Keys absent from ``cfg_tree`` are skipped (the schema check reports them).
    """
    for key, value in options.items():
        found, current = _lookup(cfg_tree, key)
        if not found:
            continue
        where = f'--cfg-options {key}'
        if isinstance(current, bool):
            if not isinstance(value, bool) and value is not None:
                raise ConfigError(f'{key} expects True or False (it is {current!r}), but was given {value!r}.',
                                  where=where, fix=f'write {key}=True or {key}=False (or None), without quotes')
        elif isinstance(current, (int, float)) and isinstance(value, str):
            raise ConfigError(f"{key} expects a number (it is {current!r}), but '{value}' is not one number.",
                              where=where,
                              fix=f'write one number without quotes or spaces, e.g. {key}={current!r}; '
                                  f'quotes make a string')


class CfgOptionsAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` into one dict (repeated flags add to it; a key given twice: the last wins).

    A malformed item ends the program through ``parser.error`` (exit code 2, a short message).
    """

    def __init__(self, option_strings, dest, nargs='+', **kwargs):
        kwargs.setdefault('metavar', 'KEY=VALUE')
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in [values] if isinstance(values, str) else values:
            try:
                key, value = parse_item(item)
            except ConfigError as e:
                parser.error(f'argument {option_string or self.dest}: {e.message}')
            options[key] = value
        setattr(namespace, self.dest, options)
