"""template.yaml, checked offline: SAM transform, cfn-lint on the result, and its wiring against the code.

Each check also runs on a deliberately broken copy of the template (bottom of the file), so a check that could
never fail would show up here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from flexrestore.contracts.events import RESTORES_SOURCE
from tests.infrastructure import checks
from tests.infrastructure.checks import PARAMETER_SETS, Stack


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return checks.load_sam_template()


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return checks.transform(sam)


@pytest.fixture(scope="module", params=sorted(PARAMETER_SETS))
def stack(request: pytest.FixtureRequest, cfn: dict[str, Any]) -> Stack:
    return Stack(cfn, PARAMETER_SETS[request.param])


def test_the_transformed_template_has_no_lint_errors(cfn: dict[str, Any]) -> None:
    assert checks.lint(cfn) == []


def test_every_handler_is_an_importable_callable_under_its_code_uri(
    sam: dict[str, Any], stack: Stack
) -> None:
    assert checks.check_handlers(sam, stack) == []


def test_every_variable_the_code_reads_is_set_and_none_is_set_for_nothing(
    sam: dict[str, Any], stack: Stack
) -> None:
    assert checks.check_environment(sam, stack) == []


def test_every_aws_call_in_the_code_is_allowed_on_its_resource(sam: dict[str, Any], stack: Stack) -> None:
    assert checks.check_code_permissions(sam, stack) == []


def test_roles_are_least_privilege(stack: Stack) -> None:
    assert checks.check_least_privilege(stack) == []


def test_roles_grant_only_the_actions_their_code_calls(sam: dict[str, Any], stack: Stack) -> None:
    assert checks.check_no_unused_grants(sam, stack) == []


def test_function_timeouts_atlas_timeouts_and_the_api_fit_together(sam: dict[str, Any], stack: Stack) -> None:
    assert checks.check_time_budgets(sam, stack) == []


def test_a_poll_lambda_timeout_is_ridden_out_like_an_atlas_outage_never_ends_the_restore(
    sam: dict[str, Any],
) -> None:
    definition = json.loads(checks.asl_text(sam, "RestoreStateMachine"))
    retriers = definition["States"]["Poll"]["Retry"]
    timeout = next(r for r in retriers if "Sandbox.Timedout" in r["ErrorEquals"])
    assert "States.Timeout" in timeout["ErrorEquals"]
    waited, delay = 0.0, float(timeout["IntervalSeconds"])
    for _ in range(timeout["MaxAttempts"]):
        waited += min(delay, timeout.get("MaxDelaySeconds", delay))
        delay *= timeout["BackoffRate"]
    tolerance = int(sam["Parameters"]["AtlasOutageToleranceSeconds"]["Default"])
    assert waited <= tolerance  # within the outage tolerance, then the Catch-all records ERROR


def test_every_asl_placeholder_has_a_substitution_and_every_substitution_is_used(sam: dict[str, Any]) -> None:
    assert checks.check_substitutions(sam) == []


def test_the_asl_parses_after_substitution(sam: dict[str, Any], stack: Stack) -> None:
    assert checks.check_asl_parses(sam, stack) == []


def test_every_state_machine_task_is_allowed_and_targets_this_stack(
    sam: dict[str, Any], stack: Stack
) -> None:
    assert checks.check_state_machine_permissions(sam, stack) == []


def test_tables_match_table_schema(stack: Stack) -> None:
    assert checks.check_tables(stack) == []


# --------------------------------------------------------------------------- what a deployer relies on


def test_runtime_is_python_3_13_on_arm64(stack: Stack) -> None:
    for function_id, resource in checks.lambda_functions(stack).items():
        assert resource["Properties"]["Runtime"] == "python3.13", function_id
        assert resource["Properties"]["Architectures"] == ["arm64"], function_id


def test_the_api_requires_iam_signatures_on_every_method(cfn: dict[str, Any]) -> None:
    (api,) = (r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    paths = api["Properties"]["Body"]["paths"]
    methods = {(path, method) for path, ops in paths.items() for method in ops}
    assert methods == {("/restores", "post"), ("/restores", "get"), ("/restores/{restoreId}", "get")}
    schemes = api["Properties"]["Body"]["securityDefinitions"]
    for path, ops in paths.items():
        for method, op in ops.items():
            (requirement,) = op["security"]
            (scheme,) = requirement
            assert schemes[scheme]["x-amazon-apigateway-authtype"] == "awsSigv4", (path, method)


def test_the_alarm_rule_matches_only_alarms_going_into_alarm(stack: Stack) -> None:
    from moto.events.models import EventPattern

    (rule,) = (
        r
        for r in stack.resources.values()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    )
    pattern = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))

    def alarm_event(state: str) -> dict[str, Any]:
        return {
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": "orders-prod-down", "state": {"value": state}},
        }

    assert pattern.matches_event(alarm_event("ALARM"))
    assert not pattern.matches_event(alarm_event("OK"))
    assert not pattern.matches_event(alarm_event("INSUFFICIENT_DATA"))
    assert not pattern.matches_event({**alarm_event("ALARM"), "source": "flexrestore"})


def _schedule_rules(stack: Stack) -> list[dict[str, Any]]:
    """The schedule rules that deliver to the intake (the verification schedule; not the reconciler's)."""
    return [
        r
        for r in stack.resources.values()
        if "ScheduleExpression" in r.get("Properties", {})
        and any(t["Arn"] == {"Fn::GetAtt": ["IntakeFunction", "Arn"]} for t in r["Properties"]["Targets"])
    ]


def _apply_input_transformer(transformer: dict[str, Any], event: dict[str, Any], stack: Stack) -> Any:
    """What EventBridge delivers: each <name> replaced by its value (raw in quotes, JSON otherwise)."""
    values = {name: event[path.removeprefix("$.")] for name, path in transformer["InputPathsMap"].items()}
    template = stack.resolve(transformer["InputTemplate"])
    text = re.sub(
        r"<([\w.-]+)>",
        lambda m: (
            values[m.group(1)] if isinstance(values[m.group(1)], str) else json.dumps(values[m.group(1)])
        ),
        template,
    )
    return json.loads(text)


def test_the_verification_schedule_exists_only_when_configured(cfn: dict[str, Any]) -> None:
    assert _schedule_rules(Stack(cfn, PARAMETER_SETS["secret-by-name"])) == []
    assert len(_schedule_rules(Stack(cfn, PARAMETER_SETS["secret-by-arn"]))) == 1


LISTED_REQUEST = (
    '[{"groupId": "65f1a2b3c4d5e6f708192a3b", "clusterName": "orders-prod", '
    '"targetDeploymentItemName": "orders-verify"}, {"groupId": "65f1a2b3c4d5e6f708192a3b", '
    '"clusterName": "billing-prod", "targetDeploymentItemName": "billing-verify"}]'
)


@pytest.mark.parametrize("request_text", [None, LISTED_REQUEST], ids=["one request", "a list"])
def test_the_schedule_delivers_what_the_intake_parses(cfn: dict[str, Any], request_text: str | None) -> None:
    from flexrestore.domain.request import TriggeredRestore, parse_request
    from flexrestore.triggers import kind_of
    from flexrestore.triggers.eventbridge import ScheduledRestores, parse_schedule

    parameters = dict(PARAMETER_SETS["secret-by-arn"])
    if request_text is not None:
        parameters["VerificationRequest"] = request_text
    stack = Stack(cfn, parameters)
    (rule,) = _schedule_rules(stack)
    assert stack.resolve(rule["Properties"]["ScheduleExpression"]) == parameters["VerificationSchedule"]
    rule_name = stack.resolve(rule["Properties"]["Name"])
    scheduled_event = {  # what EventBridge emits for a schedule rule
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": checks.ACCOUNT,
        "time": "2026-11-01T02:00:00Z",
        "region": checks.REGION,
        "resources": [stack.arn(next(k for k, v in stack.resources.items() if v is rule))],
        "detail": {},
    }
    (target,) = rule["Properties"]["Targets"]
    delivered = _apply_input_transformer(target["InputTransformer"], scheduled_event, stack)

    assert kind_of(delivered) == "schedule"
    parsed = parse_schedule(delivered)
    sent = json.loads(parameters["VerificationRequest"])
    if isinstance(sent, list):
        assert isinstance(parsed, ScheduledRestores)
        assert len(parsed.valid) == len(parsed.elements) == len(sent) == 2
        triggered_all = [triggered for _, triggered in parsed.valid]
    else:
        assert isinstance(parsed, TriggeredRestore)
        triggered_all, sent = [parsed], [sent]
    for triggered, request in zip(triggered_all, sent, strict=True):
        assert triggered.requested_by.schedule == rule_name
        assert triggered.requested_by.event_id == scheduled_event["id"]
        assert triggered.request == parse_request(request)


def test_undeliverable_triggers_land_in_the_dead_letter_queue(stack: Stack) -> None:
    dlq = next(k for k, v in stack.resources.items() if v["Type"] == "AWS::SQS::Queue")
    dlq_arn = stack.arn(dlq)
    rules = {k: v for k, v in stack.resources.items() if v["Type"] == "AWS::Events::Rule"}
    (queue_policy,) = (v for v in stack.resources.values() if v["Type"] == "AWS::SQS::QueuePolicy")
    (statement,) = stack.resolve(queue_policy["Properties"]["PolicyDocument"])["Statement"]
    senders = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    for rule_id, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert stack.resolve(target["DeadLetterConfig"]["Arn"]) == dlq_arn, rule_id
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, rule_id
        assert stack.arn(rule_id) in senders, f"{rule_id} may not write to the dead-letter queue"
    (invoke_config,) = (v for v in stack.resources.values() if v["Type"] == "AWS::Lambda::EventInvokeConfig")
    assert (
        stack.resolve(invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]) == dlq_arn
    )


def test_alarms_watch_what_the_code_emits_and_reach_people(sam: dict[str, Any], stack: Stack) -> None:
    alarms = {k: v["Properties"] for k, v in stack.resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert ("AWS/States", "ExecutionsFailed") in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    emitted = checks.emitted_metrics()
    namespace = sam["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    for name in ("RestoreFailed", "RestoreTimedOut"):
        assert (namespace, name) in watched, f"no alarm on {name}"
    for alarm_id, alarm in alarms.items():
        if alarm["Namespace"] == namespace:
            assert alarm["MetricName"] in emitted, (
                f"{alarm_id} watches {alarm['MetricName']}, which no code emits"
            )
        topics = {stack.resolve(a) for a in alarm["AlarmActions"]}
        assert topics and all(":sns:" in t for t in topics), alarm_id


def test_the_notification_topic_is_encrypted_and_outputs_are_complete(
    stack: Stack, cfn: dict[str, Any]
) -> None:
    for topic_id, topic in stack.resources.items():
        if topic["Type"] == "AWS::SNS::Topic" and topic_id == "NotificationTopic":
            assert topic["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    assert set(cfn["Outputs"]) >= {
        "ApiUrl",
        "StateMachineArn",
        "NotificationTopicArn",
        "OutcomeEventBusArn",
        "OutcomeEventSource",
        "RestoresTableName",
        "IdempotencyTableName",
        "DeadLetterQueueUrl",
    }


def test_outcome_events_may_be_put_only_under_the_source_the_code_sends(
    stack: Stack, cfn: dict[str, Any]
) -> None:
    granted = []
    for role_id, role in stack.resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        for conditional in role["Properties"].get("Policies", []):
            policy = stack.resolve(conditional)
            for statement in (policy or {}).get("PolicyDocument", {}).get("Statement", []):
                actions = statement.get("Action", [])
                if "events:PutEvents" in ([actions] if isinstance(actions, str) else actions):
                    granted.append((role_id, statement.get("Condition")))
    assert len(granted) == 2, granted  # the Notify and Reconcile functions
    for role_id, condition in granted:
        assert condition == {"StringEquals": {"events:source": RESTORES_SOURCE}}, role_id
    assert cfn["Outputs"]["OutcomeEventSource"]["Value"] == RESTORES_SOURCE


def test_the_state_machine_logs_and_traces_without_execution_data(stack: Stack) -> None:
    (machine,) = (v for v in stack.resources.values() if v["Type"] == "AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["LoggingConfiguration"]["Level"] in ("ERROR", "ALL")


# --------------------------------------------------------------------------- the checks catch drift


def _function(sam: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = sam["Resources"][logical_id]["Properties"]
    return props


def _drop_env(name: str, function_id: str) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        del _function(sam, function_id)["Environment"]["Variables"][name]

    return mutate


def _drop_policy(function_id: str, policy: str) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        props = _function(sam, function_id)
        props["Policies"] = [p for p in props["Policies"] if not (isinstance(p, dict) and policy in p)]

    return mutate


def _drop_statement(function_id: str, action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        props = _function(sam, function_id)
        props["Policies"] = [
            p
            for p in props["Policies"]
            if not (isinstance(p, dict) and any(s.get("Action") == action for s in p.get("Statement", [])))
        ]

    return mutate


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        node = sam
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _rename_substitution(sam: dict[str, Any]) -> None:
    props = checks.state_machines(sam)["RestoreStateMachine"]
    substitutions = props["DefinitionSubstitutions"]
    substitutions["PollFunctionArnTypo"] = substitutions.pop("PollFunctionArn")


def _grant_everything(sam: dict[str, Any]) -> None:
    _function(sam, "RecordFunction")["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    )


def _grant_invoke_to_intake(sam: dict[str, Any]) -> None:
    # The intake starts the poll loop through Step Functions; it never invokes a Lambda function itself.
    _function(sam, "IntakeFunction")["Policies"].append(
        {"LambdaInvokePolicy": {"FunctionName": {"Ref": "PollFunction"}}}
    )


def _let_poll_delete_records(sam: dict[str, Any]) -> None:
    # The poll step parses Atlas's answers; it reads and updates the record, and must not be able to delete.
    _function(sam, "PollFunction")["Policies"].append(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:DeleteItem",
                    "Resource": {"Fn::GetAtt": ["RestoresTable", "Arn"]},
                }
            ]
        }
    )


def _drop_state_machine_invoke(sam: dict[str, Any]) -> None:
    props = checks.state_machines(sam)["RestoreStateMachine"]
    props["Policies"] = [
        p
        for p in props["Policies"]
        if not (
            isinstance(p, dict)
            and p.get("LambdaInvokePolicy", {}).get("FunctionName") == {"Ref": "RecordFunction"}
        )
    ]


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    # name: (mutation, check, a fragment the problem must contain)
    "runtime": (_set(["Globals", "Function", "Runtime"], "python3.99"), "lint", "python3.99"),
    "handler-module": (
        _set(["Resources", "PollFunction", "Properties", "Handler"], "flexrestore.handlers.pol.handler"),
        "handlers",
        "no module flexrestore.handlers.pol",
    ),
    "handler-attribute": (
        _set(["Resources", "PollFunction", "Properties", "Handler"], "flexrestore.handlers.poll.handle"),
        "handlers",
        "no callable handle",
    ),
    "missing-env": (
        _drop_env("STATE_MACHINE_ARN", "IntakeFunction"),
        "environment",
        "reads STATE_MACHINE_ARN",
    ),
    "unused-env": (
        _set(
            ["Resources", "RecordFunction", "Properties", "Environment"],
            {"Variables": {"RECOVERY_PLANS": "{}"}},
        ),
        "environment",
        "sets RECOVERY_PLANS",
    ),
    "missing-start-execution": (
        _drop_policy("IntakeFunction", "StepFunctionsExecutionPolicy"),
        "code_permissions",
        "states:StartExecution",
    ),
    "missing-secret-read": (
        _drop_policy("PollFunction", "AWSSecretsManagerGetSecretValuePolicy"),
        "code_permissions",
        "secretsmanager:GetSecretValue",
    ),
    "missing-publish": (
        _drop_policy("NotifyFunction", "SNSPublishMessagePolicy"),
        "code_permissions",
        "sns:Publish",
    ),
    "missing-reconcile-put-events": (
        _drop_statement("ReconcileFunction", "events:PutEvents"),
        "code_permissions",
        "ReconcileFunction: events:PutEvents",
    ),
    "unused-action": (_let_poll_delete_records, "unused_grants", "grants dynamodb:DeleteItem"),
    "atlas-timeout-too-long": (
        _set(["Parameters", "AtlasTimeoutSeconds", "MaxValue"], 60),
        "time_budgets",
        "PollFunction: Timeout 30 s leaves no room",
    ),
    "intake-outlasts-api-gateway": (
        _set(["Resources", "IntakeFunction", "Properties", "Timeout"], 30),
        "time_budgets",
        "longer than API Gateway waits",
    ),
    "wildcard": (_grant_everything, "least_privilege", "dynamodb:*"),
    "unused-grant": (_grant_invoke_to_intake, "unused_grants", "grants lambda:InvokeFunction"),
    "substitution": (_rename_substitution, "substitutions", "PollFunctionArn"),
    "state-machine-invoke": (
        _drop_state_machine_invoke,
        "state_machine_permissions",
        "lambda:InvokeFunction",
    ),
    "table-key": (
        _set(
            ["Resources", "RestoresTable", "Properties", "KeySchema"],
            [{"AttributeName": "pk", "KeyType": "HASH"}],
        ),
        "tables",
        "KeySchema",
    ),
    "idempotency-ttl": (
        _set(
            ["Resources", "IdempotencyTable", "Properties", "TimeToLiveSpecification", "AttributeName"], "ttl"
        ),
        "tables",
        "TTL must be on expiration",
    ),
}


def _run(check: str, sam: dict[str, Any]) -> list[str]:
    cfn = checks.transform(sam)
    stack = Stack(cfn, PARAMETER_SETS["secret-by-name"])
    runners: dict[str, Callable[[], list[str]]] = {
        "lint": lambda: checks.lint(cfn),
        "handlers": lambda: checks.check_handlers(sam, stack),
        "environment": lambda: checks.check_environment(sam, stack),
        "code_permissions": lambda: checks.check_code_permissions(sam, stack),
        "least_privilege": lambda: checks.check_least_privilege(stack),
        "unused_grants": lambda: checks.check_no_unused_grants(sam, stack),
        "substitutions": lambda: checks.check_substitutions(sam),
        "state_machine_permissions": lambda: checks.check_state_machine_permissions(sam, stack),
        "tables": lambda: checks.check_tables(stack),
        "time_budgets": lambda: checks.check_time_budgets(sam, stack),
    }
    return runners[check]()


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_each_check_fails_on_a_broken_template(sam: dict[str, Any], breakage: str) -> None:
    mutate, check, fragment = BROKEN[breakage]
    broken = copy.deepcopy(sam)
    mutate(broken)
    problems = _run(check, broken)
    assert any(fragment in problem for problem in problems), problems


def test_functions_join_the_vpc_only_when_subnets_are_given(cfn: dict[str, Any]) -> None:
    in_vpc = Stack(cfn, PARAMETER_SETS["secret-by-arn"])
    for function_id, resource in checks.lambda_functions(in_vpc).items():
        vpc = in_vpc.resolve(resource["Properties"]["VpcConfig"])
        assert vpc["SubnetIds"] == PARAMETER_SETS["secret-by-arn"]["LambdaSubnetIds"].split(","), function_id
        assert vpc["SecurityGroupIds"] == [PARAMETER_SETS["secret-by-arn"]["LambdaSecurityGroupIds"]]
    no_vpc = Stack(cfn, PARAMETER_SETS["secret-by-name"])
    for function_id, resource in checks.lambda_functions(no_vpc).items():
        assert no_vpc.resolve(resource["Properties"].get("VpcConfig")) in ("", None), (
            function_id
        )  # AWS::NoValue
