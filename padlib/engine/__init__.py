"""Training engine: loop, evaluation, samplers, distributed set-up, AMP, optimizer, preemption."""
