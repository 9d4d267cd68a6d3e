"""Task ``Resource`` values: the AWS resources Step Functions recognises, and this project's schemes.

AWS accepts, for a Task state:

* a Lambda function ARN ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``;
* an activity ARN ``arn:aws:states:REGION:ACCOUNT:activity:NAME``;
* an optimized service integration ``arn:aws:states:::SERVICE:ACTION[PATTERN]`` where the action is
  one the integration offers (``dynamodb:query`` is refused: only getItem, putItem, updateItem and
  deleteItem are optimized; other actions go through ``aws-sdk``) and the pattern is one the service
  supports (``.sync``, ``.sync:2``, ``.waitForTaskToken``);
* an AWS SDK integration ``arn:aws:states:::aws-sdk:SERVICE:ACTION[.waitForTaskToken]``.

Express state machines support neither ``.sync`` nor ``.waitForTaskToken``.

Tables from the Step Functions developer guide, "Optimized integrations for Step Functions".

This project adds its own schemes: ``reflow:<name>``, ``airflow:<dag>``, ``airflow:<conn>/<dag>``
and ``phabricator:approval``.
"""

from __future__ import annotations

import re
from typing import Final

from orchestrator.asl.validate._common import EXPRESS

REQUEST_RESPONSE: Final = ""
SYNC: Final = ".sync"
SYNC2: Final = ".sync:2"
CALLBACK: Final = ".waitForTaskToken"

ACCEPTED_FORMS: Final = (
    "arn:aws:... (a Lambda function, an activity, arn:aws:states:::SERVICE:ACTION or "
    "arn:aws:states:::aws-sdk:SERVICE:ACTION), reflow:<name>, airflow:<dag>, airflow:<conn>/<dag>, "
    "phabricator:approval"
)

_RR = frozenset({REQUEST_RESPONSE})
_RR_SYNC = frozenset({REQUEST_RESPONSE, SYNC})
_RR_CALLBACK = frozenset({REQUEST_RESPONSE, CALLBACK})
_ALL = frozenset({REQUEST_RESPONSE, SYNC, CALLBACK})

# service -> (integration patterns the service supports, its optimized actions)
_OPTIMIZED: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "apigateway": (_RR_CALLBACK, frozenset({"invoke"})),
    "athena": (
        _RR_SYNC,
        frozenset({"startQueryExecution", "stopQueryExecution", "getQueryExecution", "getQueryResults"}),
    ),
    "batch": (_RR_SYNC, frozenset({"submitJob"})),
    "bedrock": (_ALL, frozenset({"invokeModel", "createModelCustomizationJob"})),
    "codebuild": (
        _RR_SYNC,
        frozenset(
            {
                "startBuild",
                "stopBuild",
                "batchDeleteBuilds",
                "batchGetReports",
                "startBuildBatch",
                "stopBuildBatch",
                "retryBuildBatch",
                "deleteBuildBatch",
            }
        ),
    ),
    "databrew": (_RR_SYNC, frozenset({"startJobRun"})),
    "dynamodb": (_RR, frozenset({"getItem", "putItem", "updateItem", "deleteItem"})),
    "ecs": (_ALL, frozenset({"runTask"})),
    "eks": (
        _ALL,
        frozenset(
            {
                "createCluster",
                "deleteCluster",
                "createFargateProfile",
                "deleteFargateProfile",
                "createNodegroup",
                "deleteNodegroup",
                "runJob",
                "call",
            }
        ),
    ),
    "elasticmapreduce": (
        _RR_SYNC,
        frozenset(
            {
                "createCluster",
                "terminateCluster",
                "addStep",
                "cancelStep",
                "setClusterTerminationProtection",
                "modifyInstanceFleetByName",
                "modifyInstanceGroupByName",
            }
        ),
    ),
    "emr-containers": (_RR_SYNC, frozenset({"createVirtualCluster", "deleteVirtualCluster", "startJobRun"})),
    "emr-serverless": (
        _RR_SYNC,
        frozenset(
            {
                "createApplication",
                "startApplication",
                "stopApplication",
                "deleteApplication",
                "startJobRun",
                "cancelJobRun",
            }
        ),
    ),
    "events": (_RR_CALLBACK, frozenset({"putEvents"})),
    "glue": (_RR_SYNC, frozenset({"startJobRun"})),
    "http": (_RR, frozenset({"invoke"})),
    "lambda": (_RR_CALLBACK, frozenset({"invoke"})),
    "mediaconvert": (_RR_SYNC, frozenset({"createJob"})),
    "sagemaker": (
        _RR_SYNC,
        frozenset(
            {
                "createEndpoint",
                "createEndpointConfig",
                "createHyperParameterTuningJob",
                "createLabelingJob",
                "createModel",
                "createProcessingJob",
                "createTrainingJob",
                "createTransformJob",
                "updateEndpoint",
            }
        ),
    ),
    "sns": (_RR_CALLBACK, frozenset({"publish"})),
    "sqs": (_RR_CALLBACK, frozenset({"sendMessage"})),
    "states": (frozenset({REQUEST_RESPONSE, SYNC, SYNC2, CALLBACK}), frozenset({"startExecution"})),
}

_PATTERN_NAMES: Final = {
    REQUEST_RESPONSE: "request-response",
    SYNC: "'.sync'",
    SYNC2: "'.sync:2'",
    CALLBACK: "'.waitForTaskToken'",
}

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):(?P<rest>.*)"
)
_INTEGRATION = re.compile(
    r"(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)(?P<pattern>\.sync(?::2)?|\.waitForTaskToken)?"
)
_SDK = re.compile(r"aws-sdk:(?P<service>[a-z0-9.-]+):(?P<action>[A-Za-z0-9]+)(?P<pattern>\.[A-Za-z0-9:]+)?")
_LAMBDA = re.compile(r"function:[A-Za-z0-9_-]{1,140}(?::[A-Za-z0-9_$-]+)?")
_ACTIVITY = re.compile(r"activity:[^\s:]+")
_REFLOW = re.compile(r"reflow:\S+")
_AIRFLOW = re.compile(r"airflow:(?:[^/\s]+/)?[^/\s]+")


def resource_problems(resource: str, machine_type: str) -> list[str]:
    """Why ``resource`` is not an acceptable Task resource (empty list: it is)."""
    if resource.startswith("arn:"):
        return _arn_problems(resource, machine_type)
    if resource == "phabricator:approval" or _REFLOW.fullmatch(resource) or _AIRFLOW.fullmatch(resource):
        return []
    return [f"The resource {resource!r} is not recognized; accepted forms: {ACCEPTED_FORMS}"]


def _arn_problems(resource: str, machine_type: str) -> list[str]:
    m = _ARN.fullmatch(resource)
    if m is None:
        return [f"The resource {resource!r} is not a valid resource ARN; accepted forms: {ACCEPTED_FORMS}"]
    service, region, account, rest = m["service"], m["region"], m["account"], m["rest"]
    if service == "lambda" and region and account and _LAMBDA.fullmatch(rest):
        return []
    if service == "states" and region and account and _ACTIVITY.fullmatch(rest):
        return []
    if service == "states" and not region and not account:
        return _integration_problems(resource, rest, machine_type)
    return [
        f"The resource {resource!r} is not recognized: a Task resource ARN names a Lambda function "
        "(arn:aws:lambda:REGION:ACCOUNT:function:NAME), an activity "
        "(arn:aws:states:REGION:ACCOUNT:activity:NAME) "
        "or a service integration (arn:aws:states:::SERVICE:ACTION)"
    ]


def _integration_problems(resource: str, rest: str, machine_type: str) -> list[str]:
    sdk = _SDK.fullmatch(rest)
    if sdk is not None:
        pattern = sdk["pattern"] or REQUEST_RESPONSE
        if pattern not in (REQUEST_RESPONSE, CALLBACK):
            return [
                f"The resource {resource!r} is not recognized: AWS SDK integrations support only "
                "request-response and '.waitForTaskToken'"
            ]
        return _express_problems(pattern, machine_type)
    m = _INTEGRATION.fullmatch(rest)
    known = _OPTIMIZED.get(m["service"]) if m is not None else None
    if m is None or known is None:
        return [
            f"The resource {resource!r} is not a recognized service integration: expected "
            "arn:aws:states:::SERVICE:ACTION with an optimized service ("
            + ", ".join(sorted(_OPTIMIZED))
            + ") or arn:aws:states:::aws-sdk:SERVICE:ACTION"
        ]
    patterns, actions = known
    service, action, pattern = m["service"], m["action"], m["pattern"] or REQUEST_RESPONSE
    if action not in actions:
        return [
            f"The resource {resource!r} is not recognized: the optimized {service} integration offers "
            f"{', '.join(sorted(actions))}; call other actions through "
            f"arn:aws:states:::aws-sdk:{service}:{action}"
        ]
    if pattern not in patterns:
        supported = ", ".join(_PATTERN_NAMES[p] for p in sorted(patterns))
        return [
            f"The resource {resource!r} is not recognized: the {service} integration does not support the "
            f"{_PATTERN_NAMES[pattern]} pattern (supported: {supported})"
        ]
    return _express_problems(pattern, machine_type)


def _express_problems(pattern: str, machine_type: str) -> list[str]:
    if machine_type == EXPRESS and pattern in (SYNC, SYNC2, CALLBACK):
        return [
            f"Express state machines do not support the {_PATTERN_NAMES[pattern]} service integration "
            "pattern (only request-response)"
        ]
    return []
