"""The service's work gate and batcher, driven directly."""

import asyncio
import threading

import numpy as np
import pytest
from fastapi import HTTPException

from fashion.service.workload import Batcher, WorkGate


def test_work_gate_is_first_come_first_served_and_bounded():
    async def scenario():
        gate, order = WorkGate(budget=100, slots=2, max_waiting=2), []

        async def request(name, nbytes, hold):
            async with gate.claim(nbytes):
                order.append(name)
                await asyncio.sleep(hold)

        big = asyncio.create_task(request("big", 100, 0.05))  # takes the whole budget
        await asyncio.sleep(0)
        small = [asyncio.create_task(request(f"small{i}", 1, 0)) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(HTTPException) as refused:  # two wait already
            await request("third", 1, 0)
        await asyncio.gather(big, *small)
        return order, refused.value, gate.in_use

    order, refused, in_use = asyncio.run(scenario())
    assert order == ["big", "small0", "small1"] and in_use == 0
    assert refused.status_code == 503 and refused.headers == {"Retry-After": "1"}


@pytest.mark.parametrize("released_first", [False, True], ids=["then-release", "release-first"])
def test_a_client_that_leaves_while_waiting_frees_its_place(released_first):
    async def scenario():
        gate = WorkGate(budget=100, slots=1, max_waiting=1)
        async with gate.claim(100):
            waiting = asyncio.create_task(gate.claim(100).__aenter__())
            await asyncio.sleep(0)
            waiting.cancel()  # its handler runs at the next await...
            if not released_first:
                await asyncio.gather(waiting, return_exceptions=True)
        # ...or after the release above has met its cancelled place in the queue
        await asyncio.gather(waiting, return_exceptions=True)
        async with gate.claim(100):  # neither the queue nor the budget kept the leaver
            return gate.in_use, len(gate._waiting)

    assert asyncio.run(scenario()) == (100, 0)


def test_concurrent_requests_are_scored_in_one_pass():
    class Held:
        """A model whose first pass runs until the test lets it finish."""

        def __init__(self):
            self.calls, self.running, self.release = [], threading.Event(), threading.Event()

        def probabilities(self, images):
            self.calls.append(len(images))
            self.running.set()
            assert self.release.wait(30), "the test never let the pass finish"
            return np.repeat(np.stack(images).reshape(len(images), -1)[:, :1], 10, axis=1)

    model = Held()

    async def scenario():
        batcher = Batcher(model)
        images = [np.full((1, 28, 28), i, np.float32) for i in range(6)]
        first = asyncio.create_task(batcher.probabilities(images[0]))
        assert await asyncio.to_thread(model.running.wait, 30)  # the first pass runs...
        rest = [asyncio.create_task(batcher.probabilities(x)) for x in images[1:]]
        await asyncio.sleep(0)  # ...the rest arrive and queue meanwhile...
        model.release.set()  # ...and it ends
        return [await first, *await asyncio.gather(*rest)]

    results = asyncio.run(scenario())
    assert [r[0, 0] for r in results] == [0, 1, 2, 3, 4, 5]
    assert model.calls == [1, 5]  # the first alone, the five that came during it together
