#!/usr/bin/env python3
"""Reads an experiment's event files back with TensorBoard's own reader, as
`tensorboard --logdir DIR` would, and prints what it found as JSON:
{"runs": {run: {"scalars": {tag: [[step, value], ...]}, "text": {tag: str}}}}.
The tests compare that with the run's metrics.jsonl."""

import json
import sys

try:
    from tensorboard.backend.event_processing import event_multiplexer
    from tensorboard.util import tensor_util
except ImportError:
    sys.exit("tensorboard_read: the tensorboard package is missing; fix: pip install tensorboard")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tensorboard_read.py LOGDIR")
    # size_guidance 0: keep every event (the default samples scalars down to 1000).
    multiplexer = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0})
    multiplexer.AddRunsFromDirectory(sys.argv[1])
    multiplexer.Reload()
    runs = {}
    for run, tags in sorted(multiplexer.Runs().items()):
        acc = multiplexer.GetAccumulator(run)
        scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
        text = {}
        for t in tags["tensors"]:
            events = acc.Tensors(t)
            value = tensor_util.make_ndarray(events[-1].tensor_proto)
            text[t] = value.item().decode() if hasattr(value, "item") else str(value)
        runs[run] = {"scalars": scalars, "text": text}
    json.dump({"runs": runs}, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
