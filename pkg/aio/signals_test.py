import asyncio
import os
import signal

from pkg.aio.signals import serve_until_signalled


def test_a_signal_cancels_the_server_which_cleans_up_and_returns():
    cleaned = []

    async def server():
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    async def main():
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(10):
            await serve_until_signalled(server())

    asyncio.run(main())
    assert cleaned == [True]
