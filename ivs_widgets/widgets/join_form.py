"""``JoinForm``: the attendee's page of a workshop (URL, room code, fingerprint, name, Join).

The presenter serves ``notebooks/10-workshop-join-page.ipynb`` with Voila, so attendees need a
browser and nothing else. Whatever the presenter put in ``IVS_WORKSHOP_URL``, ``IVS_WORKSHOP_CODE``
and ``IVS_WORKSHOP_FINGERPRINT`` is filled in already; attendees type their name and click Join.
The form then gives its place to the room's live stream and chat (or the chat alone when the room
has no stream). A failed join says what went wrong in words and leaves the form as it was.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import ipywidgets

from ivs_widgets import workshop
from ivs_widgets.colab import enable_custom_widgets

#: The environment variables a presenter sets before ``voila``, so attendees only type their name.
URL_VARIABLE, CODE_VARIABLE, FINGERPRINT_VARIABLE = "IVS_WORKSHOP_URL", "IVS_WORKSHOP_CODE", "IVS_WORKSHOP_FINGERPRINT"

UNCHECKED = ("The certificate was not checked (no fingerprint): you trusted whatever answered at {url}. "
             "Ask the presenter for the fingerprint to be sure it is their sandbox.")


class JoinForm(ipywidgets.VBox):
    """Four fields and a Join button; after a successful join, the room's panel instead.

    ``attendee`` and ``panel`` are set once joined (``None`` before). Every part carries an
    ``ivs-join-*`` CSS class, so a page or a browser test can find it.
    """

    def __init__(self, url: str = "", code: str = "", fingerprint: str = "", name: str = "") -> None:
        enable_custom_widgets()  # before the form shows: it will hold a panel after Join
        self.url = _field("Workshop URL", url, "https://192.168.1.20:4566", "url")
        self.code = _field("Room code", code, "K7QX-2M9P", "code")
        self.fingerprint = _field("Fingerprint", fingerprint, "7C:EF:DA:… (from the presenter's slide)",
                                  "fingerprint")
        self.name = _field("Your name", name, "Ada Lovelace", "name")
        self.button = ipywidgets.Button(description="Join", button_style="primary", icon="sign-in")
        self.button.add_class("ivs-join-button")
        self.message = ipywidgets.Label()  # text, never HTML: it repeats what the attendee typed
        self.message.add_class("ivs-join-message")
        self.attendee: workshop.Attendee | None = None
        self.panel: Any = None
        self.button.on_click(lambda _button: self.join())
        super().__init__([self.url, self.code, self.fingerprint, self.name, self.button, self.message])
        self.add_class("ivs-join-form")

    @classmethod
    def from_environment(cls) -> JoinForm:
        """A form prefilled from ``IVS_WORKSHOP_URL``, ``IVS_WORKSHOP_CODE`` and ``IVS_WORKSHOP_FINGERPRINT``."""
        env = os.environ
        return cls(env.get(URL_VARIABLE, ""), env.get(CODE_VARIABLE, ""), env.get(FINGERPRINT_VARIABLE, ""))

    def join(self) -> bool:
        """Join with what the fields hold: True once the panel shows, False with the reason in ``message``."""
        url, code = self.url.value.strip(), self.code.value.strip()
        fingerprint, name = self.fingerprint.value.strip(), self.name.value.strip()
        missing = [label for label, value in (("the workshop URL", url), ("the room code", code),
                                              ("your name", name)) if not value]
        if missing:
            return self._failed(f"Please enter {' and '.join(missing)}.")
        self.button.disabled = True
        self.message.value = "Joining…"
        try:
            with warnings.catch_warnings(record=True) as unchecked:
                warnings.simplefilter("always")
                attendee = workshop.join(url, code, name, fingerprint=fingerprint or None)
        except workshop.WorkshopError as error:
            return self._failed(explain(error, url, code))
        except ValueError:  # urllib: not a URL at all
            return self._failed(f"{url!r} is not a workshop URL: it looks like https://192.168.1.20:4566.")
        finally:
            self.button.disabled = False
        self.attendee = attendee
        self.message.value = ""
        self.panel = attendee.live_stream_panel() if attendee.playback_url else attendee.chat_panel()
        note = ipywidgets.Label(UNCHECKED.format(url=url) if unchecked else "")
        note.add_class("ivs-join-message")
        self.children = [self.panel, note] if unchecked else [self.panel]
        return True

    def close(self) -> None:
        """Leave the room (if joined) and close the form."""
        if self.panel is not None:
            self.panel.close()
        super().close()

    def __repr__(self) -> str:
        joined = f"joined as {self.attendee.display_name!r}" if self.attendee else "not joined"
        return f"JoinForm(url={self.url.value!r}, code={self.code.value!r}, {joined})"

    def _failed(self, words: str) -> bool:
        self.message.value = words
        return False


def explain(error: workshop.WorkshopError, url: str, code: str) -> str:
    """A failed join in the words an attendee can act on."""
    if error.code == "CertificateMismatch":
        return (f"The sandbox at {url} does not have the presenter's certificate fingerprint. "
                "Check the URL and the fingerprint with the presenter.")
    if error.code == "ConnectionError":
        return (f"Cannot reach the workshop at {url} ({error.detail}). Check the URL, and that you are on the "
                "presenter's network.")
    if error.code == "ResourceNotFoundException":
        return f"There is no room with the code {code}. Check the code with the presenter."
    if error.code == "AccessDeniedException":
        return error.message.rstrip(".") + "."  # "The presenter has closed this room."
    return f"Could not join: {error.message}"


def _field(label: str, value: str, placeholder: str, name: str) -> ipywidgets.Text:
    field = ipywidgets.Text(value=value, description=label, placeholder=placeholder,
                            style={"description_width": "110px"}, layout=ipywidgets.Layout(width="480px"))
    field.add_class(f"ivs-join-{name}")
    return field
