"""What the benches' random Llama folders share (bench/compare_torch/make_model.py,
bench/cpu_8b/make_model.py): the parameter list of a config and the safetensors header.

param_shapes(cfg): (name, shape) of every parameter of a Hugging Face LlamaForCausalLM config
dict, in Hugging Face's order (no lm_head when tie_word_embeddings).
safetensors_header(tensors): the 8-byte length + JSON header (padded with spaces to 8 bytes) of
a file holding `tensors` [(name, shape)] as BF16 in that order, and the bytes of data after it.
"""
import json
import struct


def param_shapes(cfg):
    """(name, shape) of every parameter, in Hugging Face's order."""
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D = C // cfg["num_attention_heads"]
    QD, KVD = cfg["num_attention_heads"] * D, cfg["num_key_value_heads"] * D
    out = [("model.embed_tokens.weight", [V, C])]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", [C]),
                (p + "self_attn.q_proj.weight", [QD, C]),
                (p + "self_attn.k_proj.weight", [KVD, C]),
                (p + "self_attn.v_proj.weight", [KVD, C]),
                (p + "self_attn.o_proj.weight", [C, QD]),
                (p + "post_attention_layernorm.weight", [C]),
                (p + "mlp.gate_proj.weight", [I, C]),
                (p + "mlp.up_proj.weight", [I, C]),
                (p + "mlp.down_proj.weight", [C, I])]
    out.append(("model.norm.weight", [C]))
    if not cfg["tie_word_embeddings"]:
        out.append(("lm_head.weight", [V, C]))
    return out


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def safetensors_header(tensors):
    """(header bytes to write first, data bytes that follow) for BF16 `tensors` in order."""
    hdr, off = {}, 0
    for name, shape in tensors:
        n = numel(shape) * 2
        hdr[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    hdr["__metadata__"] = {"format": "pt"}
    raw = json.dumps(hdr).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw, off
