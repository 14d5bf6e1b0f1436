"""UC-GRPO rewards from Python, backed by the Rust core (`actfer reward --serve`).

Standard library only. One long-lived `actfer reward --serve` process per `RewardServer`; every
call sends one JSON line (one batch: the calibration state advances once per call) and reads
one back.

- `reward_fn(prompts, completions, **kwargs) -> list[float]`: the signature TRL's
  `GRPOTrainer(reward_funcs=[reward_fn])` calls. Labels come from the dataset columns TRL passes
  as keyword lists, one entry per completion: `emotion` (required), `aus` (list, or a JSON
  string; default none), and optionally `sample`, `group` (default: one group per distinct
  prompt), `zoomed` (default: read from the completion's tool calls).
- `compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float`: verl's
  reward-function signature; `ground_truth` is `{"emotion": ..., "aus": [...]}` (a dict or its
  JSON text) or a bare emotion label.

The binary is `$ACTFER_BIN`, else `actfer` on PATH, else `target/release/actfer` of this
repository. `$ACTFER_REWARD_CONFIG` and `$ACTFER_REWARD_STATE` set `--config` and `--state`.
"""

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class RewardError(RuntimeError):
    """The server refused a request, or some rollouts could not be scored."""


def find_binary():
    env = os.environ.get("ACTFER_BIN")
    if env:
        return env
    on_path = shutil.which("actfer")
    if on_path:
        return on_path
    local = REPO / "target" / "release" / "actfer"
    if local.is_file():
        return str(local)
    raise RewardError("actfer binary not found: set ACTFER_BIN or build with `cargo build --release`")


class RewardServer:
    """A running `actfer reward --serve`; `score()` sends one batch and returns the answer."""

    def __init__(self, binary=None, config=None, state=None):
        cmd = [binary or find_binary(), "reward", "--serve"]
        config = config or os.environ.get("ACTFER_REWARD_CONFIG")
        state = state or os.environ.get("ACTFER_REWARD_STATE")
        if config:
            cmd += ["--config", str(config)]
        if state:
            cmd += ["--state", str(state)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()

    def score(self, rollouts, labels, strict=False):
        """Scores one batch: lists of rollout and label dicts (the JSONL schemas). Returns the
        answer: {"scores": [...], "groups": [...], "summary": {...}, "problems": [...]}."""
        request = json.dumps({"rollouts": rollouts, "labels": labels, "strict": strict}, separators=(",", ":"))
        with self._lock:
            if self._proc.poll() is not None:
                raise RewardError(f"actfer reward --serve exited with code {self._proc.returncode}")
            self._proc.stdin.write(request + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RewardError("actfer reward --serve closed its output")
        answer = json.loads(line)
        if "error" in answer:
            raise RewardError(answer["error"])
        return answer

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_server = None


def server():
    """The module's shared server, started on first use."""
    global _server
    if _server is None:
        _server = RewardServer()
        atexit.register(_server.close)
    return _server


def completion_text(completion):
    """A completion as text: a string, or TRL's conversational form (a list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return completion.get("content", "")
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


def _aus(value):
    if value is None:
        return []
    if isinstance(value, str):
        return json.loads(value) if value.strip().startswith("[") else [a for a in value.replace(",", " ").split() if a]
    return list(value)


def _key(prompt):
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _column(kwargs, name, n):
    value = kwargs.get(name)
    if value is None:
        return None
    if len(value) != n:
        raise RewardError(f"column {name!r} has {len(value)} entries for {n} completions")
    return value


def score_batch(prompts, completions, srv=None, **kwargs):
    """Like `reward_fn`, but returns the server's whole answer (terms, groups, summary)."""
    n = len(completions)
    emotion = _column(kwargs, "emotion", n)
    if emotion is None:
        raise RewardError("reward_fn needs an 'emotion' column (the gold label of each completion)")
    aus = _column(kwargs, "aus", n) or [None] * n
    group = _column(kwargs, "group", n) or [_key(p) for p in prompts]
    sample = _column(kwargs, "sample", n) or list(group)
    zoomed = _column(kwargs, "zoomed", n)
    rollouts, labels, seen = [], [], set()
    for i in range(n):
        r = {"id": str(i), "group": str(group[i]), "sample": str(sample[i]), "completion": completion_text(completions[i])}
        if zoomed is not None:
            r["zoomed"] = bool(zoomed[i])
        rollouts.append(r)
        if str(sample[i]) not in seen:
            seen.add(str(sample[i]))
            labels.append({"sample": str(sample[i]), "emotion": emotion[i], "aus": _aus(aus[i])})
    return (srv or server()).score(rollouts, labels)


def reward_fn(prompts, completions, **kwargs):
    """TRL reward function: one total reward R_i per completion (TRL computes the advantages)."""
    answer = score_batch(prompts, completions, **kwargs)
    totals = {s["id"]: s["total"] for s in answer["scores"]}
    if len(totals) != len(completions):
        problems = "; ".join(f"{p['source']} item {p['line']}: {p['reason']}" for p in answer["problems"])
        raise RewardError(f"{len(completions) - len(totals)} completion(s) could not be scored: {problems}")
    return [totals[str(i)] for i in range(len(completions))]


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    """verl reward function: the total reward of one completion (a group of one)."""
    gt = ground_truth
    if isinstance(gt, str):
        gt = json.loads(gt) if gt.strip().startswith("{") else {"emotion": gt}
    extra = extra_info or {}
    kwargs = {"emotion": [gt["emotion"]], "aus": [gt.get("aus", [])]}
    if "zoomed" in extra:
        kwargs["zoomed"] = [extra["zoomed"]]
    sample = str(extra.get("sample", extra.get("index", "s")))
    return reward_fn([sample], [solution_str], sample=[sample], group=[sample], **kwargs)[0]
