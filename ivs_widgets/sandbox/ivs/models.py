"""The ``ivs`` control plane over the sandbox state (moto's "models" layer): channels, stream keys,
streams, stream sessions, metadata and tags.

Each public method is named like the API operation, takes the already-validated request members and
returns the response members. Live streams are :class:`~ivs_widgets.sandbox.ivs.streams.LiveStreams`'
(the ingest drives them); where a channel takes and serves video is the wiring's to say (``VideoEndpoints``).
The sandbox has no recording configurations, playback restriction policies, ad or failover-slate
configurations: a channel that names one is refused as naming a resource that does not exist.
"""

from __future__ import annotations

from typing import Any, Protocol

from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import formats
from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.errors import ApiError, validation_error
from ivs_widgets.sandbox.core.paging import paginate
from ivs_widgets.sandbox.core.ratelimit import RateWindow
from ivs_widgets.sandbox.core.state import CHANNEL, STREAM_KEY, Resource, State, public
from ivs_widgets.sandbox.core.tagging import Tagging
from ivs_widgets.sandbox.core.validation import service_model
from ivs_widgets.sandbox.ivs import errors
from ivs_widgets.sandbox.ivs.streams import LiveStream, LiveStreams

Params = dict[str, Any]

#: Where the sandbox serves a channel's live playlist (the packager's HTTP route), under its HTTP endpoint.
PLAYBACK_PATH = "/ivs/{channel_id}/live.m3u8"
#: Channel settings a request may give, and what a channel has when it gives none.
_DEFAULTS: Params = {
    "name": "", "latencyMode": c.DEFAULT_CHANNEL_LATENCY_MODE, "type": c.DEFAULT_CHANNEL_TYPE, "authorized": False,
    "recordingConfigurationArn": "", "insecureIngest": False, "preset": "", "playbackRestrictionPolicyArn": "",
    "containerFormat": c.DEFAULT_CONTAINER_FORMAT,
}
_MULTITRACK_DEFAULTS: Params = {"enabled": c.DEFAULT_MULTITRACK_ENABLED, "policy": c.DEFAULT_MULTITRACK_POLICY,
                                "maximumResolution": c.DEFAULT_MULTITRACK_MAXIMUM_RESOLUTION}
#: Resources a channel may name that the sandbox does not offer: any ARN given is one that does not exist.
_ABSENT = {"recordingConfigurationArn": "Recording configuration",
           "playbackRestrictionPolicyArn": "Playback restriction policy",
           "adConfigurationArn": "Ad configuration", "failoverSlateConfigurationArn": "Failover slate configuration"}
_WHAT = {CHANNEL: "Channel", STREAM_KEY: "Stream key"}
#: ListChannels' filters (one at a time) and the channel member each compares.
_FILTERS = {"filterByName": "name", "filterByRecordingConfigurationArn": "recordingConfigurationArn",
            "filterByPlaybackRestrictionPolicyArn": "playbackRestrictionPolicyArn",
            "filterByAdConfigurationArn": "adConfigurationArn",
            "filterByFailoverSlateConfigurationArn": "failoverSlateConfigurationArn"}


class VideoEndpoints(Protocol):
    """Where a channel takes and serves video: hosts and ports are the wiring's to know."""

    def ingest_endpoint(self) -> str:
        """Where encoders send (``ingestEndpoint``): the RTMP server's host, and its port where not 443."""
        ...

    def ingest_host(self) -> str:
        """The host alone (SRT's endpoint, which nothing in the sandbox listens on)."""
        ...

    def playback_url(self, channel_id: str) -> str:
        """The channel's HLS playback URL (``playbackUrl``)."""
        ...


class VideoControlPlane(Tagging):
    _service = "ivs"
    _tagged_kinds = (CHANNEL, STREAM_KEY)

    def __init__(self, state: State, config: SandboxConfig, streams: LiveStreams, endpoints: VideoEndpoints) -> None:
        self.state = state
        self.config = config
        self.streams = streams
        self.endpoints = endpoints
        self._metadata_rate = RateWindow(config.quota_tps_put_metadata)
        self._metadata_rates: dict[str, RateWindow] = {}

    # -- helpers -----------------------------------------------------------------------------
    def _arn(self, kind: str) -> str:
        return formats.arn(self.config.region, self.config.account_id, kind, formats.new_id(), service="ivs")

    def _missing(self, what: str, arn: str) -> ApiError:
        """Not found; for an ARN of another account, not authorized (what AWS answers for those)."""
        account = arn.split(":")[4]  # the model's patterns have let only ARNs through
        if account != self.config.account_id:
            return errors.error("AccessDeniedException", f"User is not authorized to access {arn}: account "
                                f"{account} is not the sandbox's ({self.config.account_id})")
        return errors.not_found(what, arn)

    def _get(self, kind: str, arn: str) -> Resource:
        found = self.state.get(kind, arn)
        if found is None:
            raise self._missing(_WHAT[kind], arn)
        return found

    def channel(self, arn: str) -> Resource:
        return self._get(CHANNEL, arn)

    def _batch(self, kind: str, arns: list[str]) -> tuple[list[Resource], list[Params]]:
        """BatchGet*: the resources found, in the order asked, and an error entry for each of the others."""
        found: list[Resource] = []
        missing: list[Params] = []
        for arn in dict.fromkeys(arns):
            resource = self.state.get(kind, arn)
            if resource is not None:
                found.append(resource)
            else:
                error = self._missing(_WHAT[kind], arn)
                missing.append({"arn": arn, "code": error.code, "message": error.message})
        return found, missing

    def _keys_of(self, channel_arn: str) -> list[Resource]:
        return [k for k in self.state.all(STREAM_KEY) if k["channelArn"] == channel_arn]

    def _view(self, channel: Resource) -> Params:
        """A channel as the API answers it: where to send video and where to watch it come from the wiring."""
        return {**public(channel), "ingestEndpoint": self.endpoints.ingest_endpoint(),
                "playbackUrl": self.endpoints.playback_url(formats.arn_resource_id(channel["arn"])),
                "srt": {"endpoint": self.endpoints.ingest_host(), "passphrase": channel["_srtPassphrase"]}}

    def _not_found(self, resource_arn: str) -> ApiError:
        return self._missing("Resource", resource_arn)

    def _refuse_when_live(self, channel: Resource, action: str) -> None:
        if self.streams.live(channel["arn"]) is not None:
            raise errors.error("ConflictException", f"Channel {channel['arn']} is live: stop its stream before "
                               f"you {action} it")

    # -- channels ----------------------------------------------------------------------------
    def CreateChannel(self, p: Params) -> Params:
        if self.state.count(CHANNEL) >= self.config.quota_channels:
            raise errors.error("ServiceQuotaExceededException",
                               f"Service quota exceeded: at most {self.config.quota_channels} channels per account "
                               "per region")
        channel: Resource = {"arn": self._arn(CHANNEL), **_DEFAULTS, "multitrackInputConfiguration":
                             dict(_MULTITRACK_DEFAULTS), "tags": p.get("tags", {}),
                             "_srtPassphrase": formats.new_id(c.SRT_PASSPHRASE_LENGTH)}
        _configure(channel, p)
        key = self._new_key(channel["arn"], {})
        self.state.put(CHANNEL, channel)
        self.state.put(STREAM_KEY, key)
        return {"channel": self._view(channel), "streamKey": public(key)}

    def GetChannel(self, p: Params) -> Params:
        return {"channel": self._view(self.channel(p["arn"]))}

    def BatchGetChannel(self, p: Params) -> Params:
        found, missing = self._batch(CHANNEL, p["arns"])
        return {"channels": [self._view(channel) for channel in found], "errors": missing}

    def ListChannels(self, p: Params) -> Params:
        filters = [name for name in _FILTERS if name in p]
        if len(filters) > 1:
            raise errors.error("ConflictException", f"Filters are mutually exclusive: {', '.join(filters)}")
        channels = self.state.all(CHANNEL)
        for name in filters:
            channels = [ch for ch in channels if ch.get(_FILTERS[name]) == p[name]]
        page, next_token = paginate(channels, p, c.DEFAULT_MAX_RESULTS_CHANNELS)
        return {"channels": [public(ch, _summary("ChannelSummary")) for ch in page], **next_token}

    def UpdateChannel(self, p: Params) -> Params:
        channel = self.channel(p["arn"])
        self._refuse_when_live(channel, "update")
        _configure(channel, p)
        self.state.put(CHANNEL, channel)
        return {"channel": self._view(channel)}

    def DeleteChannel(self, p: Params) -> Params:
        channel = self.channel(p["arn"])
        self._refuse_when_live(channel, "delete")
        for key in self._keys_of(channel["arn"]):
            self.state.remove(STREAM_KEY, key["arn"])
        self.streams.forget(channel["arn"])
        self._metadata_rates.pop(channel["arn"], None)
        self.state.remove(CHANNEL, channel["arn"])
        return {}

    # -- stream keys -------------------------------------------------------------------------
    def _new_key(self, channel_arn: str, tags: dict[str, str]) -> Resource:
        return {"arn": self._arn(STREAM_KEY), "value": formats.stream_key_value(self.config.region),
                "channelArn": channel_arn, "tags": tags}

    def CreateStreamKey(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        if len(self._keys_of(channel["arn"])) >= c.QUOTA_STREAM_KEYS_PER_CHANNEL:
            raise errors.error("ServiceQuotaExceededException",
                               f"Service quota exceeded: a channel has at most {c.QUOTA_STREAM_KEYS_PER_CHANNEL} "
                               "stream key (DeleteStreamKey first to replace it)")
        key = self._new_key(channel["arn"], p.get("tags", {}))
        self.state.put(STREAM_KEY, key)
        return {"streamKey": public(key)}

    def GetStreamKey(self, p: Params) -> Params:
        return {"streamKey": public(self._get(STREAM_KEY, p["arn"]))}

    def BatchGetStreamKey(self, p: Params) -> Params:
        found, missing = self._batch(STREAM_KEY, p["arns"])
        return {"streamKeys": [public(key) for key in found], "errors": missing}

    def ListStreamKeys(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        page, next_token = paginate(self._keys_of(channel["arn"]), p, c.DEFAULT_MAX_RESULTS_STREAM_KEYS)
        return {"streamKeys": [public(key, _summary("StreamKeySummary")) for key in page], **next_token}

    def DeleteStreamKey(self, p: Params) -> Params:
        """The key can no longer start a stream; a stream it started goes on (StopStream ends that)."""
        self.state.remove(STREAM_KEY, self._get(STREAM_KEY, p["arn"])["arn"])
        return {}

    # -- streams -----------------------------------------------------------------------------
    def _stream_view(self, stream: LiveStream) -> Params:
        """A live stream as the API answers it; the sandbox counts no viewers and sees no starving encoder."""
        return {"channelArn": stream.channel_arn, "streamId": stream.stream_id, "startTime": stream.start_time,
                "state": "LIVE", "health": "HEALTHY", "viewerCount": 0,
                "playbackUrl": self.endpoints.playback_url(formats.arn_resource_id(stream.channel_arn))}

    def GetStream(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        return {"stream": self._stream_view(self.streams.require_live(channel["arn"]))}

    def ListStreams(self, p: Params) -> Params:
        health = p.get("filterBy", {}).get("health")
        streams = [{"arn": s.channel_arn, "_order": s.started_ns, **self._stream_view(s)}
                   for s in self.streams.all_live()]
        streams = [s for s in streams if health is None or s["health"] == health]
        page, next_token = paginate(streams, p, c.DEFAULT_MAX_RESULTS_STREAMS)
        return {"streams": [public(s, _summary("StreamSummary")) for s in page], **next_token}

    def StopStream(self, p: Params) -> Params:
        self.streams.stop(self.channel(p["channelArn"])["arn"])
        return {}

    def GetStreamSession(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        sessions = self.streams.sessions(channel["arn"])
        wanted = p.get("streamId")
        session = next((s for s in sessions if wanted is None or s["streamId"] == wanted), None)
        if session is None:
            raise errors.not_found("Stream session", wanted or f"any, on channel {channel['arn']}")
        view = {**public(session, _summary("StreamSession")), "channel": self._view(session["_channel"])}
        if "ingestConfiguration" in session:  # one track each: the multitrack form lists it alone
            ingest = session["ingestConfiguration"]
            view["ingestConfigurations"] = {"videoConfigurations": [ingest["video"]] if "video" in ingest else [],
                                            "audioConfigurations": [ingest["audio"]] if "audio" in ingest else []}
        return {"streamSession": view}

    def ListStreamSessions(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        page, next_token = paginate(self.streams.sessions(channel["arn"]), p, c.DEFAULT_MAX_RESULTS_STREAM_SESSIONS)
        return {"streamSessions": [{**public(s, _summary("StreamSessionSummary")), "hasErrorEvent": False}
                                   for s in page], **next_token}

    def PutMetadata(self, p: Params) -> Params:
        channel = self.channel(p["channelArn"])
        self.streams.require_live(channel["arn"])
        rate = self._metadata_rates.setdefault(channel["arn"], RateWindow(self.config.quota_tps_put_metadata_per_channel))
        if self.config.rate_quotas and (not rate.allow() or not self._metadata_rate.allow()):
            raise errors.error("ThrottlingException", f"Rate exceeded: PutMetadata allows {rate.limit} requests per "
                               f"second per channel and {self._metadata_rate.limit} per account")
        self.streams.insert_metadata(channel["arn"], p["metadata"])
        return {}


def _configure(channel: Resource, p: Params) -> None:
    """Apply CreateChannel's or UpdateChannel's settings, with the rules the model cannot express."""
    for name, what in _ABSENT.items():
        if p.get(name):
            raise errors.not_found(what, p[name])
    for name in _DEFAULTS:
        if name in p:
            channel[name] = p[name]
    advanced = channel["type"] in c.ADVANCED_CHANNEL_TYPES
    if "preset" in p and not advanced:
        raise validation_error(f"preset is selectable only for {' and '.join(c.ADVANCED_CHANNEL_TYPES)} channels",
                               field="preset")
    channel["preset"] = (channel["preset"] or c.DEFAULT_ADVANCED_PRESET) if advanced else ""
    multitrack = p.get("multitrackInputConfiguration")
    if multitrack is not None:
        if multitrack.get("enabled") and not {"policy", "maximumResolution"} <= multitrack.keys():
            raise validation_error("multitrackInputConfiguration needs policy and maximumResolution when enabled",
                                   field="multitrackInputConfiguration")
        channel["multitrackInputConfiguration"] = {**_MULTITRACK_DEFAULTS, **multitrack}
    if channel["multitrackInputConfiguration"]["enabled"] and (
            channel["type"] != c.MULTITRACK_CHANNEL_TYPE or channel["containerFormat"] != c.MULTITRACK_CONTAINER_FORMAT):
        raise validation_error(f"multitrack input needs a {c.MULTITRACK_CHANNEL_TYPE} channel with containerFormat "
                               f"{c.MULTITRACK_CONTAINER_FORMAT}", field="multitrackInputConfiguration")


def _summary(shape: str) -> tuple[str, ...]:
    """The members of a summary shape, read from the model: what a list answers of each resource."""
    return tuple(service_model("ivs").shape_for(shape).members)
