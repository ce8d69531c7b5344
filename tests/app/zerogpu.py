"""A stand-in for Hugging Face's `spaces.GPU` on ZeroGPU, for tests: each call of a decorated function runs in a
process forked with multiprocessing's "fork" context; its arguments and its result (a generator's every item) are
pickled across, as `spaces/zero/wrappers.py` does. A generator the caller stops reading (closed) sets an event that
the worker checks after computing its next item, then it stops: ZeroGPU's `stop_event`.

What the package does and this does not: reuse an idle worker for the next call (ours forks one per call, which is
the stricter test: nothing a worker did survives it), schedule the GPU, move `.to("cuda")` models to it. Like the
package, it leaves the worker's torch threads as the fork left them: making a forked worker's CPU work safe is the
tasks' job (`app.gpu.fork_safe`).
"""

from __future__ import annotations

import functools
import inspect
import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

FORK = multiprocessing.get_context("fork")


@dataclass
class Call:
    """One call as the stand-in saw it: the task's name, the seconds its `duration` asked for, the pickled bytes of
    its arguments and of everything it sent back, and how many items it sent."""

    task: str
    seconds: float | None
    sent: int
    received: int = 0
    items: int = 0


@dataclass
class ForkedGpu:
    """`spaces.GPU`'s signature: `gpu(task)` or `gpu(duration=seconds_or_callable)(task)`; `calls` records them."""

    calls: list[Call] = field(default_factory=list)

    def __call__(self, task: Callable[..., Any] | None = None, *, duration: Any = None) -> Any:
        if task is None:
            return functools.partial(self, duration=duration)
        if inspect.isgeneratorfunction(task):
            return self._generator(task, duration)
        return self._regular(task, duration)

    def _start(self, task: Callable[..., Any], duration: Any, args: tuple, kwargs: dict, generator: bool):
        seconds = duration(*args, **kwargs) if callable(duration) else duration
        payload = pickle.dumps((args, kwargs))
        call = Call(task.__name__, seconds, len(payload))
        self.calls.append(call)
        receiver, sender = FORK.Pipe(duplex=False)
        stop = FORK.Event()
        worker = FORK.Process(target=_work, args=(task, payload, sender, stop, generator), daemon=True)
        worker.start()
        sender.close()  # the worker holds the only writing end: its exit ends our reads
        return call, receiver, stop, worker

    def _regular(self, task: Callable[..., Any], duration: Any) -> Callable[..., Any]:
        @functools.wraps(task)
        def call(*args: Any, **kwargs: Any) -> Any:
            record, receiver, _, worker = self._start(task, duration, args, kwargs, generator=False)
            try:
                kind, value = _receive(receiver, record)
            finally:
                receiver.close()
                worker.join()
            if kind == "error":
                raise value
            return value

        return call

    def _generator(self, task: Callable[..., Any], duration: Any) -> Callable[..., Iterator[Any]]:
        @functools.wraps(task)
        def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            record, receiver, stop, worker = self._start(task, duration, args, kwargs, generator=True)
            try:
                while True:
                    kind, value = _receive(receiver, record)
                    if kind == "error":
                        raise value
                    if kind == "end":
                        return
                    record.items += 1
                    yield value
            finally:
                stop.set()  # the caller stopped reading (or the task ended): the worker stops after its next item
                receiver.close()  # a worker blocked writing gets a broken pipe and ends
                worker.join()

        return call


def _receive(receiver: Any, record: Call) -> tuple[str, Any]:
    try:
        data = receiver.recv_bytes()
    except EOFError:
        return "error", RuntimeError("ZeroGPU stand-in: the worker died without an answer")
    record.received += len(data)
    kind, value = pickle.loads(data)
    return kind, value


def _work(task: Callable[..., Any], payload: bytes, sender: Any, stop: Any, generator: bool) -> None:
    """The worker: the call, its answers pickled back."""
    try:
        args, kwargs = pickle.loads(payload)
        if not generator:
            sender.send_bytes(pickle.dumps(("ok", task(*args, **kwargs))))
            return
        items = task(*args, **kwargs)
        for item in items:
            if stop.is_set():  # what ZeroGPU checks after each item the task yields
                items.close()
                break
            sender.send_bytes(pickle.dumps(("item", item)))
        sender.send_bytes(pickle.dumps(("end", None)))
    except BrokenPipeError:
        return  # the caller has gone
    except Exception as error:  # handed to the caller, which raises it, as ZeroGPU does
        try:
            sender.send_bytes(pickle.dumps(("error", error)))
        except BrokenPipeError:
            return
    finally:
        sender.close()
