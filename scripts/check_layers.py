#!/usr/bin/env python3
"""Checks that #include directives follow the layers of docs/architecture.md.

Layers, bottom to top (a file may include its own layer and the layers below):

    base < io < text < model < optim < {train, infer} < report < cli

train and infer are siblings: neither includes the other. Public headers (include/badam/*.h)
belong to the layer that implements them (PUBLIC below). Headers named *_internal.h are private
to their own layer. The CLI includes public headers and its own only. Any include cycle between
files is an error. The library (src/) never writes to stdout or stderr, nor exits: it reports
through the logger its caller gives it (include/badam/log.h) and returns errors as values.
Tests, benchmarks and generated files are not checked.

Usage: check_layers.py [SOURCE_DIR]; exits 1 and lists every violation.
"""
import os
import re
import sys

RANK = {"base": 0, "io": 1, "text": 2, "model": 3, "optim": 4, "train": 5, "infer": 5,
        "report": 6, "cli": 7}
PUBLIC = {
    "status.h": "base", "dtype.h": "base", "cpu.h": "base", "memory.h": "base", "log.h": "base",
    "comm.h": "base",
    "json.h": "io",
    "tokenizer.h": "text", "data.h": "text", "tasks.h": "text", "mlm.h": "text",
    "llama.h": "model", "decode.h": "model", "model.h": "model", "model_tags.h": "model",
    "bert.h": "model", "device.h": "model",
    "optim.h": "optim",
    "train.h": "train",
    "generate.h": "infer", "evaluate.h": "infer",
    "report.h": "report",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# writes to the terminal, or ends the process, from library code
CONSOLE = re.compile(r'\b(stderr|stdout|perror|puts|exit|abort)\b|(?<![a-z_])printf\s*\(')


def layer_of(rel):
    parts = rel.split("/")
    if parts[0] == "include" and parts[1] == "badam":
        return PUBLIC.get(parts[2])
    if parts[0] == "src" and parts[1] in RANK:
        return parts[1]
    if parts[0] == "cli":
        return "cli"
    return None


def resolve(root, src_rel, target):
    """The repository-relative path an include names, or None (generated or system files)."""
    for base in (os.path.dirname(src_rel), "include", "src"):
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    files = []
    for top in ("include", "src", "cli"):
        for d, _, names in os.walk(os.path.join(root, top)):
            files += [os.path.relpath(os.path.join(d, n), root) for n in names
                      if n.endswith((".c", ".h"))]
    errors, graph = [], {}
    for rel in sorted(files):
        layer = layer_of(rel)
        if layer is None:
            errors.append(f"{rel}: no layer (add it to PUBLIC in scripts/check_layers.py)")
            continue
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        if rel.startswith("src/"):
            code = re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"',
                          lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
            for n, line in enumerate(code.split("\n"), 1):
                if CONSOLE.search(line):
                    errors.append(f"{rel}:{n}: the library writes to the terminal or exits "
                                  "(report through badam_logger, return a badam_status)")
        graph[rel] = []
        for target in INCLUDE.findall(text):
            dep = resolve(root, rel, target)
            if dep is None:
                continue
            graph[rel].append(dep)
            dl = layer_of(dep)
            if dl is None:
                errors.append(f"{rel}: includes {dep}, which belongs to no layer")
            elif layer == "cli" and dl != "cli" and not dep.startswith("include/"):
                errors.append(f"{rel}: the CLI includes the internal header {dep}")
            elif RANK[dl] > RANK[layer] or (RANK[dl] == RANK[layer] and dl != layer):
                errors.append(f"{rel} ({layer}) includes {dep} ({dl}): points up or sideways")
            elif dep.endswith("_internal.h") and dl != layer:
                errors.append(f"{rel} ({layer}) includes {dep}, private to {dl}")
    # include cycles (depth-first search, three colours)
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                cyc = stack[stack.index(dep):] + [dep]
                errors.append("include cycle: " + " -> ".join(cyc))
            elif dep in graph and not state.get(dep):
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    for e in errors:
        print(e)
    print(f"check_layers: {len(graph)} files, {sum(map(len, graph.values()))} includes, "
          f"{len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
