#!/usr/bin/env python3
"""Checks that no C function in src/ or cli/ is longer than 80 body lines.

A function's body lines are the physical lines strictly between the line holding the opening
brace of its definition and the line holding the matching closing brace (blank and comment lines
included). A one-line function has 0 body lines. A function definition is a brace at file scope
(outside any other brace, comment, string or preprocessor line) whose preceding code ends with
a closing parenthesis; its name is the identifier before the matching opening parenthesis.

Functions named in ALLOW (by "path:name", path relative to the checkout) are exempt; each entry
carries a one-line reason.

Usage:
    check_function_length.py [SOURCE_DIR]       checks SOURCE_DIR/src and SOURCE_DIR/cli (after
                                                the self-test)
    check_function_length.py --files FILE...    checks the given files (no allow-list)
    check_function_length.py --self-test        shows the check fails on a long function
Exits 1 and lists every function over the limit.
"""
import os
import re
import sys
import tempfile

LIMIT = 80

ALLOW = {
    "src/model/cpu/attention.c:backward_kv_head_body": (
        "one tiled loop nest (flash-attention backward of one kv head) whose tile buffers live "
        "in its frame; a split would pass a dozen tile pointers per call in the hottest loop"
    ),
}

IDENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")


def strip_code(text):
    """text with comments, string and character literals and preprocessor lines blanked to
    spaces (newlines kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            # a preprocessor line, with its backslash continuations
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        if c == "\n":
            out.append(c)
            at_line_start = True
            i += 1
            continue
        if c in " \t":
            out.append(c)
            i += 1
            continue
        at_line_start = False
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(name, first body line, body line count) of each function defined in C source text."""
    code = strip_code(text)
    found = []
    depth = 0
    open_at = None
    name = None
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                head = code[:i].rstrip()
                name = None
                if head.endswith(")"):
                    # walk back to the matching "(" and take the identifier before it
                    d, j = 0, len(head) - 1
                    while j >= 0:
                        if head[j] == ")":
                            d += 1
                        elif head[j] == "(":
                            d -= 1
                            if d == 0:
                                break
                        j -= 1
                    m = IDENT.search(head[:j]) if j > 0 else None
                    name = m.group(1) if m else None
                open_at = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and name:
                first = code.count("\n", 0, open_at) + 1
                last = code.count("\n", 0, i) + 1
                found.append((name, first, max(0, last - first - 1)))
                name = None
    return found


def check(paths, root, allow):
    bad = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        rel = os.path.relpath(path, root) if root else path
        for name, line, body in functions(text):
            if body > LIMIT and f"{rel}:{name}" not in allow:
                bad.append(f"{rel}:{line}: {name} has {body} body lines (limit {LIMIT})")
    return bad


def sources(root):
    out = []
    for top in ("src", "cli"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            out += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".c")]
    return sorted(out)


def self_test(verbose=False):
    body = "".join(f"    x += {k}; /* {{ */\n" for k in range(LIMIT + 1))
    short = "".join(f"    x += {k};\n" for k in range(LIMIT - 1))
    src = ('#define BRACE {\nstatic const char *s = "}";\n'
           f"static int long_one(int x)\n{{\n{body}    return x;\n}}\n"
           f"static int short_one(int x) {{\n{short}    return x;\n}}\n"
           "struct s { int a; };\n")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "long.c")
        with open(path, "w", encoding="utf-8") as f:
            f.write(src)
        bad = check([path], None, {})
    want = LIMIT + 2  # the 81 statements and the return
    ok = len(bad) == 1 and "long_one" in bad[0] and f"has {want} body lines" in bad[0]
    if not ok:
        print("self-test FAILED: the check misses or misreports a long function:", bad)
    elif verbose:
        print("self-test ok:", bad[0])
    return 0 if ok else 1


def main():
    args = sys.argv[1:]
    if args[:1] == ["--self-test"]:
        return self_test(verbose=True)
    if args[:1] == ["--files"]:
        bad = check(args[1:], None, {})
    else:
        # the check must be able to fail: it finds the long function in a sample first
        if self_test():
            return 1
        root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
        bad = check(sources(root), root, ALLOW)
        stale = [k for k in ALLOW if not os.path.isfile(os.path.join(root, k.split(":")[0]))]
        bad += [f"allow-list entry {k} names a missing file" for k in stale]
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} function(s) over {LIMIT} body lines: split them by purpose, or add "
              "them to ALLOW in scripts/check_function_length.py with a reason")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
