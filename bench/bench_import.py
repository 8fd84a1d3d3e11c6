"""Time the WebUI's loading of scripts/tagger.py (what the extension adds to start-up).

Each run is a fresh interpreter with the host double and, as in the host, gradio and fastapi
already imported; only ``load_scripts([scripts/tagger.py])`` is timed, in wall and CPU time (CPU time is what
the extension costs; wall time also counts waiting for a busy machine). Target: <= 30 ms.

    .venvs/a1111/bin/python bench/bench_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 30.0

PROBE = """
import sys, time
sys.path.insert(0, {root!r})
import gradio, fastapi, pydantic  # loaded by the host before extensions
from tests.host_double.harness import install
install()
from modules import scripts
before = len(sys.modules)
t0, c0 = time.perf_counter(), time.process_time()
scripts.load_scripts([scripts.ScriptFile({root!r}, "tagger.py", {script!r})])
elapsed, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
print(f"{{elapsed:.3f}} {{cpu:.3f}} {{len(sys.modules) - before}} {{int('torch' in sys.modules)}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    code = PROBE.format(root=str(ROOT), script=str(ROOT / "scripts" / "tagger.py"))
    times, cpu_times, modules, torch_loaded = [], [], 0, 0
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        ms, cpu_ms, added, torch = out.stdout.strip().splitlines()[-1].split()
        times.append(float(ms))
        cpu_times.append(float(cpu_ms))
        modules, torch_loaded = int(added), int(torch)
    import gradio

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"gradio {gradio.__version__}, {os.cpu_count()} CPUs, load average {load:.1f}")
    print("| what | runs | wall median ms | wall min ms | CPU median ms | modules added | torch imported | target |")
    print("|---|---|---|---|---|---|---|---|")
    verdict = "ok" if statistics.median(cpu_times) <= TARGET_MS else "OVER"
    print(f"| load scripts/tagger.py | {args.runs} | {statistics.median(times):.1f} | {min(times):.1f} | "
          f"{statistics.median(cpu_times):.1f} | {modules} | {'yes' if torch_loaded else 'no'} | "
          f"<= {TARGET_MS:.0f} ms (CPU) {verdict} |")


if __name__ == "__main__":
    main()
