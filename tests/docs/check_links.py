#!/usr/bin/env python3
"""Check every relative link of the README and docs/*.md.

    python3 tests/docs/check_links.py [FILE.md ...]

Without arguments it reads README.md and docs/*.md. For each link
[text](path), [text](path#anchor), [text](#anchor), ![alt](path) and each
reference definition `[name]: path`, outside code fences and code spans:
the path must exist (relative to the file, inside the repository), and an
anchor into a Markdown file must be one of that file's headings under
GitHub's rules: the heading's text, lowercased, every character but
letters, digits, '_', '-' and spaces dropped, spaces made '-', and a
repeated anchor suffixed -1, -2, ... Headings inside code fences are not
headings; <a name="..."> and id="..." count as anchors too. Links with a
scheme (https:, mailto:, ...) are not checked.

Each broken link is printed as file:line: ...; the exit status is then 1.
Python 3 standard library only; meson runs it as the unit test docs-links.
"""

import html
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*?\bname\s*=\s*["']([^"']+)["']|\bid\s*=\s*["']([^"']+)["']""",
                         re.I)
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
REF_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:[ \t]*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def body_lines(text):
    """(line number, line, in_fence) for each line of a Markdown text."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            yield number, line, True
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip().lstrip(fence[0]):
                fence = None
            yield number, line, True
        else:
            yield number, line, False


def heading_text(raw):
    """The text GitHub renders for a heading's Markdown source."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1", r"\2", text)  # emphasis
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # backslash escapes
    return html.unescape(text)


def slug(text):
    """GitHub's anchor for a heading text: lowercase, only word characters,
    '-' and spaces kept, spaces made '-'."""
    out = []
    for char in text.strip().lower():
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LN" or category == "Mn" or category == "Pc":
            out.append("-" if char == " " else char)
    return "".join(out)


def anchors(text):
    """Every anchor of a Markdown text: headings (with GitHub's -1, -2 for
    repeats) and HTML name/id attributes outside code fences."""
    found, seen = set(), {}
    previous = None  # the paragraph line a setext underline would make a heading

    def add(title):
        base = slug(heading_text(title))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")

    for _, line, in_fence in body_lines(text):
        if in_fence:
            previous = None
            continue
        for match in HTML_ANCHOR.finditer(CODE_SPAN.sub("", line)):
            found.add(match.group(1) or match.group(2))
        atx = ATX.match(line)
        if atx:
            add(atx.group(2) or "")
            previous = None
        elif previous is not None and SETEXT.match(line):
            add(previous)
            previous = None
        elif line.strip() and not line.lstrip().startswith(("|", ">", "-", "*", "+")) \
                and not re.match(r"^\s*\d+[.)]\s", line) and not line.startswith("    "):
            previous = line.strip()
        else:
            previous = None
    return found


def link_targets(line):
    """The targets of the inline links and images on one line (code spans removed)."""
    line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
    targets = []
    for match in re.finditer(r"\]\(", line):
        if match.start() > 0 and line[match.start() - 1] == "\\":
            continue
        rest = line[match.end():]
        if rest.startswith("<"):
            end = rest.find(">")
            if end > 0:
                targets.append(rest[1:end])
            continue
        depth, target = 0, ""
        for char in rest:
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char in " \t" and depth == 0:
                break  # a title follows
            target += char
        else:
            continue  # no closing parenthesis: not a link
        targets.append(target)
    return targets


class Checker:
    def __init__(self):
        self.anchor_cache = {}
        self.errors = []
        self.links = 0

    def anchors_of(self, path):
        if path not in self.anchor_cache:
            self.anchor_cache[path] = anchors(path.read_text(encoding="utf-8"))
        return self.anchor_cache[path]

    def check_target(self, source, number, target):
        where = f"{display(source)}:{number}"
        if not target or SCHEME.match(target) or target.startswith("//"):
            return
        self.links += 1
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        anchor = unquote(anchor)
        if path_part:
            if path_part.startswith("/"):
                self.errors.append(f"{where}: link '{target}': an absolute path (use a relative one)")
                return
            resolved = (source.parent / path_part).resolve()
            try:
                resolved.relative_to(ROOT)
            except ValueError:
                self.errors.append(f"{where}: link '{target}': outside the repository")
                return
            if not resolved.exists():
                self.errors.append(f"{where}: link '{target}': {display(resolved)} does not exist")
                return
        else:
            resolved = source
        if not anchor or resolved.is_dir() or resolved.suffix.lower() not in (".md", ".markdown"):
            return
        known = self.anchors_of(resolved)
        if anchor not in known:
            near = [a for a in known if a.lower() == anchor.lower()]
            hint = f" (did you mean #{near[0]}?)" if near else ""
            self.errors.append(f"{where}: link '{target}': no heading or anchor "
                               f"#{anchor} in {display(resolved)}{hint}")

    def check_file(self, source):
        text = source.read_text(encoding="utf-8")
        for number, line, in_fence in body_lines(text):
            if in_fence:
                continue
            definition = REF_DEF.match(line)
            if definition:
                self.check_target(source, number, definition.group(2).strip("<>"))
                continue
            for target in link_targets(line):
                self.check_target(source, number, target)


def display(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv):
    if argv:
        files = [Path(arg).resolve() for arg in argv]
    else:
        files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    checker = Checker()
    for source in files:
        checker.check_file(source)
    for error in checker.errors:
        print(error)
    if checker.errors:
        print(f"check_links: {len(checker.errors)} broken of {checker.links} relative links "
              f"in {len(files)} files")
        return 1
    print(f"check_links: {checker.links} relative links in {len(files)} files, none broken")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
