"""`fivecogs simulate`: a seeded scenario of partner events played on the running chain, and an independent model
of docs/rules.md that says what the chain must answer and what its report must then read."""

from fivecogs_ops.simulate.runner import Progress, SimulationResult, StepTiming, run_simulation
from fivecogs_ops.simulate.scenario import Scenario, Step, build_scenario

__all__ = ["Progress", "Scenario", "SimulationResult", "Step", "StepTiming", "build_scenario", "run_simulation"]
