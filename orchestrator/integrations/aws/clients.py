"""boto3 clients for the ``[aws]`` table of the configuration, optionally under a task's role session.

``[aws]`` may set ``region`` (default ``$AWS_DEFAULT_REGION``, else ``us-east-1``) and
``endpoint_url`` (one endpoint for every service: moto in tests, a VPC endpoint in production).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3

from orchestrator.config import Config


def region(config: Config) -> str:
    """The AWS region of the configuration."""
    value = config.section("aws").get("region") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if not isinstance(value, str):
        raise config.problem("aws.region", "must be a string")
    return value


def endpoint_url(config: Config) -> str | None:
    """The endpoint every AWS client talks to, when the configuration overrides AWS's own."""
    value = config.section("aws").get("endpoint_url")
    if value is not None and not isinstance(value, str):
        raise config.problem("aws.endpoint_url", "must be a string")
    return value


def client(service: str, config: Config, role_environment: Mapping[str, str] | None = None) -> Any:
    """A boto3 client for ``service``; with ``role_environment`` (a task's role session,
    :attr:`TaskContext.role_environment`) it acts under that role, else under the process's own
    credentials."""
    kwargs: dict[str, Any] = {"region_name": region(config)}
    url = endpoint_url(config)
    if url is not None:
        kwargs["endpoint_url"] = url
    if role_environment is not None:
        kwargs["aws_access_key_id"] = role_environment["AWS_ACCESS_KEY_ID"]
        kwargs["aws_secret_access_key"] = role_environment["AWS_SECRET_ACCESS_KEY"]
        kwargs["aws_session_token"] = role_environment.get("AWS_SESSION_TOKEN")
    return boto3.session.Session().client(service, **kwargs)
