"""Priors of the suite: the embedded digit networks, weight storage and (later) the generative priors."""
