"""The solvers under study (LATINO, LATINO-PRO, LVTINO, UD2M). Each module exposes
``solve(y, op, prior, *, generator, **hyper)``; they arrive with the generative priors."""
