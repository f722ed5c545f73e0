"""The online learner: logged decisions with rewards → VW updates.

Used by the service's learner process (one per experiment at a time) and by benchmarks.
One ``OnlineLearner`` owns one VW workspace; it is not thread-safe and is meant for one
process and one thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import pylibvw

from bandits.features import NO_TYPES, ActionLines, FeatureTypes, build_example
from bandits.policy import Actions, checked_pmf, workspace


def cost_from_reward(reward: float) -> float:
    """VW minimizes cost; Tailor maximizes reward. The one place where cost = -reward."""
    return 0.0 - float(reward)  # 0.0 - x, not -x: a zero reward gives cost 0, not -0


class OnlineLearner:
    """Learn a ``--cb_explore_adf`` model one logged decision at a time.

    Attributes:
        examples_learned: updates applied since construction (not counting any history
            inside ``model_bytes``).
        arguments: the VW arguments.
    """

    def __init__(self, arguments: str, model_bytes: bytes | None = None,
                 types: FeatureTypes = NO_TYPES) -> None:
        """Create a fresh model, or continue from a snapshot.

        Args:
            arguments: VW arguments, e.g. from ``exploration.vw_arguments``.
            model_bytes: a snapshot from ``to_bytes`` to continue learning from.
            types: the experiment's declared field kinds (``feature_types``).
        """
        self.arguments = arguments
        self.types = types
        self.examples_learned = 0
        self._workspace = workspace(arguments, model_bytes)
        self._action_lines = ActionLines()

    def predict(self, context: Mapping[str, Any], actions: Actions) -> list[float]:
        """The current model's pmf over ``actions`` (no learning)."""
        lines = build_example(context, actions, types=self.types)
        return checked_pmf(self._workspace.predict(lines), len(actions))

    def learn(
        self,
        context: Mapping[str, Any],
        actions: Actions,
        chosen_index: int,
        reward: float,
        probability: float,
    ) -> float:
        """Update on one logged decision.

        Args:
            context: the decision's context.
            actions: the actions offered, in the logged order.
            chosen_index: index of the action shown.
            reward: the joined reward (higher is better).
            probability: the propensity logged at rank time for the chosen action.

        Returns:
            The probability the model gave ``chosen_index`` *before* this update
            (progressive validation: ``reward * returned / probability`` is an unbiased
            IPS term for the model as it was when the decision arrived).

        Raises:
            FeatureError: input that cannot be encoded.
            ValueError: a chosen index out of range or probability outside (0, 1].
        """
        label = (chosen_index, cost_from_reward(reward), probability)
        lines = build_example(context, actions, label, lines=self._action_lines,
                              types=self.types)
        # pylibvw directly, as `Policy.predict_lines` does and for the same reason: the
        # Workspace methods wrap each line in a Python Example and check their arguments,
        # which cost more than VW's predict and learn (bench.rank --learner).
        text = "\n".join(lines).replace("\r", "").strip()
        workspace = self._workspace
        examples = pylibvw.vw._parse(workspace, text)
        try:
            pylibvw.vw.predict_multi(workspace, examples)
            before = checked_pmf(list(examples[0].get_action_scores()),
                                 len(actions))[chosen_index]
            pylibvw.vw.learn_multi(workspace, examples)
        finally:
            pylibvw.vw._finish_example_multi_ex(workspace, examples)
        self.examples_learned += 1
        return before

    def to_bytes(self) -> bytes:
        """Snapshot the model (VW saves to files only: write a temporary file, read it)."""
        with tempfile.TemporaryDirectory(prefix="tailor-vw-") as directory:
            path = os.path.join(directory, "model.vw")
            self._workspace.save(path)
            with open(path, "rb") as handle:
                return handle.read()

    def close(self) -> None:
        """Release the workspace."""
        self._workspace.finish()
