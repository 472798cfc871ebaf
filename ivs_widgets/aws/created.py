"""What the kit created in an AWS account, so that clean-up removes all of it, also after a failure.

A notebook that fails halfway under Run All never reaches its clean-up cell. Every resource the kit
creates on AWS is therefore recorded here as it is made, with the call that deletes it;
``Backend.close()`` runs them newest first (a permission before its function, a room before its
logging configuration, a function before its role), and so does the interpreter's exit (a kernel
restart or shutdown) for whatever is still recorded then.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ivs_widgets.protocol.errors import IvsWidgetsError

log = logging.getLogger("ivs_widgets.aws")

#: Error codes that mean "already gone": deleting twice is harmless.
GONE = {"ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "NotFoundException", "404"}


class CleanUpError(IvsWidgetsError):
    """Some created resources could not be deleted: ``fields`` names them, so you can delete them yourself."""


@dataclass(frozen=True)
class Created:
    what: str
    delete: Callable[[], None]


class CreatedResources:
    """Resources made for this backend, each with the call that deletes it; deleted newest first."""

    def __init__(self) -> None:
        self._made: list[Created] = []
        self._at_exit = False

    def add(self, what: str, delete: Callable[[], None]) -> None:
        """Record ``what`` (e.g. ``"Lambda function tutorial-word-filter"``) once it exists."""
        if any(made.what == what for made in self._made):
            return
        self._made.append(Created(what, delete))
        if not self._at_exit:
            atexit.register(self._clean_up_at_exit)
            self._at_exit = True

    def __contains__(self, what: str) -> bool:
        return any(made.what == what for made in self._made)

    def __len__(self) -> int:
        return len(self._made)

    def clean_up(self) -> list[str]:
        """Delete everything recorded, newest first, and return what was deleted. Something already gone
        counts as deleted. What fails is tried again while another pass deletes something (a logging
        configuration waits for the rooms that use it); what still fails stays recorded (a later call
        tries again) and is raised together, after every other resource had its turn."""
        deleted: list[str] = []
        failed: list[tuple[Created, ClientError]] = []
        while self._made:
            failed = []
            for made in reversed(self._made):
                try:
                    made.delete()
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") not in GONE:
                        failed.append((made, error))
                        continue
                deleted.append(made.what)
            progress = len(failed) < len(self._made)
            self._made = [made for made, _ in reversed(failed)]
            if not progress:
                break
        if not self._made and self._at_exit:
            atexit.unregister(self._clean_up_at_exit)
            self._at_exit = False
        if failed:
            raise CleanUpError("could not delete " + "; ".join(f"{made.what} ({error})" for made, error in failed),
                               code="CleanUpFailed", fields=[made.what for made, _ in failed])
        return deleted

    def _clean_up_at_exit(self) -> None:
        try:
            for what in self.clean_up():
                log.warning("deleted %s, left behind by an unfinished notebook", what)
        except CleanUpError as error:
            log.error("%s: delete them in the AWS console or with the AWS CLI", error.message)
