"""A review function deployed as the Lambda function that IVS Chat invokes for every message.

What the IVS Chat User Guide asks of a message review handler ("Chat Message Review Handler"): a
Lambda function in the same account and region as the room, with a resource-based policy that lets
``ivschat.amazonaws.com`` invoke it (``lambda:InvokeFunction``, conditioned on the source account and
on ``SourceArn``: the room's ARN, or ``arn:aws:ivschat:<region>:<account>:room/*`` for every room).
The function runs with an execution role that Lambda may assume; this module creates one (trust
policy for ``lambda.amazonaws.com``, an inline policy that lets it write its logs) unless
``IVS_LAMBDA_ROLE_ARN`` names one. Each resource is recorded for clean-up as soon as it exists.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sys
import time
import zipfile
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ivs_widgets.aws.created import CreatedResources
from ivs_widgets.aws.handler_source import ENTRY, HandlerSourceError, lambda_module

ROLE_VARIABLE = "IVS_LAMBDA_ROLE_ARN"
TRUST_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
#: What the managed AWSLambdaBasicExecutionRole grants, inline: the function may write its own logs.
LOGS_POLICY_NAME = "write-function-logs"
LOGS_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
     "Resource": "*"}]}
INVOKER = "ivschat.amazonaws.com"
MODULE = "review_handler"
#: A new role takes a few seconds to reach Lambda (IAM is eventually consistent); CreateFunction
#: answers this until then.
ROLE_NOT_READY = "cannot be assumed by Lambda"
ROLE_WAIT_SECONDS = 60.0
#: IVS Chat gives a handler 200 ms; Lambda's own limit only needs to stop a runaway function.
TIMEOUT_SECONDS = 3
#: (region, name) of every function this process created: a notebook whose first cell ran again (a new
#: backend in the same kernel) takes its own function over instead of meeting a name conflict.
_MADE_IN_THIS_PROCESS: set[tuple[str, str]] = set()


def lambda_runtime(available: list[str]) -> str:
    """This Python's version as a Lambda runtime when Lambda offers it (the source was written for it),
    else the newest Python runtime that Lambda's model lists."""
    mine = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pythons = [runtime for runtime in available if runtime.startswith("python3.")]
    return mine if mine in pythons else max(pythons, key=lambda runtime: int(runtime.rpartition(".")[2]))


def zipped(source: str) -> bytes:
    """The deployment package: one module, with a fixed timestamp so the same source gives the same zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{MODULE}.py", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, source)
    return buffer.getvalue()


class ReviewLambdas:
    """Deploys review functions for one backend, and records all it creates in ``created``."""

    def __init__(self, session: Any, region: str, created: CreatedResources) -> None:
        self._session, self.region, self.created = session, region, created
        self._clients: dict[str, Any] = {}
        self._role_arn: str | None = os.environ.get(ROLE_VARIABLE) or None
        self._permissions: set[tuple[str, str]] = set()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self.region)
        return self._clients[service]

    def deploy(self, function: Callable[[dict[str, Any]], dict[str, Any]], name: str,
               room_arn: str | None = None) -> str:
        """Create (or, when this process made it, update) the Lambda function ``name`` from ``function``,
        let IVS Chat invoke it for ``room_arn`` (every room of the account when None), and return its ARN."""
        package = zipped(lambda_module(function))
        what = f"Lambda function {name}"
        lambda_ = self.client("lambda")
        arn = self._update(name, package) if (self.region, name) in _MADE_IN_THIS_PROCESS else None
        if arn is None:
            arn = self._create(name, package)
        account = arn.split(":")[4]
        source = room_arn or f"arn:aws:ivschat:{self.region}:{account}:room/*"
        if (name, source) not in self._permissions:
            statement = f"ivschat-{secrets.token_hex(4)}"
            lambda_.add_permission(FunctionName=name, StatementId=statement, Action="lambda:InvokeFunction",
                                   Principal=INVOKER, SourceAccount=account, SourceArn=source)
            self._permissions.add((name, source))
            self.created.add(f"permission {statement} of {what}",
                             lambda: lambda_.remove_permission(FunctionName=name, StatementId=statement))
        return arn

    def _update(self, name: str, package: bytes) -> str | None:
        """Replace the code of a function this process made (and record it here too); None if it is gone."""
        lambda_ = self.client("lambda")
        try:
            arn: str = lambda_.update_function_code(FunctionName=name, ZipFile=package)["FunctionArn"]
        except lambda_.exceptions.ResourceNotFoundException:
            _MADE_IN_THIS_PROCESS.discard((self.region, name))
            return None
        lambda_.get_waiter("function_updated_v2").wait(FunctionName=name)
        self.created.add(f"Lambda function {name}", lambda: self._delete_function(name))
        return arn

    def _create(self, name: str, package: bytes) -> str:
        lambda_ = self.client("lambda")
        runtime = lambda_runtime(lambda_.meta.service_model.shape_for("Runtime").enum)
        role = self._role()
        deadline = time.monotonic() + ROLE_WAIT_SECONDS
        while True:
            try:
                arn: str = lambda_.create_function(
                    FunctionName=name, Runtime=runtime, Role=role, Handler=f"{MODULE}.{ENTRY}",
                    Code={"ZipFile": package}, Timeout=TIMEOUT_SECONDS,
                    Description="IVS Chat message review handler (ivs-widgets tutorial)",
                    Tags={"created-by": "ivs-widgets"})["FunctionArn"]
                break
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "ResourceConflictException":
                    raise HandlerSourceError(
                        f"a Lambda function named {name!r} already exists in {self.region}: delete it "
                        f"(aws lambda delete-function --function-name {name}) or choose another name",
                        code=code, fields=[name]) from None
                if ROLE_NOT_READY not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(2)  # IAM propagation has no event to wait for; CreateFunction is the only probe
        self.created.add(f"Lambda function {name}", lambda: self._delete_function(name))
        _MADE_IN_THIS_PROCESS.add((self.region, name))
        lambda_.get_waiter("function_active_v2").wait(FunctionName=name)
        return arn

    def _delete_function(self, name: str) -> None:
        _MADE_IN_THIS_PROCESS.discard((self.region, name))
        self.client("lambda").delete_function(FunctionName=name)
        logs = self.client("logs")  # Lambda makes the function's log group at its first invocation
        try:
            logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")
        except logs.exceptions.ResourceNotFoundException:
            pass

    def _role(self) -> str:
        if self._role_arn is None:
            iam = self.client("iam")
            role_name = f"ivs-widgets-review-handler-{secrets.token_hex(4)}"
            self._role_arn = iam.create_role(
                RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="Execution role of IVS Chat review handlers made by the ivs-widgets tutorial",
                Tags=[{"Key": "created-by", "Value": "ivs-widgets"}])["Role"]["Arn"]

            def delete_role() -> None:
                try:
                    iam.delete_role_policy(RoleName=role_name, PolicyName=LOGS_POLICY_NAME)
                except iam.exceptions.NoSuchEntityException:
                    pass
                iam.delete_role(RoleName=role_name)

            self.created.add(f"IAM role {role_name}", delete_role)
            iam.put_role_policy(RoleName=role_name, PolicyName=LOGS_POLICY_NAME, PolicyDocument=json.dumps(LOGS_POLICY))
        return self._role_arn
