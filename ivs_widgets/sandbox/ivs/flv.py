"""FLV for the packager's ffmpeg, and what an encoder's stream says of itself (GetStreamSession's
ingest configuration): RTMP's audio, video and data messages are FLV tag bodies already."""

from __future__ import annotations

import struct
from typing import Any

from ivs_widgets.sandbox.ivs.rtmp import AUDIO, DATA_AMF0, VIDEO, finite_number

#: FLV header (version 1, audio and video flags), then PreviousTagSize0.
HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)
AVC, AAC = 7, 10
_PROFILES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2",
             244: "High 4:4:4"}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
#: Only the tag types ffmpeg's FLV demuxer reads.
TAG_TYPES = (AUDIO, VIDEO, DATA_AMF0)


def tag(type_id: int, timestamp: int, body: bytes) -> bytes:
    """One FLV tag and its PreviousTagSize: FLV keeps 24 bits of time and an 8-bit extension above them."""
    header = bytes([type_id]) + len(body).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
    header += bytes([(timestamp >> 24) & 0xFF]) + bytes(3)
    return header + body + struct.pack(">I", 11 + len(body))


def is_video_config(body: bytes) -> bool:
    """An AVC sequence header (the decoder configuration record), which starts every AVC stream."""
    return len(body) >= 9 and body[0] & 0x0F == AVC and body[0] & 0x80 == 0 and body[1] == 0


def is_audio_config(body: bytes) -> bool:
    """An AAC sequence header (AudioSpecificConfig)."""
    return len(body) >= 4 and body[0] >> 4 == AAC and body[1] == 0


def video_configuration(metadata: dict[str, Any], config: bytes | None) -> dict[str, Any]:
    """The API's VideoConfiguration from onMetaData and the AVC decoder configuration record."""
    video: dict[str, Any] = {"track": "Track0"}
    if config is not None:
        profile, compatibility, level = config[1], config[2], config[3]
        name, level_text = _PROFILES.get(profile, str(profile)), f"{level // 10}.{level % 10}"
        video.update(codec=f"avc1.{profile:02X}{compatibility:02X}{level:02X}", avcProfile=name, profile=name,
                     avcLevel=level_text, level=level_text)
    for member, keys, scale in (("videoWidth", ("width",), 1), ("videoHeight", ("height",), 1),
                                ("targetFramerate", ("framerate", "videoframerate"), 1),
                                ("targetBitrate", ("videodatarate",), 1000)):
        value = next((finite_number(metadata[k]) for k in keys if k in metadata), None)
        if value is not None:
            video[member] = value * scale
    if isinstance(metadata.get("encoder"), str):
        video["encoder"] = metadata["encoder"][:128]
    return video


def audio_configuration(metadata: dict[str, Any], config: bytes | None) -> dict[str, Any]:
    """The API's AudioConfiguration from onMetaData and the AAC AudioSpecificConfig."""
    audio: dict[str, Any] = {"track": "Track0"}
    if config is not None:
        object_type, rate_index = config[0] >> 3, ((config[0] & 7) << 1) | (config[1] >> 7)
        channels = (config[1] >> 3) & 0x0F
        audio["codec"] = f"mp4a.40.{object_type}"
        if rate_index < len(_AAC_RATES):
            audio["sampleRate"] = _AAC_RATES[rate_index]
        if channels:
            audio["channels"] = channels
    for member, key, scale in (("targetBitrate", "audiodatarate", 1000), ("sampleRate", "audiosamplerate", 1),
                               ("channels", "audiochannels", 1)):
        value = finite_number(metadata.get(key))
        if value is not None:
            audio.setdefault(member, value * scale)
    return audio
