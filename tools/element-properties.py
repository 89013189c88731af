#!/usr/bin/env python3
"""The properties of GstFER's four elements as Markdown tables, from gst-inspect-1.0 (the plugin
as GStreamer finds it): name, type, default and range, whether it can change while PLAYING, and
what it does. docs/element.md holds its output; GstFERTests checks that the page names every
property each element has.
usage: tools/element-properties.py > /tmp/properties.md
"""
import re, subprocess

def properties(element):
    out = subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True, check=True).stdout
    body = out.split("Element Properties:", 1)[1]
    props, cur = [], None
    for line in body.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^  ([a-z0-9-]+)\s*: (.*)$", line)
        if m:
            cur = {"name": m.group(1), "blurb": m.group(2), "flags": "", "type": "", "values": []}
            props.append(cur)
        elif cur and line.strip().startswith("flags:"):
            cur["flags"] = line.strip()[len("flags:"):].strip()
        elif cur and re.match(r"^\s+\(\d+\): ", line):
            cur["values"].append(re.sub(r"^\s+\(\d+\): (\S+).*", r"\1", line))
        elif cur and not cur["type"]:
            cur["type"] = " ".join(line.split())
        elif not line.startswith(" "):
            break
    return [p for p in props if p["name"] not in ("name", "parent", "qos")]

def describe(p):
    t = p["type"]
    kind = t.split(".")[0].split(" ")[0].replace('"', "")
    default = re.search(r"Default: (.*)$", t)
    default = default.group(1).strip() if default else ""
    rng = re.search(r"Range: *(\S+) *- *(\S+)", t)
    if t.startswith("Enum"):
        kind = "enum: " + ", ".join(p["values"])
        default = default.split(",")[-1].strip().strip('"')
    elif rng:
        kind += f" {rng.group(1)}-{rng.group(2)}"
    if "writable" not in p["flags"]:
        live = "read only"
    elif "PLAYING" in p["flags"]:
        live = "yes"
    else:
        live = "no (set before start)"
    return kind, default, live

for element in ("ferfilter", "ferseiinsert", "ferseiextract", "feroverlay"):
    print(f"### {element}\n")
    print("| property | type | default | while playing | what it does |")
    print("|---|---|---|---|---|")
    for p in properties(element):
        kind, default, live = describe(p)
        blurb = p["blurb"].replace("|", "\\|")
        print(f"| `{p['name']}` | {kind} | {default.replace('|', '/') or ' '} | {live} | {blurb} |")
    print()
