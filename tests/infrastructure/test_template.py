"""template.yaml, checked offline: SAM transform, cfn-lint on the result, and its wiring against the code.

Each check also runs on a deliberately broken copy of the template (bottom of the file), so a check that could
never fail would show up here.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from flexrestore.contracts.events import EVENT_SOURCES, RESTORES_SOURCE, RUNS_SOURCE
from tests.infrastructure import checks
from tests.infrastructure.checks import PARAMETER_SETS, Stack
from tests.published import openapi


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
    # Exactly the operations the code serves (docs/openapi.json is generated from its routes).
    served = {(path, method) for path, ops in openapi()["paths"].items() for method in ops}
    assert methods == served
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
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    machines = {
        stack.arn(k) for k, v in stack.resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"
    }
    failed_watched = {
        stack.resolve(dimension["Value"])
        for alarm in alarms.values()
        if (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", "ExecutionsFailed")
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "StateMachineArn"
    }
    assert failed_watched == machines  # every state machine's own failures, the run state machine's too
    emitted = checks.emitted_metrics()
    namespace = sam["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    for name in ("RestoreFailed", "RestoreTimedOut", "VerificationRunNotSucceeded"):
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
        "RunStateMachineArn",
        "RunEventSource",
        "PlansTableName",
        "RunsTableName",
        "ScheduleGroupName",
    }


def _sources_sent(sam: dict[str, Any], stack: Stack, function_id: str) -> set[str]:
    """The event sources a function's code can put events under: the source constants its reachable
    functions name (``restore_event`` names RESTORES_SOURCE, ``run_event`` RUNS_SOURCE)."""
    from flexrestore.contracts import events

    constants = {
        name: getattr(events, name) for name in dir(events) if getattr(events, name) in EVENT_SOURCES
    }
    module, _, handler = stack.resources[function_id]["Properties"]["Handler"].rpartition(".")
    named = {
        node.id
        for unit in checks.reachable_code(module, handler, checks.REPO / checks.code_uri(sam, function_id))
        if unit.name  # not a module's top level (events.py lists every source there)
        for root in unit.nodes
        for node in ast.walk(root)
        if isinstance(node, ast.Name)
    }
    return {constants[name] for name in named & set(constants)}


def test_outcome_events_may_be_put_only_under_the_source_the_code_sends(
    sam: dict[str, Any], stack: Stack, cfn: dict[str, Any]
) -> None:
    granted: dict[str, list[Any]] = {}
    for role_id, role in stack.resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        for conditional in role["Properties"].get("Policies", []):
            policy = stack.resolve(conditional)
            for statement in (policy or {}).get("PolicyDocument", {}).get("Statement", []):
                actions = statement.get("Action", [])
                if "events:PutEvents" in ([actions] if isinstance(actions, str) else actions):
                    granted.setdefault(role_id, []).append(statement.get("Condition"))
    sending = {}
    for function_id in checks.lambda_functions(stack):
        sources = _sources_sent(sam, stack, function_id)
        if sources:
            sending[checks.function_role(stack, function_id)] = sources
    # Notify and Reconcile end restores; RunFinish ends runs, and Sweep ends the runs that crashed.
    assert {role: sorted(sources) for role, sources in sending.items()} == {
        "NotifyFunctionRole": [RESTORES_SOURCE],
        "ReconcileFunctionRole": [RESTORES_SOURCE],
        "RunFinishFunctionRole": [RUNS_SOURCE],
        "SweepFunctionRole": [RUNS_SOURCE],
    }
    assert set(granted) == set(sending)
    for role_id, conditions in granted.items():
        (source,) = sending[role_id]
        assert conditions == [{"StringEquals": {"events:source": source}}], role_id
    assert cfn["Outputs"]["OutcomeEventSource"]["Value"] == RESTORES_SOURCE
    assert cfn["Outputs"]["RunEventSource"]["Value"] == RUNS_SOURCE


def test_every_state_machine_logs_and_traces_without_execution_data(stack: Stack) -> None:
    machines = {k: v for k, v in stack.resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"}
    assert set(machines) == {"RestoreStateMachine", "RunStateMachine"}
    log_groups = set()
    for machine_id, machine in machines.items():
        props = machine["Properties"]
        assert props["StateMachineType"] == "STANDARD", machine_id
        assert props["TracingConfiguration"] == {"Enabled": True}, machine_id
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is False, machine_id
        assert props["LoggingConfiguration"]["Level"] in ("ERROR", "ALL"), machine_id
        (destination,) = props["LoggingConfiguration"]["Destinations"]
        log_groups.add(stack.resolve(destination["CloudWatchLogsLogGroup"]["LogGroupArn"]))
    assert len(log_groups) == len(machines)  # a log group each


# --------------------------------------------------------------------------- verification runs


def _statements(stack: Stack, role_id: str) -> list[checks.Statement]:
    return [
        s for s in checks.role_statements(stack, role_id) if s.source not in checks.ALLOWED_MANAGED_POLICIES
    ]


def test_only_the_validate_function_may_invoke_validators_and_exactly_those_the_deployment_allows(
    stack: Stack,
) -> None:
    allowed = [a for a in stack.parameters.get("ValidatorFunctionArns", "").split(",") if a]
    others = [f"{checks.VALIDATOR_ARN}-other", f"{checks.VALIDATOR_ARN}:other-alias"]
    others += [stack.arn(function_id) for function_id in checks.lambda_functions(stack)]
    for function_id in checks.lambda_functions(stack):
        statements = _statements(stack, checks.function_role(stack, function_id))
        may = [a for a in allowed + others if checks.allowed(statements, "lambda:InvokeFunction", a)]
        assert may == (allowed if function_id == "RunValidateFunction" else []), function_id


def test_the_run_state_machine_invokes_exactly_its_five_functions(sam: dict[str, Any], stack: Stack) -> None:
    run_functions = {
        stack.arn(k)
        for k in (
            "RunBeginFunction",
            "RunSourceFunction",
            "RunValidateFunction",
            "RunCleanupFunction",
            "RunFinishFunction",
        )
    }
    invoked = {
        machine_id: {
            resource
            for _, action, resource in checks.asl_calls(checks.substituted_definition(sam, stack, machine_id))
            if action == "lambda:InvokeFunction"
        }
        for machine_id in checks.state_machines(sam)
    }
    assert invoked["RunStateMachine"] == run_functions
    assert not invoked["RestoreStateMachine"] & run_functions  # one poll loop, untouched by runs
    role = checks.state_machine_role(stack, "RunStateMachine")
    may_invoke = {
        stack.arn(function_id)
        for function_id in checks.lambda_functions(stack)
        if checks.allowed(_statements(stack, role), "lambda:InvokeFunction", stack.arn(function_id))
    }
    assert may_invoke == run_functions  # of all the stack's functions, exactly these
    granted = {a for s in _statements(stack, role) for a in s.actions if not a.startswith("logs:")}
    assert granted == {"lambda:InvokeFunction"}


def test_functions_find_the_run_state_machine_the_schedule_group_and_role_the_stack_creates(
    stack: Stack,
) -> None:
    # RUN_STATE_MACHINE_ARN is built from the state machine's fixed name (a !Ref would be a cycle): it must
    # still name the state machine this stack creates.
    expected = {
        "RUN_STATE_MACHINE_ARN": stack.arn("RunStateMachine"),
        "SCHEDULE_GROUP": stack.physical_name("ScheduleGroup"),
        "SCHEDULER_ROLE_ARN": stack.arn("SchedulerRole"),
        "SCHEDULE_DEAD_LETTER_ARN": stack.arn("DeadLetterQueue"),
        "PLANS_TABLE": stack.physical_name("PlansTable"),
        "RUNS_TABLE": stack.physical_name("RunsTable"),
    }
    seen = set()
    for function_id in checks.lambda_functions(stack):
        env = checks.function_env(stack, function_id)
        for name, value in expected.items():
            if name in env:
                assert env[name] == value, (function_id, name)
                seen.add(name)
    assert seen == set(expected)


def test_the_schedule_role_can_only_start_the_run_state_machine_and_send_to_the_dead_letter_queue(
    stack: Stack,
) -> None:
    role = stack.resources["SchedulerRole"]["Properties"]
    (trust,) = stack.resolve(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == checks.ACCOUNT
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == stack.arn("ScheduleGroup")
    assert not role.get("ManagedPolicyArns")
    granted = {
        (action, resource)
        for statement in checks.role_statements(stack, "SchedulerRole")
        for action in statement.actions
        for resource in statement.resources
    }
    assert granted == {
        ("states:StartExecution", stack.arn("RunStateMachine")),
        ("sqs:SendMessage", stack.arn("DeadLetterQueue")),
    }


SCHEDULE_WRITES = {"scheduler:CreateSchedule", "scheduler:UpdateSchedule"}


def _grants(stack: Stack) -> list[tuple[str, checks.Statement]]:
    roles = [k for k, v in stack.resources.items() if v["Type"] == "AWS::IAM::Role"]
    return [(role, statement) for role in roles for statement in _statements(stack, role)]


def test_scheduler_grants_are_limited_to_the_stacks_schedule_group(stack: Stack) -> None:
    group = stack.physical_name("ScheduleGroup")
    in_group = f"arn:aws:scheduler:{checks.REGION}:{checks.ACCOUNT}:schedule/{group}/*"
    for role, statement in _grants(stack):
        for action in statement.actions:
            if action == "scheduler:ListSchedules":
                assert statement.resources == ("*",), role  # no resource type (UNSCOPABLE_ACTIONS)
            elif action.startswith("scheduler:"):
                assert statement.resources == (in_group,), (role, action)
            elif action == "iam:PassRole":
                assert statement.resources == (stack.arn("SchedulerRole"),), role
    # The schedule role is passed to EventBridge Scheduler only.
    for role_id, role in stack.resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        for conditional in role["Properties"].get("Policies", []):
            for raw in (stack.resolve(conditional) or {}).get("PolicyDocument", {}).get("Statement", []):
                if "iam:PassRole" in ([raw["Action"]] if isinstance(raw["Action"], str) else raw["Action"]):
                    assert raw["Condition"] == {
                        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
                    }, role_id


def test_no_function_but_the_intake_and_the_reconciler_can_create_schedules(stack: Stack) -> None:
    writers = {
        role
        for role, statement in _grants(stack)
        if set(statement.actions) & (SCHEDULE_WRITES | {"iam:PassRole"})
    }
    assert writers == {"IntakeFunctionRole", "ReconcileFunctionRole"}
    deleters = {role for role, statement in _grants(stack) if "scheduler:DeleteSchedule" in statement.actions}
    assert deleters == {"IntakeFunctionRole", "ReconcileFunctionRole", "RunBeginFunctionRole"}


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


def _drop_invoke(machine_id: str, function_id: str) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        props = checks.state_machines(sam)[machine_id]
        props["Policies"] = [
            p
            for p in props["Policies"]
            if not (
                isinstance(p, dict)
                and p.get("LambdaInvokePolicy", {}).get("FunctionName") == {"Ref": function_id}
            )
        ]

    return mutate


def _add_statement(function_id: str, statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(sam: dict[str, Any]) -> None:
        _function(sam, function_id)["Policies"].append({"Statement": [statement]})

    return mutate


def _rename_run_substitution(sam: dict[str, Any]) -> None:
    substitutions = checks.state_machines(sam)["RunStateMachine"]["DefinitionSubstitutions"]
    substitutions["RunSourceFunctionArnTypo"] = substitutions.pop("RunSourceFunctionArn")


def _scope_send_task_success_to_the_run_state_machine(sam: dict[str, Any]) -> None:
    # Written by habit; AWS documents no resource type for SendTaskSuccess, so it would be denied.
    for policy in _function(sam, "NotifyFunction")["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Action") == "states:SendTaskSuccess":
                statement["Resource"] = {
                    "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
                    "${AWS::StackName}-verification-run"
                }


def _query_runs_only_on_indexes(sam: dict[str, Any]) -> None:
    # GET /runs/{runId} queries the run's own items on the table; only GET /runs uses the indexes.
    for policy in _function(sam, "IntakeFunction")["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Resource") == {"Fn::GetAtt": ["RunsTable", "Arn"]}:
                statement["Action"] = [a for a in statement["Action"] if a != "dynamodb:Query"]


def _widen_the_intakes_schedules(sam: dict[str, Any]) -> None:
    for policy in _function(sam, "IntakeFunction")["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if "scheduler:CreateSchedule" in statement.get("Action", []):
                statement["Resource"] = {
                    "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/*/*"
                }


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
        _drop_invoke("RestoreStateMachine", "RecordFunction"),
        "state_machine_permissions",
        "lambda:InvokeFunction",
    ),
    # --- verification runs
    "run-state-machine-cannot-invoke-its-source-step": (
        _drop_invoke("RunStateMachine", "RunSourceFunction"),
        "state_machine_permissions",
        "RunStateMachine state RestoreSource: lambda:InvokeFunction",
    ),
    "run-substitution": (_rename_run_substitution, "substitutions", "RunSourceFunctionArn"),
    "missing-send-task-success": (
        _drop_statement("NotifyFunction", "states:SendTaskSuccess"),
        "code_permissions",
        "NotifyFunction: states:SendTaskSuccess",
    ),
    "send-task-success-scoped-to-a-state-machine": (
        _scope_send_task_success_to_the_run_state_machine,
        "code_permissions",
        "NotifyFunction: states:SendTaskSuccess (on Resource '*') is not allowed",
    ),
    "missing-run-start": (
        _drop_statement("IntakeFunction", "states:StartExecution"),
        "code_permissions",
        "IntakeFunction: states:StartExecution",
    ),
    "missing-pass-role": (
        _drop_statement("ReconcileFunction", "iam:PassRole"),
        "code_permissions",
        "ReconcileFunction: iam:PassRole",
    ),
    "unused-scheduler-action": (
        _add_statement(
            "RunBeginFunction",
            {
                "Effect": "Allow",
                "Action": "scheduler:CreateSchedule",
                "Resource": {
                    "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:"
                    "schedule/${ScheduleGroup}/*"
                },
            },
        ),
        "unused_grants",
        "grants scheduler:CreateSchedule, which its code never calls",
    ),
    "unused-list-schedules": (
        _add_statement(
            "IntakeFunction", {"Effect": "Allow", "Action": "scheduler:ListSchedules", "Resource": "*"}
        ),
        "unused_grants",
        "grants scheduler:ListSchedules",
    ),
    "schedules-outside-the-group": (
        _widen_the_intakes_schedules,
        "least_privilege",
        "outside the stack's schedule group",
    ),
    "missing-run-event": (
        _drop_statement("RunFinishFunction", "events:PutEvents"),
        "code_permissions",
        "RunFinishFunction: events:PutEvents",
    ),
    "runs-table-query-only-on-indexes": (
        _query_runs_only_on_indexes,
        "code_permissions",
        "IntakeFunction: dynamodb:Query on "
        "arn:aws:dynamodb:us-east-1:123456789012:table/flexrestore-RunsTable-R4ND0M (RUNS_TABLE)",
    ),
    "unused-run-env": (
        _set(
            ["Resources", "RunFinishFunction", "Properties", "Environment", "Variables", "PLANS_TABLE"], "x"
        ),
        "environment",
        "RunFinishFunction: the template sets PLANS_TABLE",
    ),
    "runs-table-pitr": (
        _set(
            [
                "Resources",
                "RunsTable",
                "Properties",
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled",
            ],
            False,
        ),
        "tables",
        "RunsTable (RUNS_TABLE): point-in-time recovery is off",
    ),
    "plans-table-key": (
        _set(
            ["Resources", "PlansTable", "Properties", "KeySchema"],
            [{"AttributeName": "planName", "KeyType": "HASH"}],
        ),
        "tables",
        "PlansTable (PLANS_TABLE): KeySchema",
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
