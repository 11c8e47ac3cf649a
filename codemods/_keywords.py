"""Keyword tables: rename, replace, drop or flag the keywords of a call, decided by table entries.

An entry (one keyword of one callable, in ``codemods/data/<codemod>.toml``) says, in this order:

``rename``        the new keyword, exact for any value (``rename_below``: only for a number literal below it;
                  ``wrap_value``: the new value, ``{}`` standing for the old one, unless that is a string
                  literal starting with one of ``keep_value_if``; ``wrap_imports`` are added with it)
``replace_if``    ``{"<value as written>" = "<keyword>=<value>"}``: an exact replacement per value
``remove_if``     values (as written, spaces ignored) for which dropping the keyword changes nothing; ``"*"`` any
``unless_uses``   dotted prefixes: if the script uses one of them, none of the above is exact any more
``follow_up``     what a human must do in every other case; the keyword then stays where it is
``version``       the release that rejects the old spelling (shown in every message)

A keyword is never dropped while the script reads an attribute of the same name. Keys of a dict
literal passed as ``**{...}`` are treated like keywords; ``**name`` of such a dict gets a follow-up.
"""

from __future__ import annotations

from typing import ClassVar, Sequence, TypeVar

import libcst as cst

from codemods._names import TableCodemod

Outcome = tuple[str, str | None]  # ("rename" | "replace" | "drop" | "keep", payload)


class KeywordCodemod(TableCodemod):
    #: Shown before the version in messages: "transformers 5.0", "Ray 2.51".
    LIBRARY: ClassVar[str] = ""

    def fix_keywords(self, original: cst.Call, updated: cst.Call, entries: dict) -> cst.Call:
        present = {a.keyword.value for a in original.args if a.keyword} | {
            key for arg in original.args if arg.star == "**" for key, _ in _literal_keys(arg.value)
        }
        args, drop = list(updated.args), set()
        for i, (orig, arg) in enumerate(zip(original.args, updated.args)):
            if arg.keyword is not None and arg.keyword.value in entries:
                kind, payload = self.decide(arg.keyword.value, entries, orig.value, present, orig)
                if kind == "rename":
                    args[i] = arg.with_changes(keyword=cst.Name(payload))
                elif kind == "replace":
                    keyword, _, value = payload.partition("=")
                    args[i] = arg.with_changes(keyword=cst.Name(keyword), value=cst.parse_expression(value))
                elif kind == "drop":
                    drop.add(i)
            elif arg.star == "**":
                args[i] = arg.with_changes(value=self._fix_kwargs(orig.value, arg.value, entries, present))
        if not drop:
            return updated.with_changes(args=args)
        args, opening = drop_items(args, drop, updated.whitespace_before_args)
        return updated.with_changes(args=args, whitespace_before_args=opening)

    def decide(self, name: str, entries: dict, value: cst.BaseExpression, present: set[str], node: cst.CSTNode) -> Outcome:
        """What to do with ``name=value``; records the change or the follow-up."""
        entry = entries[name]
        written, version = self.source(value), f"{entry.get('library', self.LIBRARY)} {entry['version']}"
        blocked = self.uses_any(entry.get("unless_uses", ()))
        if blocked:
            return self._keep(node, f"`{name}=` was retired in {version}, and with {blocked} in this script the rewrite is not certain: {entry['follow_up']}")
        # A value the table names (`fp16=True`) first; any other value of a renamed keyword then
        # takes the new name (`fp16=args.fp16` -> `mixed_precision=...`).
        replacement = _lookup(entry.get("replace_if", {}), written)
        if replacement:
            keyword = replacement.partition("=")[0]
            if keyword in present and keyword != name:
                return self._keep(node, f"`{name}=` was retired in {version}, and `{keyword}=` is given too: {entry['follow_up']}")
            self.change(node, f"`{name}={written}` -> `{replacement}` (`{name}=` was retired in {version})")
            return "replace", replacement
        removable = entry.get("remove_if", [])
        reads = name in self.attributes_read()
        if ("*" in removable or _lookup(dict.fromkeys(removable, True), written)) and not reads:
            comment = trailing_comment(node) if isinstance(node, (cst.Arg, cst.DictElement)) else None
            went = f"; its comment `{comment}` went with it" if comment else ""
            self.change(node, f"dropped `{name}={written}`: retired in {version}, and this value changed nothing{went}")
            return "drop", None
        new = entry.get("rename")
        if new and ("rename_below" not in entry or _number_below(value, entry["rename_below"])):
            if new in present:
                return self._keep(node, f"`{name}=` and `{new}=` are both given; {version} only accepts `{new}=`: keep one")
            if "wrap_value" in entry and not _string_starting(value, entry.get("keep_value_if", ())):
                for module in entry.get("wrap_imports", ()):
                    self.add_needed_import(module)
                replacement = f"{new}={entry['wrap_value'].format(written)}"
                self.change(node, f"`{name}={written}` -> `{replacement}` (`{name}=` was retired in {version})")
                return "replace", replacement
            self.change(node, f"`{name}=` -> `{new}=` (`{name}=` was retired in {version})")
            return "rename", new
        also = f", and this script reads `.{name}`" if reads else ""
        return self._keep(node, f"`{name}=` was retired in {version}{also}: {entry['follow_up']}")

    def _keep(self, node: cst.CSTNode, message: str) -> Outcome:
        self.follow_up(node, message)
        return "keep", None

    def _fix_kwargs(self, original: cst.BaseExpression, updated: cst.BaseExpression, entries: dict, present: set[str]):
        """``**{"old": ...}`` gets the keyword treatment; ``**name`` of such a dict a follow-up."""
        if isinstance(original, cst.Name):
            for value in self.values_of(original) or ():
                for key, _ in _literal_keys(value):
                    if key in entries:
                        entry = entries[key]
                        hint = f"use '{entry['rename']}'" if "rename" in entry else entry.get("follow_up", "")
                        self.follow_up(
                            original,
                            f"`**{original.value}` passes '{key}', retired in {self.LIBRARY} {entry['version']}; "
                            f"where the dict is built: {hint}",
                        )
            return updated
        if not isinstance(updated, cst.Dict):
            return updated
        elements, drop = list(updated.elements), set()
        for i, (key, element) in enumerate(_literal_keys(original)):
            if key not in entries:
                continue
            kind, payload = self.decide(key, entries, element.value, present, element)
            if kind in ("rename", "replace"):
                keyword, _, value = payload.partition("=")
                changes = {"value": cst.parse_expression(value)} if kind == "replace" else {}
                elements[i] = elements[i].with_changes(key=_requote(element.key, keyword), **changes)
            elif kind == "drop":
                drop.add(i)
        if not drop:
            return updated.with_changes(elements=elements)
        elements, opening = drop_items(elements, drop, updated.lbrace.whitespace_after)
        return updated.with_changes(elements=elements, lbrace=updated.lbrace.with_changes(whitespace_after=opening))


def kwarg(name: str, value: str | cst.BaseExpression) -> cst.Arg:
    """``name=value`` as black writes a keyword (no spaces); ``value`` as code or a node."""
    expr = cst.parse_expression(value) if isinstance(value, str) else value
    return cst.Arg(keyword=cst.Name(name), value=expr, equal=cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))


def _lookup(table: dict, written: str):
    """``table[written]``, comparing the way the value is written without its spaces."""
    compact = "".join(written.split())
    return next((v for k, v in table.items() if "".join(k.split()) == compact), None)


def _literal_keys(value: cst.BaseExpression) -> list[tuple[str | None, cst.BaseDictElement]]:
    """(key, element) for each element of a dict literal; the key is None unless a plain string."""
    if not isinstance(value, cst.Dict):
        return []
    return [
        (e.key.evaluated_value if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString) else None, e)
        for e in value.elements
    ]


def _requote(key: cst.SimpleString, text: str) -> cst.SimpleString:
    return key.with_changes(value=f"{key.prefix}{key.quote}{text}{key.quote}")


def _string_starting(value: cst.BaseExpression, prefixes: Sequence[str]) -> bool:
    return isinstance(value, cst.SimpleString) and value.evaluated_value.startswith(tuple(prefixes))


def _number_below(value: cst.BaseExpression, bound: float) -> bool:
    return isinstance(value, (cst.Integer, cst.Float)) and float(value.evaluated_value) < bound


# -- editing comma-separated items -------------------------------------------------------------
Item = TypeVar("Item", cst.Arg, cst.DictElement, cst.StarredDictElement, cst.ImportAlias)


def _merge(left: cst.BaseParenthesizableWhitespace, right: cst.BaseParenthesizableWhitespace | None):
    """Whitespace for ``left``'s place once the item that ``right`` followed is gone: keep own-line
    comments of both, take the indentation that leads to the next item from ``right``."""
    if right is None:
        return left
    if isinstance(left, cst.ParenthesizedWhitespace) and isinstance(right, cst.ParenthesizedWhitespace):
        return right.with_changes(first_line=left.first_line, empty_lines=[*left.empty_lines, *right.empty_lines])
    if isinstance(left, cst.ParenthesizedWhitespace) or not isinstance(right, cst.ParenthesizedWhitespace):
        return left
    return right


def _has_comments(ws: cst.BaseParenthesizableWhitespace) -> bool:
    if not isinstance(ws, cst.ParenthesizedWhitespace):
        return False
    return ws.first_line.comment is not None or any(line.comment is not None for line in ws.empty_lines)


def drop_items(
    items: Sequence[Item], drop: set[int], opening: cst.BaseParenthesizableWhitespace
) -> tuple[list[Item], cst.BaseParenthesizableWhitespace]:
    """``items`` without the indices in ``drop``, and the whitespace after the opening bracket.

    Comments on their own lines around a dropped item stay; a comment on the dropped item's own
    line goes with it (callers name it in their report entry).
    """
    kept: list[Item] = []
    for i, item in enumerate(items):
        if i not in drop:
            kept.append(item)
            continue
        after = item.comma.whitespace_after if isinstance(item.comma, cst.Comma) else None
        if isinstance(after, cst.ParenthesizedWhitespace):
            after = after.with_changes(first_line=cst.TrailingWhitespace())
        if not kept:
            opening = _merge(opening, after)
        elif isinstance(kept[-1].comma, cst.Comma):
            comments = _has_comments(kept[-1].comma.whitespace_after)
            if i == len(items) - 1 and not isinstance(item.comma, cst.Comma) and isinstance(item, cst.Arg):
                # The dropped argument was last without a trailing comma: the one before it takes its
                # place before the closing parenthesis, with any own-line comments in between.
                closing = item.whitespace_after_arg
                if comments:
                    closing = _merge(kept[-1].comma.whitespace_after, closing)
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=closing)
            elif i == len(items) - 1 and not isinstance(item.comma, cst.Comma) and not comments:
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            else:
                comma = kept[-1].comma
                kept[-1] = kept[-1].with_changes(comma=comma.with_changes(whitespace_after=_merge(comma.whitespace_after, after)))
    if not kept and not _has_comments(opening):
        opening = cst.SimpleWhitespace("")
    return kept, opening


def trailing_comment(item: cst.Arg | cst.DictElement) -> str | None:
    after = item.comma.whitespace_after if isinstance(item.comma, cst.Comma) else None
    if isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None:
        return after.first_line.comment.value
    return None
