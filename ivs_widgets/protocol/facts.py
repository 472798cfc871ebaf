"""Facts about Amazon IVS Chat and Amazon IVS that botocore's models cannot express, one constant each.

One place for every number the sandbox, the client and the panels share; limits that botocore's
``ivschat`` and ``ivs`` service models do carry (lengths, ranges, enums) are read from the models instead.
"""

from __future__ import annotations

#: Room defaults the service applies when CreateRoom leaves a field out.
DEFAULT_MAXIMUM_MESSAGE_LENGTH = 500
DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND = 10
DEFAULT_FALLBACK_RESULT = "ALLOW"

#: ``maxResults`` when ListRooms or ListLoggingConfigurations leaves it out.
DEFAULT_MAX_RESULTS_ROOMS = 50
DEFAULT_MAX_RESULTS_LOGGING_CONFIGURATIONS = 50

#: Chat token defaults: session length when unspecified; how long the token may be used to connect.
DEFAULT_SESSION_DURATION_MINUTES = 60
DEFAULT_TOKEN_LIFETIME_SECONDS = 60 * 60

#: Documented rule the model cannot express: token/event attribute maps total at most 1 KB.
MAX_ATTRIBUTES_BYTES = 1024

#: Account quotas (per region) documented by the service; the sandbox makes them settings.
QUOTA_LOGGING_CONFIGURATIONS = 10
QUOTA_ROOMS = 50_000
QUOTA_CONCURRENT_CONNECTIONS = 50_000  # chat connections open at once, across all rooms
#: Documented control-plane rate quotas (transactions per second, per account and region, not
#: adjustable). DeleteMessage counts the API and the messaging DELETE_MESSAGE request together.
QUOTA_TPS_CREATE_CHAT_TOKEN = 200
QUOTA_TPS_ROOM_OPERATION = 5  # each of CreateRoom, DeleteRoom, GetRoom, ListRooms, UpdateRoom
QUOTA_TPS_LOGGING_CONFIGURATION_OPERATION = 3  # each of the five logging-configuration operations
QUOTA_TPS_TAGGING_OPERATION = 10  # each of TagResource, UntagResource, ListTagsForResource
QUOTA_TPS_DELETE_MESSAGE = 100
QUOTA_TPS_DISCONNECT_USER = 100
QUOTA_TPS_SEND_EVENT = 100

#: Operation → its rate quota, from the constants above.
QUOTA_TPS: dict[str, int] = {
    "CreateChatToken": QUOTA_TPS_CREATE_CHAT_TOKEN,
    **dict.fromkeys(("CreateRoom", "DeleteRoom", "GetRoom", "ListRooms", "UpdateRoom"), QUOTA_TPS_ROOM_OPERATION),
    **dict.fromkeys(("CreateLoggingConfiguration", "DeleteLoggingConfiguration", "GetLoggingConfiguration",
                     "ListLoggingConfigurations", "UpdateLoggingConfiguration"),
                    QUOTA_TPS_LOGGING_CONFIGURATION_OPERATION),
    **dict.fromkeys(("TagResource", "UntagResource", "ListTagsForResource"), QUOTA_TPS_TAGGING_OPERATION),
    "DeleteMessage": QUOTA_TPS_DELETE_MESSAGE,
    "DisconnectUser": QUOTA_TPS_DISCONNECT_USER,
    "SendEvent": QUOTA_TPS_SEND_EVENT,
}

#: The message review handler must answer within this many seconds (fixed by the service).
REVIEW_HANDLER_TIMEOUT_SECONDS = 0.2

#: Ids of rooms, logging configurations, messages and events: 12 alphanumeric characters.
ID_LENGTH = 12

#: Channel defaults the service applies when CreateChannel leaves a field out.
DEFAULT_CHANNEL_LATENCY_MODE = "LOW"
DEFAULT_CHANNEL_TYPE = "STANDARD"
DEFAULT_CONTAINER_FORMAT = "TS"
#: The transcode preset of ADVANCED_SD and ADVANCED_HD channels by default; other types have none ("").
DEFAULT_ADVANCED_PRESET = "HIGHER_BANDWIDTH_DELIVERY"
ADVANCED_CHANNEL_TYPES = ("ADVANCED_SD", "ADVANCED_HD")
#: What a channel reports as its multitrack input configuration when none was given.
DEFAULT_MULTITRACK_ENABLED = False
DEFAULT_MULTITRACK_MAXIMUM_RESOLUTION = "FULL_HD"
DEFAULT_MULTITRACK_POLICY = "ALLOW"
#: SRT passphrases are this long (as the API's examples show them).
SRT_PASSPHRASE_LENGTH = 68
#: Multitrack input needs this channel type and container format.
MULTITRACK_CHANNEL_TYPE = "STANDARD"
MULTITRACK_CONTAINER_FORMAT = "FRAGMENTED_MP4"

#: ``maxResults`` when a List operation of ``ivs`` leaves it out (documented; the model has only the maximum).
DEFAULT_MAX_RESULTS_CHANNELS = 100
DEFAULT_MAX_RESULTS_STREAMS = 100
DEFAULT_MAX_RESULTS_STREAM_SESSIONS = 100
DEFAULT_MAX_RESULTS_STREAM_KEYS = 1

#: PutMetadata: at most 1 KB a request, 5 requests per second per channel and 155 per account.
MAX_METADATA_BYTES = 1024
QUOTA_TPS_PUT_METADATA_PER_CHANNEL = 5
QUOTA_TPS_PUT_METADATA = 155
#: Stream keys a channel may have: CreateChannel makes it, CreateStreamKey needs it deleted first.
QUOTA_STREAM_KEYS_PER_CHANNEL = 1
#: Channels per account per region (adjustable on AWS; a setting in the sandbox).
QUOTA_CHANNELS = 5_000

#: The sandbox's local stand-ins for AWS settings. Not secrets: printed and documented.
SANDBOX_ACCOUNT_ID = "123456789012"
SANDBOX_REGION = "us-east-1"
SANDBOX_ACCESS_KEY_ID = "AKIAIVSSANDBOXLOCAL1"
SANDBOX_SECRET_ACCESS_KEY = "ivs-sandbox-local-secret-key-not-for-aws"

#: Largest control-plane request body the sandbox reads (AWS answers 413 to huge bodies too).
MAX_REQUEST_BODY_BYTES = 1024 * 1024

#: Attempts the kit's own boto3 clients make (botocore's standard retry mode, which backs off): enough
#: to ride over a rate quota's one-second window (a tutorial cell creating several rooms at once), on
#: AWS as in the sandbox. botocore's own default is 3.
CLIENT_MAX_ATTEMPTS = 8

#: Real AWS endpoints, for the AWS backend and for documentation.
AWS_CONTROL_ENDPOINT = "https://ivschat.{region}.amazonaws.com"
AWS_MESSAGING_ENDPOINT = "wss://edge.ivschat.{region}.amazonaws.com"

#: The messaging endpoint to use instead of ``AWS_MESSAGING_ENDPOINT``: the messaging twin of the SDKs'
#: ``AWS_ENDPOINT_URL_IVSCHAT`` (which only moves the control plane). ``ivs-sandbox`` exports it.
MESSAGING_URL_VARIABLE = "IVS_CHAT_MESSAGING_URL"

