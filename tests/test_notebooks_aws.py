"""The notebooks in their AWS form: ``IVS_BACKEND=aws`` against an AWS-shaped stand-in.

Each notebook runs in a fresh kernel configured only by the standard variables: ``ivs-sandbox`` in
its own process is the ``ivschat`` and ``ivs`` endpoint, the messaging URL (its printed exports) and
the RTMP ingest that the channels of 11 and 12 name (an ``ingestEndpoint`` with a port: plain RTMP), and moto's
server answers S3, CloudWatch Logs, IAM and Lambda (``AWS_ENDPOINT_URL_<SERVICE>``). Every cell must
run without error (no output is compared: the stored outputs are the sandbox form's, checked by
nbval), and afterwards nothing the notebook created may remain in either: no room or logging
configuration, no channel, stream key or live stream, no bucket, log group, function or role, and
no encoder (the test card's ffmpeg) still pushing to the ingest. The sandbox process cannot invoke a moto
Lambda (that needs Docker), so it applies the room's ``fallbackResult``: the notebooks must not
wait for a verdict that never comes.

Select these tests with ``-m aws_notebooks``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from sandbox_process import IVS_SANDBOX, Running, shell_environment

from ivs_widgets.protocol import facts

pytestmark = [pytest.mark.aws_notebooks, pytest.mark.timeout(300)]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 120
#: The services moto stands in for, by the suffix of their standard endpoint variable and boto3 name.
#: STS too: the kit asks GetCallerIdentity for the account that a bucket policy names.
MOTO_SERVICES = {"S3": "s3", "CLOUDWATCH_LOGS": "logs", "LAMBDA": "lambda", "IAM": "iam", "STS": "sts"}
TUTORIAL = sorted(path.name for pattern in ("0[1-8]-*.ipynb", "1[12]-*.ipynb") for path in NOTEBOOKS.glob(pattern))
WORKSHOP = sorted(path.name for path in NOTEBOOKS.glob("*workshop*.ipynb"))
#: Where the sandbox takes encoders (``rtmp://127.0.0.1:<port>/app/``), to find a test card still pushing.
INGEST_VARIABLE = "TEST_SANDBOX_RTMP_INGEST"


@pytest.fixture(scope="module")
def aws_environment(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """What a learner's shell holds: the sandbox's printed exports and the moto endpoints, nothing else of AWS."""
    workdir = tmp_path_factory.mktemp("aws-form")
    around = {f"AWS_ENDPOINT_URL_{suffix}": moto_server for suffix in MOTO_SERVICES}
    # The sandbox signs its deliveries to moto's S3 with its own stand-in key (moto accepts any).
    credentials = {"AWS_ACCESS_KEY_ID": facts.SANDBOX_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": facts.SANDBOX_SECRET_ACCESS_KEY}
    # Chat logs reach moto's S3 after AWS's documented delay scaled down a hundredfold (S3: 3 s), so
    # notebook 08 waits for them as it would on AWS, only sooner.
    sandbox = Running([IVS_SANDBOX, "--port", "0", "--ingest-port", "0", "--realistic-log-delivery", "0.01"],
                      env=shell_environment({**around, **credentials}, workdir))
    ingest = {INGEST_VARIABLE: sandbox.value("RTMP ingest (ivs)").split()[0]}  # for leftovers(), not the kernel
    try:
        yield shell_environment({**sandbox.environment, **around, **ingest, "IVS_BACKEND": "aws"}, workdir)
    finally:
        sandbox.stop()


def leftovers(environment: dict[str, str]) -> dict[str, list[str]]:
    """Everything that exists in the sandbox and in moto, by kind (moto's server is shared by the session:
    compare with what was there before)."""
    def client(service: str, variable: str) -> Any:
        return boto3.client(service, endpoint_url=environment[variable], region_name=environment["AWS_DEFAULT_REGION"],
                            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"])

    ivschat, ivs = client("ivschat", "AWS_ENDPOINT_URL_IVSCHAT"), client("ivs", "AWS_ENDPOINT_URL_IVS")
    s3, logs = client("s3", "AWS_ENDPOINT_URL_S3"), client("logs", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")
    lambda_, iam = client("lambda", "AWS_ENDPOINT_URL_LAMBDA"), client("iam", "AWS_ENDPOINT_URL_IAM")
    channels = [channel["arn"] for channel in ivs.list_channels()["channels"]]
    return {
        "rooms": [room["arn"] for room in ivschat.list_rooms()["rooms"]],
        "logging configurations": [c["arn"] for c in ivschat.list_logging_configurations()["loggingConfigurations"]],
        "channels": channels,
        "stream keys": [key["arn"] for arn in channels for key in ivs.list_stream_keys(channelArn=arn)["streamKeys"]],
        "live streams": [stream["channelArn"] for stream in ivs.list_streams()["streams"]],
        "encoders": encoders(environment[INGEST_VARIABLE]),
        "buckets": [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]],
        "log groups": [group["logGroupName"] for group in logs.describe_log_groups()["logGroups"]],
        "functions": [function["FunctionName"] for function in lambda_.list_functions()["Functions"]],
        "roles": [role["RoleName"] for role in iam.list_roles()["Roles"]],
    }


def run(name: str | nbformat.NotebookNode, environment: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Every cell of the notebook in a fresh kernel that sees only ``environment``, as Run All does: raises
    on the first error, and the kernel then shuts down gracefully, as when a learner restarts it."""
    for variable in [v for v in os.environ if v.startswith(("AWS_", "IVS_"))]:
        monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4) if isinstance(name, str) else name
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


@pytest.mark.parametrize("name", TUTORIAL)
def test_tutorial_notebook_runs_on_aws_and_leaves_nothing_behind(name: str, aws_environment: dict[str, str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = leftovers(aws_environment)
    notebook = run(name, aws_environment, monkeypatch)
    left = {kind: sorted(set(names) - set(before[kind])) for kind, names in leftovers(aws_environment).items()}
    assert not any(left.values()), f"{name} left behind: {left}"
    if "chat-logs" in name:  # the logs were read back from moto's S3, after a wait shown as a progress bar
        shown = "".join(printed(cell) for cell in notebook.cells
                        if cell.cell_type == "code" and "backend.chat_history(" in cell.source)
        assert re.search(r"chat logs in tutorial-chat-archive-\w+ .* (\d+)/\1 records", shown), shown
        assert re.search(r"<ChatHistory (\d+) frames, (\d+) messages>", shown), shown


@pytest.mark.parametrize(("name", "after"), [
    # Right after 07 deployed its review handler: the exit deletes the room, the function, its permission
    # and the role.
    ("07-moderation.ipynb", "backend.review_handler(review,"),
    # While 11's test card is live, with a chat open: the exit stops the encoder, ends the stream, and
    # deletes the room, the channel and the one the AWS CLI made.
    ("11-go-live-with-a-channel.ipynb", "create_room("),
])
def test_a_run_all_that_fails_halfway_leaves_nothing_behind_once_the_kernel_stops(
        name: str, after: str, aws_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A learner's mistake halfway: the clean-up cell never runs, but the kernel's exit leaves nothing behind."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    failing = next(i for i, cell in enumerate(notebook.cells) if after in cell.source) + 1
    notebook.cells.insert(failing, nbformat.v4.new_code_cell('raise RuntimeError("a mistake halfway")'))
    before = leftovers(aws_environment)
    with pytest.raises(CellExecutionError, match="a mistake halfway"):
        run(notebook, aws_environment, monkeypatch)
    assert leftovers(aws_environment) == before


@pytest.mark.parametrize("name", WORKSHOP)
def test_workshop_notebook_says_it_is_sandbox_only_and_stops_cleanly_on_aws(name: str, aws_environment: dict[str, str],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before = leftovers(aws_environment)
    code = [cell for cell in run(name, aws_environment, monkeypatch).cells if cell.cell_type == "code"]
    assert "only the local sandbox has" in printed(code[0])
    assert all(printed(cell).startswith("skipped: this notebook runs on the local sandbox only") for cell in code[1:])
    assert leftovers(aws_environment) == before


def encoders(ingest: str) -> list[str]:
    """The ffmpeg processes on this machine pushing to ``ingest`` (the test card), by process id."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(part.startswith(ingest) for part in process.info["cmdline"] or ()):
            found.append(str(process.info["pid"]))
    return found


def printed(cell: Any) -> str:
    """The text a code cell showed (streams and plain-text results), in order."""
    return "".join(output.get("text") or output.get("data", {}).get("text/plain", "") for output in cell.outputs)
