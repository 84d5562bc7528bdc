#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes docs/dbus-reference.md from the interface description
dbus/bot.bankr.LLM1.xml (its elements and the comments before them), so the
reference cannot drift from the contract (tests/test-dbus-reference.py
checks that the checked-in page is current).

    scripts/gen-dbus-reference.py > docs/dbus-reference.md
"""
import os
import sys
import textwrap
import xml.etree.ElementTree as ET

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XML = os.path.join(TOP, "dbus", "bot.bankr.LLM1.xml")
EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def parse(path):
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    with open(path, "rb") as f:
        # The DOCTYPE names an external DTD; expat does not fetch it.
        return ET.fromstring(f.read(), parser=parser)


def is_comment(e):
    return e.tag is ET.Comment


def prose(comment, strip_name=None):
    """A comment as Markdown: paragraphs joined, indented lines kept as code."""
    text = textwrap.dedent(comment.text.strip("\n")).strip()
    lines = textwrap.dedent("\n".join(l.rstrip() for l in text.split("\n"))).split("\n")
    # "Name: text", "Name (addition): text", "Name, at …: text" → "Text".
    if strip_name and lines and lines[0].startswith(strip_name) and lines[0][len(strip_name):][:1] in (":", ",", " "):
        rest = lines[0][len(strip_name):]
        prefix = ""
        if rest.startswith(" (addition):"):
            prefix, rest = "(Addition to the design.) ", rest[len(" (addition):"):]
        elif rest.startswith((":", ",")):
            rest = rest[1:]
        else:
            rest = lines[0]
        rest = rest.lstrip()
        lines[0] = prefix + rest[:1].upper() + rest[1:]
    # A comment's continuation lines are indented to the first line's text.
    if len(lines) > 1:
        rest = textwrap.dedent("\n".join(lines[1:])).split("\n")
        lines = [lines[0]] + rest
    out, para, code = [], [], []

    def flush_para():
        if para:
            out.append(" ".join(para))
            out.append("")
            para.clear()

    def flush_code():
        if code:
            out.append("```")
            out.extend(code)
            out.append("```")
            out.append("")
            code.clear()

    for l in lines:
        if l.startswith(" ") and l.strip():
            flush_para()
            code.append(l[2:] if l.startswith("  ") else l[1:])
        elif not l.strip():
            flush_para()
            flush_code()
        else:
            flush_code()
            para.append(l.strip().replace("<", "\\<").replace(">", "\\>"))
    flush_para()
    flush_code()
    return "\n".join(out).rstrip("\n")


def args(e, direction=None):
    return ", ".join("%s %s" % (a.get("type"), a.get("name", "")) for a in e.findall("arg")
                     if direction is None or a.get("direction", "in") == direction)


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def members(interface):
    """(element, its comment or None) in document order."""
    last = None
    for e in interface:
        if is_comment(e):
            last = e
            continue
        yield e, last
        last = None


def render(path=XML):
    root = parse(path)
    out = ["# D-Bus API reference", "",
           "Generated from [`dbus/bot.bankr.LLM1.xml`](../dbus/bot.bankr.LLM1.xml) (installed as",
           "`/usr/share/dbus-1/interfaces/bot.bankr.LLM1.xml`) by `scripts/gen-dbus-reference.py`;",
           "`tests/test-dbus-reference.py` fails when this page is out of date. The overview, the",
           "choices and examples are in [dbus-api.md](dbus-api.md).", ""]
    with open(path, "rb") as f:
        head = f.read().decode("utf-8")
    # The file's first comment (before <node>) is the overview.
    start = head.find("<!--")
    if 0 <= start < head.find("<node"):
        c = ET.Comment(head[start + 4:head.index("-->", start)])
        out += ["## Overview", "", prose(c), ""]

    for iface, comment in members(root):
        if iface.tag != "interface":
            continue
        name = iface.get("name")
        out += ["## %s" % name, ""]
        if comment is not None:
            out += [prose(comment, name), ""]
        groups = {"method": [], "property": [], "signal": []}
        for m, c in members(iface):
            if m.tag in groups:
                groups[m.tag].append((m, c))
        if groups["method"]:
            out += ["### Methods", ""]
            for m, c in groups["method"]:
                outs = args(m, "out")
                out += ["#### %s" % m.get("name"), "",
                        "```", "%s(%s)%s" % (m.get("name"), args(m, "in"), " → (%s)" % outs if outs else ""), "```", ""]
                if c is not None:
                    out += [prose(c, m.get("name")), ""]
        if groups["property"]:
            out += ["### Properties", "", "| name | type | access | PropertiesChanged | description |",
                    "|---|---|---|---|---|"]
            for p, c in groups["property"]:
                emits = "yes"
                for a in p.findall("annotation"):
                    if a.get("name") == EMITS:
                        emits = {"const": "no (constant)", "false": "no", "invalidates": "invalidates"}.get(
                            a.get("value"), a.get("value"))
                desc = prose(c, p.get("name")).replace("```\n", "").replace("\n```", "") if c is not None else ""
                out.append("| `%s` | `%s` | %s | %s | %s |" % (p.get("name"), p.get("type"), p.get("access"), emits,
                                                               cell(desc)))
            out.append("")
        if groups["signal"]:
            out += ["### Signals", ""]
            for s, c in groups["signal"]:
                out += ["#### %s" % s.get("name"), "", "```", "%s(%s)" % (s.get("name"), args(s)), "```", ""]
                if c is not None:
                    out += [prose(c, s.get("name")), ""]
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else XML))
