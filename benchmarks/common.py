"""What the benchmark scripts share: one subprocess per measurement, peak memory."""

import json
import os
import subprocess
import sys


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
