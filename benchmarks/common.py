"""What the benchmark scripts share: one subprocess per measurement, peak memory."""

import json
import os
import subprocess
import sys


def cpu_name():
    """The CPU's model name and its widest vector ISA, e.g. ``Intel(R) Xeon(R) Processor
    (AVX-512, AMX)``: speed figures are only comparable on the same kind of CPU."""
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if name and flags:
                    break
    except OSError:
        pass
    isa = [label for flag, label in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("amx_tile", "AMX"))
           if flag in flags]  # fmt: skip
    return f"{name} ({', '.join(isa) or 'no AVX2'})"


def peak_rss_mib():
    """Peak resident memory of this process, in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script, job):
    """Runs ``script --worker JSON`` in a fresh Python and returns its last JSON line."""
    out = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(job)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker_main(handlers):
    """If called as a worker, runs the job and prints its JSON result; returns True then."""
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        job = json.loads(sys.argv[2])
        print(json.dumps(handlers[job.pop("kind")](**job)))
        return True
    return False
