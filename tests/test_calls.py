"""Bare network time sampled during the solve (priors/calls.py): which calls are timed, what is
taken out of the wall time, and that the solve itself is untouched."""
import time

import pytest
import torch

from ipbench import physics
from ipbench.methods import latino
from ipbench.priors.calls import CallLog, bare_seconds


def _sleeper(seconds, calls):
    def net(z):
        calls.append(z.clone())
        time.sleep(seconds)
        return z
    return net


def test_bare_replays_follow_the_schedule_and_skip_the_warm_up():
    log, seen = CallLog().interleave(every=5, reps=3), []
    net = _sleeper(0.0, seen)
    for _ in range(20):
        log.record("denoiser", net, torch.zeros(2, 3))
    key = ("denoiser", ((2, 3),), ())
    # replays before calls 1-4 (call 1's is a warm-up) and 5, 10, 15, 20
    assert len(seen) == 8 and [n for n, _ in log.samples[key]] == [2, 3, 4, 5, 10, 15, 20] and log.counts[key] == 20
    assert all(not torch.equal(z, torch.zeros(2, 3)) for z in seen)      # random inputs of the call's shape


def test_long_calls_end_the_dense_stretch_after_two_samples():
    """Calls of 30 ms with dense_s = 50 ms: the warm-up and two samples (60 ms), then every 5th call only."""
    log, seen = CallLog().interleave(every=5, reps=8, dense_s=0.05), []
    for _ in range(12):
        log.record("video denoiser", _sleeper(0.03, seen), torch.zeros(1))
    key = ("video denoiser", ((1,),), ())
    assert [n for n, _ in log.samples[key]] == [2, 3, 5, 10] and len(seen) == 5


def test_each_call_takes_the_time_of_its_latest_sample():
    """Samples at calls 2, 5, 10, 15, 20 of 20 (1 s, 2 s, ...): calls 1-4 take 1 s, 5-9 2 s, ..., 20 5 s."""
    log, key = CallLog(), ("denoiser", ((1,),), ())
    log.counts[key], log.fns[key] = 20, None
    log.samples[key] = [(2, 1.0), (5, 2.0), (10, 3.0), (15, 4.0), (20, 5.0)]
    assert bare_seconds(log) == {"denoiser": 4 * 1.0 + 5 * 2.0 + 5 * 3.0 + 5 * 4.0 + 1 * 5.0}


def test_interleaved_bare_time_and_the_time_taken_out_of_the_wall_time():
    """A 'solver' of 12 network calls (20 ms each) with 10 ms of its own work per step: overhead 1.5. Compared
    with the times the sleeps actually took, so that a loaded machine's late wake-ups do not fail it."""
    log, seen = CallLog().interleave(every=1, reps=0), []
    net = _sleeper(0.02, seen)
    start, own = time.perf_counter(), 0.0
    for _ in range(12):
        log.record("denoiser", net, torch.zeros(1))
        t = time.perf_counter()
        time.sleep(0.02)            # the solver's own call
        time.sleep(0.01)            # the loop around it
        own += time.perf_counter() - t
    wall = time.perf_counter() - start - log.replay_s
    bare = sum(bare_seconds(log).values())
    assert len(seen) == 12 and log.replay_s >= 12 * 0.02
    assert bare == pytest.approx(log.replay_s, rel=0.2)     # 12 calls at the replays' time (one replay: warm-up)
    assert wall == pytest.approx(own, abs=0.02)             # the replays, and nothing else, taken out
    assert own >= 12 * 0.03


def test_a_signature_never_replayed_during_the_solve_is_timed_after_it():
    log, seen = CallLog(), []
    for _ in range(3):
        log.record("decoder", _sleeper(0.0, seen), torch.zeros(4))
    assert seen == [] and log.replay_s == 0
    assert set(bare_seconds(log, reps=2)) == {"decoder"} and len(seen) == 3     # a warm-up and 2 timed calls


def test_interleaved_timing_leaves_the_solve_and_the_global_rng_unchanged(tiny_consistency_prior):
    prior = tiny_consistency_prior
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.01)
    y = op.measure(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(5)),
                   torch.Generator().manual_seed(6))
    runs = []
    for every in (0, 1):
        prior.calls.clear()
        prior.calls.interleave(every)
        torch.manual_seed(123)
        x_hat = latino.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)], steps=4)
        runs.append((x_hat, torch.rand(3), prior.calls.replay_s, dict(prior.calls.samples)))
    prior.calls.interleave(0)
    (x0, r0, replay0, samples0), (x1, r1, replay1, samples1) = runs
    assert torch.equal(x0, x1) and torch.equal(r0, r1)
    assert replay0 == 0 and not samples0 and replay1 > 0
    # every signature called more than once has bare samples from the solve; the text encoder, called once
    # (its replay the warm-up), is timed after it
    assert {name for name, _, _ in samples1} == {"encoder", "denoiser", "decoder"}
    assert set(bare_seconds(prior.calls)) == {"text encoder", "encoder", "denoiser", "decoder"}


def test_a_solve_reports_its_network_calls_as_they_happen(capsys):
    """The progress line counts the calls (every call, whatever the interleaved timing) and ends with them."""
    log = CallLog().progress("ddrm on px_sr4, 3 images", mininterval=0)
    x = torch.randn(2, 3)
    for _ in range(7):
        log.record("eps", lambda a: a * 2, x)
    log.close_progress()
    err = capsys.readouterr().err
    assert "ddrm on px_sr4, 3 images" in err and "7 network calls" in err
    assert sum(log.counts.values()) == 7 and log._bar is None
