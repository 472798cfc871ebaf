"""The chat client inside a real Jupyter kernel, with and without ``nest_asyncio.apply()`` first.

A ChatRoom on the kernel's own loop works with top-level ``await``; a BackgroundChatRoom keeps
receiving while a cell is busy, because its loop runs on its own thread. The sandbox runs in this
test process; the kernel reaches it through the environment variables boto3 reads.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from ivs_widgets.chat import BackgroundChatRoom
from ivs_widgets.sandbox import Sandbox

#: Longest wait for one cell (or the kernel's start); a cold kernel imports boto3 and websockets.
TIMEOUT = 60.0


@pytest.fixture(params=[False, True], ids=["plain", "nest_asyncio"])
def nested(request: pytest.FixtureRequest) -> bool:
    """Whether the kernel applies ``nest_asyncio`` before anything else."""
    return request.param


@pytest.fixture
def kernel(nested: bool, sandbox: Sandbox) -> Iterator[BlockingKernelClient]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, **sandbox.environment()})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=TIMEOUT)
        if nested:
            execute(client, "import nest_asyncio\nnest_asyncio.apply()")
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client: BlockingKernelClient, code: str, *, started: Any = None) -> str:
    """Run a cell and return its printed output; ``started(text)`` is called with the first output."""
    msg_id = client.execute(textwrap.dedent(code))
    output: list[str] = []
    while True:
        message = client.get_iopub_msg(timeout=TIMEOUT)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            if not output and started is not None:
                started(content["text"])
            output.append(content["text"])
        elif kind == "error":
            raise AssertionError("cell failed:\n" + "\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(output)


def test_chat_in_a_kernel(kernel: BlockingKernelClient, nested: bool, sandbox: Sandbox,
                          room: dict[str, Any]) -> None:
    execute(kernel, f"""
        import asyncio, threading, boto3
        from ivs_widgets.chat import BackgroundChatRoom, ChatRoom
        client = boto3.client("ivschat")  # pointed at the sandbox by the environment
        URL = {sandbox.messaging_endpoint!r}

        def provider(user):
            return lambda: client.create_chat_token(roomIdentifier={room["arn"]!r}, userId=user,
                                                    capabilities=["SEND_MESSAGE"])
    """)

    # A room on the kernel's own loop, driven by top-level await.
    assert execute(kernel, """
        chat = ChatRoom(URL, provider("notebook"))
        await chat.connect()
        print(chat.state.value, (await chat.send_message("top-level await")).content)
    """) == "connected top-level await\n"

    # With nest_asyncio, the loop can also be driven re-entrantly from synchronous code.
    if nested:
        assert execute(kernel, """
            print(asyncio.get_event_loop().run_until_complete(chat.send_message("nested")).content)
        """) == "nested\n"

    # A background room, and a cell that stays busy while a message arrives from outside.
    assert execute(kernel, """
        heard = threading.Event()
        background = BackgroundChatRoom(URL, provider("widget"))
        background.connect()
        background.on("message", lambda message: heard.set() if message.content == "while busy" else None)
        print(background.state.value, background.send_message("blocking send").content)
    """) == "connected blocking send\n"

    with BackgroundChatRoom(sandbox.messaging_endpoint, lambda: sandbox.client().create_chat_token(
            roomIdentifier=room["arn"], userId="outside", capabilities=["SEND_MESSAGE"])) as outside:
        busy_output = execute(kernel, """
            print("busy", flush=True)
            print("heard while busy:", heard.wait(30))
        """, started=lambda text: outside.send_message("while busy"))
    assert busy_output == "busy\nheard while busy: True\n"

    assert execute(kernel, """
        await chat.disconnect()
        background.close()
        print(chat.state.value, background.state.value)
    """) == "disconnected disconnected\n"
