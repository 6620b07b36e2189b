#!/usr/bin/env python3
"""Renders a Jinja chat_template the way transformers' apply_chat_template does.

  render_chat_template.py TOKENIZER_CONFIG.json CASES.json OUT.json

TOKENIZER_CONFIG.json: its chat_template, bos_token, eos_token and other special tokens are
passed to the template, as transformers does. CASES.json: a list of
{"messages": [{"role", "content"}], "add_generation_prompt": bool}. OUT.json: the list of
rendered strings, or {"error": message} for a case the template rejects (raise_exception).

The environment is transformers' (chat_template_utils._compile_jinja_template):
jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[loopcontrols]), globals raise_exception and strftime_now, the tojson filter.
Debian package python3-jinja2.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def token_text(v):
    return v.get("content") if isinstance(v, dict) else v


def main():
    cfg_path, cases_path, out_path = sys.argv[1:4]
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(cfg["chat_template"])
    special = {k: token_text(cfg[k]) for k in
               ("bos_token", "eos_token", "unk_token", "pad_token") if cfg.get(k) is not None}
    out = []
    for case in cases:
        try:
            out.append(template.render(messages=case["messages"],
                                       add_generation_prompt=case["add_generation_prompt"],
                                       **special))
        except TemplateError as e:
            out.append({"error": str(e)})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
