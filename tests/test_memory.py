"""The suite's CLI keeps freed memory (suite/memory.py): a loop of calls that allocate and free the same
large buffers stops page-faulting them in once warm."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import resource, torch
    from ipbench.suite.memory import keep_freed_memory
    applied = keep_freed_memory()
    def call(sizes):                                  # a network call: its activations, then freed
        return float(sum(torch.ones(n)[0] for n in sizes))
    def faults():
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        call([10_000_000] * 3); call([6_000_000] * 2)     # a decoder-like then an encoder-like call
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    print(applied, *[faults() for _ in range(10)])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_warm_calls_do_not_page_fault_their_buffers_again():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc: keep_freed_memory changes nothing")
    faults = [int(f) for f in out[1:]]
    pages = (3 * 10_000_000 + 2 * 6_000_000) * 4 // 4096          # one round touches ~41,000 pages
    assert sum(faults[:2]) > pages // 3                            # the first rounds map the buffers in
    assert sum(faults[2:]) < pages, faults          # the 8 warm rounds together fault in less than one
                                                    # round's pages (8 rounds' worth when each call maps anew)
