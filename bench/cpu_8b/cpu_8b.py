"""An 8B model fine-tuned on this CPU: predicted (`badam plan`) against measured peak RSS.

Checks free disk space and available RAM first, writes a random Llama-3-8B-shaped bf16 folder
and a pre-tokenized dataset into a fresh temporary folder, runs

    badam train --method badam --recompute --no-checkpoint --max-steps 3 --seq-len 512 ...

and prints one table: the plan by category next to the run's tracked peaks (memory.json), the
measured peak RSS (the kernel's high-water mark of the train process, from wait4) against the
predicted total, seconds per step and tokens/s, the CPU and the RAM available at the start.
Everything it wrote is deleted on exit, also on failure, Ctrl-C or SIGTERM.

usage: cpu_8b.py --badam PATH [--shape 8b|8b-2l|1b|tiny] [--steps N] [--seq-len T] [--batch-size B]
                 [--dir PARENT] [--json FILE] [--force]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_model  # noqa: E402  (SHAPES and sizes only; torch is loaded in its own process)

GiB = 1 << 30
CATEGORIES = ["weights", "master", "gradients", "optimizer", "activations", "workspace"]


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def cpu_info():
    name, flags = "unknown", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and name == "unknown":
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    keep = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"]
    return name, [x for x in keep if x in flags]


class Children:
    """The processes this script started; all are stopped on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class RssSampler(threading.Thread):
    """Largest VmRSS, RssAnon and RssFile of one process seen in /proc/PID/status (every 0.2 s):
    RssFile shows pages of the mapped safetensors counted in RSS while the model loads."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}, False

    def run(self):
        path = f"/proc/{self.pid}/status"
        while not self.done:
            try:
                with open(path) as f:
                    for line in f:
                        k = line.split(":", 1)[0]
                        if k in self.peak:
                            self.peak[k] = max(self.peak[k], int(line.split()[1]) * 1024)
            except OSError:
                return
            time.sleep(0.2)


def badam_plan(badam, model, a):
    argv = [badam, "plan", "--model", model, "--method", "badam", "--recompute", "--seq-len",
            str(a.seq_len), "--batch-size", str(a.batch_size), "--json"]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)[
        "badam"]


def train_argv(badam, model, data, out, a, no_save):
    argv = [badam, "train", "--model", model, "--data", data, "--out", out, "--method", "badam",
            "--recompute", "--no-checkpoint", "--max-steps", str(a.steps), "--seq-len",
            str(a.seq_len), "--batch-size", str(a.batch_size), "--switch-mode", "ascending",
            "--format", "tokenized", "--quiet"]
    return argv + (["--no-save"] if no_save else [])


def supports_no_save(badam):
    h = subprocess.run([badam, "train", "--help"], capture_output=True, text=True)
    return "--no-save" in h.stdout + h.stderr


def check_disk(parent, need, what):
    free = shutil.disk_usage(parent).free
    if free < need:
        sys.exit(f"cpu_8b: needs about {need / 1e9:.1f} GB free in {parent} ({what}); "
                 f"{free / 1e9:.1f} GB are free. Use --dir to put it elsewhere.")
    return free


def run_train(children, argv, log_path):
    """Runs badam train; returns (exit status, wall seconds, ru_maxrss bytes, sampled peaks)."""
    t0 = time.time()
    with open(log_path, "w") as log:
        p = children.start(argv, stdout=log, stderr=subprocess.STDOUT)
        sampler = RssSampler(p.pid)
        sampler.start()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        sampler.done = True
    return p.returncode, time.time() - t0, ru.ru_maxrss * 1024, sampler.peak


def read_steps(path):
    with open(path) as f:
        return [json.loads(line) for line in f if '"step_s"' in line]


def summarize(a, plan, mem, steps, ru_peak, sampled, wall, start_info):
    cpu, flags = cpu_info()
    timed = steps[1:] if len(steps) > 1 else steps  # the first step also warms up
    step_s = sum(s["step_s"] for s in timed) / len(timed)
    tokens = sum(s["batch_tokens"] for s in timed)
    load_s = steps[0]["elapsed_s"] - steps[0]["step_s"]
    return {
        "shape": a.shape, "params": mem.get("params"),
        "batch_size": a.batch_size, "seq_len": a.seq_len, "steps": len(steps),
        "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
        "cpu": cpu, "cpu_flags": flags,
        "mem_total": start_info["MemTotal"], "mem_available_at_start": start_info["MemAvailable"],
        "predicted": {c: plan[c] for c in CATEGORIES} | {"total": plan["total"]},
        "tracked_peak": mem["measured_peak"], "memory_json_peak_rss": mem["peak_rss"],
        "peak_rss": ru_peak, "sampled_peak": sampled,
        "measured_over_predicted": ru_peak / plan["total"],
        "step_s": [s["step_s"] for s in steps], "mean_step_s": step_s,
        "tokens_per_s": tokens / sum(s["step_s"] for s in timed),
        "load_s": load_s, "wall_s": wall, "loss": [s.get("loss") for s in steps],
    }


def gib(x):
    return f"{x / GiB:.2f} GiB" if abs(x) >= GiB else f"{x / (1 << 20):.1f} MiB"


def print_table(r):
    p, t = r["predicted"], r["tracked_peak"]
    print(f"\nbench/cpu_8b: {r['shape']} shape, batch {r['batch_size']} x {r['seq_len']} tokens, "
          f"{r['steps']} steps, BAdam --recompute, block 0 active (backward through every layer)")
    print(f"CPU: {r['cpu']} ({', '.join(r['cpu_flags'])}), {r['threads']} threads; RAM "
          f"{gib(r['mem_available_at_start'])} available of {gib(r['mem_total'])} at the start\n")
    print("| memory | predicted (badam plan) | tracked peak (memory.json) |")
    print("| --- | --- | --- |")
    for c in CATEGORIES:
        print(f"| {c} | {gib(p[c])} | {gib(t.get(c, 0))} |")
    print(f"| **total** | **{gib(p['total'])}** | {gib(sum(t.get(c, 0) for c in CATEGORIES))} "
          "(sum of the per-category peaks) |")
    print()
    print("| result | value |")
    print("| --- | --- |")
    print(f"| measured peak RSS (wait4 ru_maxrss) | {gib(r['peak_rss'])} |")
    print(f"| peak RSS in memory.json (end of training) | {gib(r['memory_json_peak_rss'])} |")
    s = r["sampled_peak"]
    print(f"| sampled peaks: RSS / anonymous / file-backed | {gib(s['VmRSS'])} / "
          f"{gib(s['RssAnon'])} / {gib(s['RssFile'])} |")
    print(f"| measured / predicted | {r['measured_over_predicted']:.3f} (measured - predicted = "
          f"{gib(r['peak_rss'] - r['predicted']['total'])}) |")
    print(f"| seconds per step (each) | {', '.join(f'{x:.1f}' for x in r['step_s'])} |")
    print(f"| seconds per step (mean after the first) | {r['mean_step_s']:.1f} |")
    print(f"| tokens/s | {r['tokens_per_s']:.1f} |")
    print(f"| load (start to first step) / whole run | {r['load_s']:.1f} s / {r['wall_s']:.1f} s |")
    print("\nREADME row:")
    print(f"| {r['shape']} | {r['cpu']}, {r['threads']} threads | {r['batch_size']} x "
          f"{r['seq_len']} | {gib(r['predicted']['total'])} | {gib(r['peak_rss'])} | "
          f"{r['measured_over_predicted']:.3f} | {r['mean_step_s']:.1f} | "
          f"{r['tokens_per_s']:.1f} |")


def bench(a, work, children):
    model, out = os.path.join(work, "model"), os.path.join(work, "out")
    data = os.path.join(work, "train.jsonl")
    py = sys.executable
    subprocess.run([py, os.path.join(HERE, "make_model.py"), "--shape", a.shape, "--out", model,
                    "--seq", str(a.seq_len), "--config-only"], check=True)
    plan = badam_plan(a.badam, model, a)
    start_info = meminfo()
    need_ram = plan["total"] + GiB // 2
    print(f"cpu_8b: badam plan predicts {gib(plan['total'])}; {gib(start_info['MemAvailable'])} "
          "of RAM available", flush=True)
    if start_info["MemAvailable"] < need_ram and not a.force:
        sys.exit(f"cpu_8b: not enough available RAM for the run ({gib(need_ram)} wanted, "
                 f"{gib(start_info['MemAvailable'])} available); --force runs it anyway")
    t0 = time.time()
    p = children.start([py, os.path.join(HERE, "make_model.py"), "--shape", a.shape, "--out",
                        model, "--data", data, "--seq", str(a.seq_len), "--examples",
                        str(max(16, a.steps * a.batch_size))])
    if p.wait() != 0:
        sys.exit("cpu_8b: writing the model folder failed")
    print(f"cpu_8b: wrote {make_model.folder_bytes(a.shape) / 1e9:.1f} GB of random bf16 weights "
          f"in {time.time() - t0:.0f} s; training {a.steps} steps", flush=True)
    argv = train_argv(a.badam, model, data, out, a, a.no_save)
    rc, wall, ru_peak, sampled = run_train(children, argv, os.path.join(work, "train.log"))
    with open(os.path.join(work, "train.log")) as f:
        log = f.read()
    if rc != 0:
        sys.exit(f"cpu_8b: badam train failed (exit {rc}):\n{log}")
    with open(os.path.join(out, "memory.json")) as f:
        mem = json.load(f)
    steps = read_steps(os.path.join(out, "metrics.jsonl"))
    r = summarize(a, plan, mem, steps, ru_peak, sampled, wall, start_info)
    print_table(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--badam", required=True, help="the badam binary")
    ap.add_argument("--shape", default="8b", choices=sorted(make_model.SHAPES))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary folder goes")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--force", action="store_true", help="run even if RAM looks too small")
    a = ap.parse_args()
    if a.steps < 1 or a.seq_len < 2 or a.batch_size < 1:
        ap.error("--steps and --batch-size must be at least 1, --seq-len at least 2")
    a.badam = os.path.abspath(a.badam)
    a.no_save = supports_no_save(a.badam)
    weights = make_model.folder_bytes(a.shape)
    need = weights * (1 if a.no_save else 2) + GiB
    what = "the model folder" + ("" if a.no_save else " and the trained model train saves")
    free = check_disk(a.dir, need, what)
    print(f"cpu_8b: {free / 1e9:.1f} GB free in {a.dir}, {need / 1e9:.1f} GB needed"
          + ("" if a.no_save else " (badam train has no --no-save: the trained model is written "
             "too, then deleted)"), flush=True)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    children = Children()
    work = tempfile.mkdtemp(prefix="badam-cpu8b-", dir=a.dir)
    try:
        bench(a, work, children)
    except Interrupted as e:
        print(f"cpu_8b: stopped by {e}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        print(f"cpu_8b: deleted {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
