"""TagResource, UntagResource and ListTagsForResource: the same three operations in every service."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ivs_widgets.sandbox.core.errors import ApiError, validation_error
from ivs_widgets.sandbox.core.state import Resource, State
from ivs_widgets.sandbox.core.validation import service_model


class Tagging(ABC):
    """Mixed into a service's control plane, which names its model, the kinds it tags and its not-found error."""

    state: State
    _service: ClassVar[str]
    _tagged_kinds: ClassVar[tuple[str, ...]]

    @abstractmethod
    def _not_found(self, resource_arn: str) -> ApiError:
        """The error for an ARN that names none of the kinds this service tags."""

    def _tagged(self, resource_arn: str) -> tuple[str, Resource]:
        found = self.state.find(resource_arn, self._tagged_kinds)
        if found is None:
            raise self._not_found(resource_arn)
        return found

    def ListTagsForResource(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"tags": self._tagged(p["resourceArn"])[1]["tags"]}

    def TagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        kind, resource = self._tagged(p["resourceArn"])
        merged = {**resource["tags"], **p["tags"]}
        limit = service_model(self._service).shape_for("Tags").metadata["max"]
        if len(merged) > limit:
            raise validation_error(f"A resource can have at most {limit} tags", field="tags")
        resource["tags"] = merged
        self.state.put(kind, resource, updated=False)
        return {}

    def UntagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        kind, resource = self._tagged(p["resourceArn"])
        for key in p["tagKeys"]:
            resource["tags"].pop(key, None)
        self.state.put(kind, resource, updated=False)
        return {}
