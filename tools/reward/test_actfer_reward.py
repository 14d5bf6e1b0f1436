"""Tests of the Python entry points against the Rust core (run by `cargo test --release` through
tests/integration/python_reward.rs, with ACTFER_BIN set to the binary of that build)."""

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actfer_reward as ar  # noqa: E402

PERFECT = '<think>cheeks and mouth corners rise</think><answer>{"emotion": "happy", "aus": ["AU6", "AU12"]}</answer>'
SAD = '<think>brows</think><answer>{"emotion": "sadness", "aus": ["AU1", "AU4", "AU15"]}</answer>'
BROKEN = '<think>x</think><answer>{"emotion": "happy", "aus": ["AU6", "AU6"]}</answer>'


class RewardFnTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        config = Path(self.dir.name) / "unit.toml"
        config.write_text("[weights]\nformat = 1.0\nregion = 1.0\nau = 1.0\nconsistency = 1.0\nemotion = 1.0\n"
                          "utility = 1.0\nwords = 1.0\n[calibration]\nalpha = 0.5\nbeta = 0.5\n")
        self.state = Path(self.dir.name) / "state.json"
        self.srv = ar.RewardServer(config=config, state=self.state)
        ar._server = self.srv

    def tearDown(self):
        self.srv.close()
        ar._server = None
        self.dir.cleanup()

    def test_trl_signature_and_hand_values(self):
        # The group of src/reward/tests.rs: totals 487/60, 53/15, 0 (unit weights, alpha 0.5; each
        # thought passes the words checks).
        prompts = ["Which emotion?"] * 3
        out = ar.reward_fn(prompts, [PERFECT, SAD, BROKEN], emotion=["happiness"] * 3, aus=[["AU6", "AU12"]] * 3,
                           zoomed=[True, False, False])
        self.assertEqual(len(out), 3)
        for got, want in zip(out, [487 / 60, 53 / 15, 0.0]):
            self.assertAlmostEqual(got, want, places=12)
        # The state advanced: Ubar_happiness = 0.5 * 127/30.
        state = json.loads(self.state.read_text())
        self.assertAlmostEqual(state["classes"]["happiness"]["ubar"], 127 / 60, places=12)
        self.assertEqual(state["batches"], 1)

    def test_conversational_completions_and_tool_calls(self):
        calls = ('{"tool": "zoom", "args": {"region": "l_mouth_corner"}}\n'
                 '{"tool": "final_answer", "args": {"emotion": "happiness", "aus": ["AU6", "AU12"]}}')
        completions = [[{"role": "assistant", "content": calls}], [{"role": "assistant", "content": PERFECT}]]
        answer = ar.score_batch(["p", "p"], completions, emotion=["happy", "happy"], aus=['["AU6", "AU12"]'] * 2)
        scores = answer["scores"]
        self.assertEqual([s["zoomed"] for s in scores], [True, False])
        self.assertEqual([s["terms"]["format"] for s in scores], [1.0, 1.0])
        self.assertEqual(answer["groups"][0]["utility"], 0.0)

    def test_verl_compute_score(self):
        score = ar.compute_score("synthme", PERFECT, {"emotion": "happiness", "aus": ["AU6", "AU12"]})
        self.assertAlmostEqual(score, 6.0)
        self.assertEqual(ar.compute_score("synthme", "no answer", '{"emotion": "sad", "aus": []}'), 0.0)
        # format, region, au, consistency, emotion, words
        self.assertAlmostEqual(ar.compute_score("synthme", SAD, "sadness"), 1 + 0 + 0 + 1 + 1 + 1)
        # a thought that names another emotion than the answer's halves words (think and text)
        smile = ('<think>a smile</think><answer>{"emotion": "sadness", "aus": ["AU1", "AU4", "AU15"], '
                 '"text": "the brows rise"}</answer>')
        self.assertAlmostEqual(ar.compute_score("synthme", smile, "sadness"), 1 + 0 + 0 + 1 + 1 + 0.5)

    def test_bad_labels_raise_with_the_reason(self):
        with self.assertRaises(ar.RewardError) as cm:
            ar.reward_fn(["p"], [PERFECT], emotion=["joyful"])
        self.assertIn("unknown emotion", str(cm.exception))
        with self.assertRaises(ar.RewardError):
            ar.reward_fn(["p"], [PERFECT])
        # The server survives a bad request.
        self.assertEqual(len(ar.reward_fn(["p"], [PERFECT], emotion=["happy"], aus=[["AU6", "AU12"]])), 1)


if __name__ == "__main__":
    if not os.environ.get("ACTFER_BIN"):
        print("note: ACTFER_BIN unset; using", ar.find_binary(), file=sys.stderr)
    unittest.main()
