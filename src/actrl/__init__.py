"""actrl: Agentic Critical Training (ACT) for LLM agents.

Stages: expert trajectories -> critic pairs -> ACT (GRPO on "which action is better?") ->
IL (SFT) -> optional RL (GRPO on next action) -> evaluation in the environment.
"""

__version__ = "0.1.0"
