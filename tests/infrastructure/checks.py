"""Offline checks of template.yaml against the code it deploys.

cfn-lint alone no longer runs the SAM transform, so it misses errors inside SAM resources, policy templates
and the state machine definition. Here the template is transformed with aws-sam-translator, the
CloudFormation that comes out is linted, and its wiring is compared with what the code actually does (read
with ``ast``, never from hand-kept lists): handlers, environment variables, AWS actions and their resources,
ASL substitutions, table schemas.

Every ``check_*`` function returns a list of problems (empty = fine), so tests can run them on deliberately
broken copies of the template and see them fail.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
PACKAGE = "flexrestore"

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "flexrestore"

# A plan's validator (ValidatorFunctionArns), a function and one alias of it.
VALIDATOR_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-validator"
# Deploy-time parameters without a default; the checks run once with a secret name and once with a full ARN.
SECRET_NAME = "flexrestore/atlas"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:flexrestore/atlas-AbCdEf"
PARAMETER_SETS: dict[str, dict[str, str]] = {
    "secret-by-name": {"AtlasSecret": SECRET_NAME},
    "secret-by-arn": {
        "AtlasSecret": SECRET_ARN,
        "NotificationEmail": "ops@example.com",
        "LambdaSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719",
        "LambdaSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
        "AtlasSecretKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "ValidatorFunctionArns": f"{VALIDATOR_ARN},{VALIDATOR_ARN}:live",
    },
}

# cfn-lint rules switched off, each with its reason. Keep this list short.
IGNORED_LINT_RULES: dict[str, str] = {}

# Actions that AWS does not let a policy scope to a resource (the Service Authorization Reference lists no
# resource type for them: a statement must say Resource "*"); the only ones allowed on Resource "*", each with
# its reason.
_LOG_DELIVERY = "Step Functions log delivery to CloudWatch Logs (AWS documents these with Resource '*')"
UNSCOPABLE_ACTIONS: dict[str, str] = {
    "logs:CreateLogDelivery": _LOG_DELIVERY,
    "logs:GetLogDelivery": _LOG_DELIVERY,
    "logs:UpdateLogDelivery": _LOG_DELIVERY,
    "logs:DeleteLogDelivery": _LOG_DELIVERY,
    "logs:ListLogDeliveries": _LOG_DELIVERY,
    "logs:PutResourcePolicy": _LOG_DELIVERY,
    "logs:DescribeResourcePolicies": _LOG_DELIVERY,
    "logs:DescribeLogGroups": _LOG_DELIVERY,
    # A task token is the capability: it names no resource an IAM policy could match (the reference lists no
    # resource type for SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat). Notify, Reconcile and the run's
    # source step answer the run state machine's waiting Map iterations with it.
    "states:SendTaskSuccess": "a task token names no resource IAM can scope to",
    # Lists every schedule of the account; GroupName only filters the answer (no resource type either).
    # Reconcile lists the stack's schedule group to delete schedules whose plan is gone.
    "scheduler:ListSchedules": "a list action without a resource type",
}

# The AWS-managed policies a role may carry, with the actions they grant (not readable offline).
ALLOWED_MANAGED_POLICIES: dict[str, set[str]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    # SAM attaches it to every function with a VpcConfig, even one whose condition leaves it out; ENI actions
    # cannot be scoped to a resource and the code never calls them.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    # API Gateway's account-level role for access logs (it creates and writes the API's log streams).
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    },
}

# Library calls that reach AWS without a visible boto3 call in our code:
# name used -> (service, the setting naming its resource, operations).
LIBRARY_AWS_CALLS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # powertools idempotency persistence (its DynamoDB layer)
    "DynamoDBPersistenceLayer": (
        "dynamodb",
        "IDEMPOTENCY_TABLE",
        ("GetItem", "PutItem", "UpdateItem", "DeleteItem"),
    ),
    # powertools parameters
    "get_secret": ("secretsmanager", "ATLAS_SECRET_ID", ("GetSecretValue",)),
    "SecretsProvider": ("secretsmanager", "ATLAS_SECRET_ID", ("GetSecretValue",)),
}

# Which configured value names the resource of our own boto3 calls of a service (the idempotency table is
# only reached through powertools, above).
RESOURCE_SETTINGS: dict[str, str] = {
    "dynamodb": "RESTORES_TABLE",
    "secretsmanager": "ATLAS_SECRET_ID",
    "stepfunctions": "STATE_MACHINE_ARN",
    "sns": "NOTIFICATION_TOPIC_ARN",
    "events": "EVENT_BUS_NAME",
}

# No setting names the resource: the calls act on Resource "*" (their actions are UNSCOPABLE_ACTIONS).
NO_SETTING = ""

# The adapters whose calls name another resource than their service's usual one (above):
# (module, class) -> {service: setting}.
UNIT_RESOURCE_SETTINGS: dict[tuple[str, str], dict[str, str]] = {
    ("flexrestore.aws.plans", "PlanTable"): {"dynamodb": "PLANS_TABLE"},
    ("flexrestore.aws.runs", "RunTable"): {"dynamodb": "RUNS_TABLE"},
    ("flexrestore.aws.executions", "RunStarts"): {"stepfunctions": "RUN_STATE_MACHINE_ARN"},
    ("flexrestore.aws.executions", "RunStatus"): {"stepfunctions": "RUN_STATE_MACHINE_ARN"},
    # A plan's validator: one of the functions the setting lists.
    ("flexrestore.aws.validators", "LambdaValidators"): {"lambda": "VALIDATOR_FUNCTION_ARNS"},
    # SendTaskSuccess: the run state machine's task tokens, which name no resource.
    ("flexrestore.aws.executions", "TaskCallbacks"): {"stepfunctions": NO_SETTING},
    ("flexrestore.aws.schedules", "PlanSchedules"): {"scheduler": "SCHEDULE_GROUP"},
}

# A DynamoDB read that can go to a table's indexes is told apart by this suffix (``Query@index``): a unit
# that names ``IndexName`` queries (or scans) an index, one that does not, the table itself.
ON_INDEX = "@index"

# Calls that need a permission on another resource besides their own: (service, operation) ->
# [(service, the setting naming that resource, the operation it takes there)]. A schedule's target names the
# role Scheduler assumes to start the run state machine: creating or updating it passes that role.
IMPLIED_CALLS: dict[str, dict[str, tuple[tuple[str, str, str], ...]]] = {
    "scheduler": {
        "CreateSchedule": (("iam", "SCHEDULER_ROLE_ARN", "PassRole"),),
        "UpdateSchedule": (("iam", "SCHEDULER_ROLE_ARN", "PassRole"),),
    },
}

# IAM has no action for a few API operations; they are authorised by the item-level actions they perform.
COMPOSITE_OPERATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("dynamodb", "TransactWriteItems"): ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"),
    ("dynamodb", "TransactGetItems"): ("GetItem",),
    # Lambda's Invoke API is authorized as lambda:InvokeFunction.
    ("lambda", "Invoke"): ("InvokeFunction",),
}

# Environment the Lambda runtime provides itself.
RUNTIME_ENV_PREFIXES = ("AWS_", "_X_AMZN", "LAMBDA_", "_HANDLER", "TZ")


# --------------------------------------------------------------------------- transform and lint


def load_sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    template: dict[str, Any] = yaml_parse(path.read_text())
    return template


def code_uri(sam: dict[str, Any], logical_id: str) -> str:
    props = sam["Resources"][logical_id].get("Properties", {})
    uri = props.get("CodeUri") or sam.get("Globals", {}).get("Function", {}).get("CodeUri")
    return str(uri)


def transform(sam: dict[str, Any]) -> dict[str, Any]:
    """SAM -> CloudFormation, offline: local code and layers made dummy S3 URIs, the ASL file inlined."""
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
    from samtranslator.translator.transform import transform as sam_transform

    sam = copy.deepcopy(sam)
    function_globals = sam.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str) and not function_globals["CodeUri"].startswith(
        "s3://"
    ):
        function_globals["CodeUri"] = "s3://offline-check/code.zip"
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://offline-check/code.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = "s3://offline-check/layer.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            props["Definition"] = json.loads((REPO / props.pop("DefinitionUri")).read_text())

    class BundledManagedPolicies:
        def load(self) -> dict[str, str]:
            return get_bundled_managed_policy_map("aws") or {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    result: dict[str, Any] = sam_transform(sam, {}, BundledManagedPolicies())
    return result


def lint(cfn: dict[str, Any]) -> list[str]:
    """cfn-lint errors (not warnings) in the transformed template."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(
        json.dumps(cfn),
        config=ManualArgs(regions=[REGION], ignore_checks=list(IGNORED_LINT_RULES)),
    )
    return [
        f"{match.rule.id} {match.message} at {'/'.join(str(p) for p in match.path)}"
        for match in matches
        if match.rule.id.startswith("E")
    ]


# --------------------------------------------------------------------------- a small CloudFormation evaluator


class Unresolvable(Exception):
    pass


@dataclass
class Stack:
    """The transformed template with deploy-time values, enough to turn intrinsics into concrete strings."""

    cfn: dict[str, Any]
    parameters: dict[str, str]
    _conditions: dict[str, bool] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.cfn["Resources"]
        return {
            logical_id: resource
            for logical_id, resource in resources.items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def parameter(self, name: str) -> Any:
        spec = self.cfn.get("Parameters", {}).get(name)
        if spec is None:
            raise Unresolvable(f"Ref to unknown parameter {name}")
        if name in self.parameters:
            value = self.parameters[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise Unresolvable(f"parameter {name} has no default and no value")
        if spec.get("Type") == "CommaDelimitedList":
            return [item.strip() for item in value.split(",")] if value else [""]
        return value

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self._condition_value(self.cfn["Conditions"][name]))
        return self._conditions[name]

    def _condition_value(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, args),) = expr.items()
            if key == "Fn::Equals":
                return self.resolve(args[0]) == self.resolve(args[1])
            if key == "Fn::Not":
                return not self._condition_value(args[0])
            if key == "Fn::And":
                return all(self._condition_value(a) for a in args)
            if key == "Fn::Or":
                return any(self._condition_value(a) for a in args)
            if key == "Condition":
                return self.condition(args)
        return self.resolve(expr)

    def physical_name(self, logical_id: str) -> str:
        resource = self.cfn["Resources"][logical_id]
        props = resource.get("Properties", {})
        for key in (
            "TableName",
            "TopicName",
            "StateMachineName",
            "FunctionName",
            "LogGroupName",
            "QueueName",
            "Name",
        ):
            if key in props:
                return str(self.resolve(props[key]))
        return f"{STACK}-{logical_id}-R4ND0M"

    def arn(self, logical_id: str) -> str:
        kind = self.cfn["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
        by_type = {
            "AWS::DynamoDB::Table": prefix.format("dynamodb") + f"table/{name}",
            "AWS::SNS::Topic": prefix.format("sns") + name,
            "AWS::StepFunctions::StateMachine": prefix.format("states") + f"stateMachine:{name}",
            "AWS::Lambda::Function": prefix.format("lambda") + f"function:{name}",
            "AWS::SQS::Queue": prefix.format("sqs") + name,
            "AWS::Logs::LogGroup": prefix.format("logs") + f"log-group:{name}:*",
            "AWS::Events::Rule": prefix.format("events") + f"rule/{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Scheduler::ScheduleGroup": prefix.format("scheduler") + f"schedule-group/{name}",
        }
        return by_type.get(kind, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{name}")

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.cfn.get("Parameters", {}):
            return self.parameter(name)
        if name not in self.cfn["Resources"]:
            raise Unresolvable(f"Ref to unknown resource {name}")
        kind = self.cfn["Resources"][name]["Type"]
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"):
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.physical_name(name)}"
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.cfn["Resources"]:
            raise Unresolvable(f"GetAtt of unknown resource {logical_id}")
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in ("Name", "TopicName", "QueueName"):
            return self.physical_name(logical_id)
        raise Unresolvable(f"GetAtt {logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, args),) = value.items()
        if key == "Ref":
            return self.ref(args)
        if key == "Fn::GetAtt":
            logical_id, attribute = args if isinstance(args, list) else args.split(".", 1)
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
            resolved = {k: self.resolve(v) for k, v in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in resolved:
                    return str(resolved[name])
                if "." in name:
                    return self.get_att(*name.split(".", 1))
                return self.ref(name)

            return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
        if key == "Fn::Join":
            items = self.resolve(args[1])
            return str(args[0]).join(str(v) for v in (items if isinstance(items, list) else [items]))
        if key == "Fn::Select":
            return self.resolve(args[1])[int(self.resolve(args[0]))]
        if key == "Fn::Split":
            return str(self.resolve(args[1])).split(args[0])
        if key == "Fn::If":
            return self.resolve(args[1] if self.condition(args[0]) else args[2])
        raise Unresolvable(f"{key} is not supported by the offline evaluator")


# --------------------------------------------------------------------------- IAM


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    source: str


def role_statements(stack: Stack, role_logical_id: str) -> list[Statement]:
    role = stack.resources[role_logical_id]["Properties"]
    statements: list[Statement] = []
    for conditional in role.get("Policies", []):
        policy = stack.resolve(conditional)
        if not policy:  # an Fn::If that chose AWS::NoValue
            continue
        for raw in policy["PolicyDocument"].get("Statement", []):
            actions = raw.get("Action", [])
            resources = raw.get("Resource", [])
            statements.append(
                Statement(
                    effect=raw.get("Effect", "Allow"),
                    actions=tuple([actions] if isinstance(actions, str) else actions),
                    resources=tuple([resources] if isinstance(resources, str) else resources),
                    source=str(policy.get("PolicyName")),
                )
            )
    for arn in stack.resolve(role.get("ManagedPolicyArns", [])):
        granted = ALLOWED_MANAGED_POLICIES.get(arn)
        statements.append(
            Statement("Allow", tuple(sorted(granted or {"<unknown managed policy>"})), ("*",), source=arn)
        )
    return statements


def _iam_match(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def allowed(statements: Iterable[Statement], action: str, resource: str) -> bool:
    statements = list(statements)

    def matches(statement: Statement) -> bool:
        return any(_iam_match(a, action) for a in statement.actions) and any(
            fnmatch.fnmatchcase(resource, r.replace("[", "[[]")) for r in statement.resources
        )

    if any(s.effect == "Deny" and matches(s) for s in statements):
        return False
    return any(s.effect == "Allow" and matches(s) for s in statements)


def function_role(stack: Stack, function_id: str) -> str:
    role = stack.resources[function_id]["Properties"]["Role"]
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise Unresolvable(f"{function_id} uses a role this check cannot follow: {role}")
    return str(role["Fn::GetAtt"][0])


# --------------------------------------------------------------------------- reading the code


def module_path(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk_runtime(tree: ast.AST) -> Iterator[ast.AST]:
    """ast.walk without the ``if TYPE_CHECKING:`` blocks (imports there never run) and without annotations
    (a type named in an annotation is not called)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in _runtime_children(node) if not _type_checking_block(child))


def _runtime_children(node: ast.AST) -> Iterator[ast.AST]:
    skipped = {"annotation", "returns"}
    for name, value in ast.iter_fields(node):
        if name in skipped:
            continue
        if isinstance(value, ast.AST):
            yield value
        elif isinstance(value, list):
            yield from (item for item in value if isinstance(item, ast.AST))


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported(node: ast.AST, package: str) -> list[str]:
    """The modules an import statement names (and the submodules it may name)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]  # submodules, if they are
    return []


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def import_closure(module: str, root: Path) -> dict[str, Path]:
    """Every module of our package that importing ``module`` can run (function-level imports included)."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen or not name.startswith(PACKAGE):
            continue
        path = module_path(name, root)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        for node in _walk_runtime(_parse(path)):
            pending.extend(_imported(node, _package_of(name, path)))
    return seen


def settings_aliases() -> dict[str, str]:
    from flexrestore.settings import Settings

    return {name: str(info.alias) for name, info in Settings.model_fields.items()}


@dataclass
class CodeFacts:
    """What the code under one handler does that the template must provide for."""

    modules: list[str]
    env: set[str]  # environment variables read (through the settings model or directly)
    aws: dict[str, set[str]]  # boto3 service name -> API operation names (CamelCase)
    # (boto3 service name, the setting naming the resource) -> API operation names
    calls: dict[tuple[str, str], set[str]] = field(default_factory=dict)


def _service_operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name, from botocore's service model."""
    from botocore import xform_name

    model = _botocore_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


@cache
def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@dataclass(frozen=True)
class _Unit:
    """A piece of code that runs as a whole: a function or method, a class body, or a module's top level."""

    name: str  # what other code calls it by ("" for a module's top level)
    nodes: tuple[ast.AST, ...]
    module: str
    owner: str = ""  # the class it belongs to ("" for a module-level function or a module's top level)


def _units(module: str, tree: ast.Module) -> list[_Unit]:
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    units: list[_Unit] = []
    top: list[ast.AST] = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            units.append(_Unit(statement.name, (statement,), module))
            top.extend(statement.decorator_list)  # decorators run at import
        elif isinstance(statement, ast.ClassDef):
            body: list[ast.AST] = [*statement.bases, *statement.decorator_list]
            for member in statement.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    is_dunder = member.name.startswith("__") and member.name.endswith("__")
                    name = statement.name if is_dunder else member.name  # dunders run when the class is used
                    units.append(_Unit(name, (member,), module, statement.name))
                    top.extend(member.decorator_list)
                elif not isinstance(member, definitions):
                    body.append(member)
            units.append(_Unit(statement.name, tuple(body), module, statement.name))
        elif not _type_checking_block(statement):  # imports for type checkers only never run
            top.append(statement)
    units.append(_Unit("", tuple(top), module))
    return units


@cache
def _module_aliases(module: str, root: Path) -> frozenset[str]:
    """The names a module binds to modules of our package by its imports (anywhere in it)."""
    path = module_path(module, root)
    if path is None:
        return frozenset()
    package = _package_of(module, path)
    aliases: set[str] = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = _imported(node, package)[0]
            for alias in node.names:
                if module_path(f"{base}.{alias.name}", root) is not None:
                    aliases.add(alias.asname or alias.name)
    return frozenset(aliases)


def _local_names(unit: _Unit) -> set[str]:
    """The variables of a function or method unit (its parameters, the names it assigns, its loop and
    comprehension targets): reading one (``for source in sources: ... source.index``) calls no function so
    named."""
    if len(unit.nodes) != 1 or not isinstance(unit.nodes[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return set()
    function = unit.nodes[0]
    local: set[str] = set()
    declared: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.arguments):
            every = [*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg]
            local.update(argument.arg for argument in every if argument is not None)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            declared.update(node.names)
    return local - declared


@cache
def _class_bases(root: Path) -> dict[str, set[str]]:
    """Every class of the package by name, with the names of its bases (by name: good enough to over-
    approximate which classes an instance's methods can come from)."""
    bases: dict[str, set[str]] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    ast.unparse(base).rpartition(".")[2] for base in node.bases
                )
    return bases


@cache
def _class_family(owner: str, root: Path) -> frozenset[str]:
    """The classes whose methods ``self.f()`` in a method of ``owner`` can run: those in the method
    resolution order of ``owner`` or of any subclass of it (an override, a mixin's method)."""
    bases = _class_bases(root)

    def closure(start: set[str], step: Callable[[str], set[str]]) -> set[str]:
        found, pending = set(start), list(start)
        while pending:
            for other in step(pending.pop()) - found:
                found.add(other)
                pending.append(other)
        return found

    subclasses = closure({owner}, lambda c: {k for k, v in bases.items() if c in v})
    return frozenset(closure(subclasses, lambda c: bases.get(c, set())))


def _names(unit: _Unit, root: Path) -> tuple[set[str], set[str], set[str]]:
    """What a unit can call by name: ``(any, methods, own methods)``. A name it reads (``f``,
    ``module.f``) reaches any function, class or method so named; an attribute of anything but a module
    (``record.f``) reaches only methods (a module-level function there was stored as a value, and that
    value was named); an attribute of ``self`` or ``cls`` in a method reaches only the methods of its
    class's family (``_class_family``). A name assigned to (``f = ...``, ``self.f = ...``, a dataclass field
    ``f: int``) calls nothing."""
    aliases = _module_aliases(unit.module, root)

    def on_module(node: ast.AST) -> bool:
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in aliases

    def on_self(node: ast.AST) -> bool:
        return bool(unit.owner) and isinstance(node, ast.Name) and node.id in ("self", "cls")

    anything: set[str] = set()
    methods: set[str] = set()
    own: set[str] = set()
    local = _local_names(unit)
    for root_node in unit.nodes:
        for node in _walk_runtime(root_node):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store) and node.id not in local:
                anything.add(node.id)
            elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Store):
                if on_module(node.value):
                    anything.add(node.attr)
                elif on_self(node.value):
                    own.add(node.attr)
                else:
                    methods.add(node.attr)
    return anything, methods, own


# Decorators of a module-level object that wrap the function they decorate and register it nowhere (the
# powertools Logger's): the function runs only when something calls it. A module of several Lambda handlers
# (handlers/run.py) would otherwise reach every one of them from each.
WRAPPING_DECORATORS = frozenset({"inject_lambda_context"})


def _registered_functions(tree: ast.Module) -> set[str]:
    """Module-level functions a framework object of that module calls (``@app.get("/x")``,
    ``@app.not_found``): reached once the module is loaded, though no code of ours names them."""
    assigned = {
        target.id
        for statement in tree.body
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name)
    }

    def root(node: ast.AST) -> str | None:
        while isinstance(node, ast.Call | ast.Attribute):
            node = node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else None

    def registers(decorator: ast.AST) -> bool:
        called = decorator.func if isinstance(decorator, ast.Call) else decorator
        wraps = isinstance(called, ast.Attribute) and called.attr in WRAPPING_DECORATORS
        return root(decorator) in assigned and not wraps

    return {
        statement.name
        for statement in tree.body
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(registers(decorator) for decorator in statement.decorator_list)
    }


def reachable_code(handler_module: str, handler: str, root: Path) -> list[_Unit]:
    """The code a handler can run: its function, the top level of every module loaded on the way, and
    whatever those reach, following calls by name (a name reaches every function, method or class so named
    in a loaded module; see ``_names``). A method runs only on an instance of its class, so it is reached
    once its name is and its class is (named by reached code: ``RestoreStore(...)``, a subclass's bases).
    A module is loaded by an import at the top level of a loaded module, or by an import inside a function
    that is reached: the wiring module imports every adapter, but only inside the functions that build them.
    Errs on the side of finding too much: a stray match costs a permission, a miss a crash."""
    loaded: dict[str, list[_Unit]] = {}
    seen: dict[int, _Unit] = {}
    pending: list[_Unit] = []
    by_name: dict[str, list[_Unit]] = {}
    names_wanted: set[str] = set()  # reaching anything so named
    methods_wanted: set[str] = set()  # reaching methods so named
    own_wanted: dict[str, set[str]] = {}  # reaching methods so named of these classes (``self.f()``)
    classes: set[tuple[str, str]] = set()  # (module, class) of the classes reached
    waiting: dict[tuple[str, str], list[_Unit]] = {}  # methods reached by name, of classes not (yet) reached

    def load(name: str) -> None:
        if name in loaded or not name.startswith(PACKAGE):
            return
        path = module_path(name, root)
        if path is None:
            return
        units = _units(name, _parse(path))
        loaded[name] = units
        parts = name.split(".")
        for i in range(1, len(parts)):
            load(".".join(parts[:i]))  # parent packages run first
        registered = _registered_functions(_parse(path))
        for unit in units:
            by_name.setdefault(unit.name, []).append(unit)
            if (
                unit.name == ""
                or unit.name in names_wanted
                or (unit.owner and unit.name in methods_wanted)
                or unit.owner in own_wanted.get(unit.name, ())
                or unit.name in registered
            ):
                pending.append(unit)

    def imports_of(unit: _Unit) -> list[str]:
        path = module_path(unit.module, root)
        package = _package_of(unit.module, path) if path else unit.module
        return [
            m
            for root_node in unit.nodes
            for node in _walk_runtime(root_node)
            for m in _imported(node, package)
        ]

    load(handler_module)
    pending.extend(u for u in loaded[handler_module] if u.name == handler)
    while pending:
        unit = pending.pop()
        if id(unit) in seen:
            continue
        owner = (unit.module, unit.owner)
        if unit.owner and unit.name != unit.owner and owner not in classes:
            waiting.setdefault(owner, []).append(unit)
            continue
        if unit.owner and unit.name == unit.owner:  # the class body or a dunder: the class is in use
            classes.add(owner)
            pending.extend(waiting.pop(owner, ()))
        seen[id(unit)] = unit
        for module in imports_of(unit):
            load(module)
        anything, methods, own = _names(unit, root)
        for name in anything - names_wanted:
            names_wanted.add(name)
            pending.extend(by_name.get(name, ()))
        for name in methods - methods_wanted - names_wanted:
            methods_wanted.add(name)
            pending.extend(u for u in by_name.get(name, ()) if u.owner)
        for name in own - methods_wanted - names_wanted:
            family = _class_family(unit.owner, root)
            if not family <= own_wanted.get(name, set()):
                own_wanted.setdefault(name, set()).update(family)
                pending.extend(u for u in by_name.get(name, ()) if u.owner in family)
    return list(seen.values())


def adapter_setting(unit: _Unit, service: str) -> str:
    """The setting naming the resource of ``service`` calls this unit makes (its adapter's, else the
    service's)."""
    return UNIT_RESOURCE_SETTINGS.get((unit.module, unit.owner), {}).get(
        service, RESOURCE_SETTINGS.get(service, "")
    )


def code_facts(handler_module: str, handler: str, root: Path) -> CodeFacts:
    """What the code under a handler needs (a fresh copy: callers may change it)."""
    return copy.deepcopy(_code_facts(handler_module, handler, root))


@cache  # one reading per handler and code root: twelve functions share a few handlers, tests share all
def _code_facts(handler_module: str, handler: str, root: Path) -> CodeFacts:
    """What the code a handler reaches needs. A unit's AWS calls are the operations of the clients it builds
    (``client("dynamodb")``) that it calls itself; the setting naming their resource is its adapter's
    (``UNIT_RESOURCE_SETTINGS``, else ``RESOURCE_SETTINGS``). A client a unit builds and hands to a library
    is covered by ``LIBRARY_AWS_CALLS``."""
    aliases = settings_aliases()
    fields = set(aliases)
    units = reachable_code(handler_module, handler, root)
    env: set[str] = set()
    aws: dict[str, set[str]] = {}
    calls: dict[tuple[str, str], set[str]] = {}

    def note(service: str, setting: str, operations: Iterable[str]) -> None:
        aws.setdefault(service, set()).update(operations)
        calls.setdefault((service, setting), set()).update(operations)
        implied = IMPLIED_CALLS.get(service, {})
        for operation in operations:
            for implied_service, implied_setting, implied_operation in implied.get(operation, ()):
                note(implied_service, implied_setting, (implied_operation,))

    for unit in units:
        services: set[str] = set()
        called: set[str] = set()
        for node in (n for root_node in unit.nodes for n in _walk_runtime(root_node)):
            if isinstance(node, ast.Attribute) and node.attr in fields:
                env.add(aliases[node.attr])
            if isinstance(node, ast.Call):
                func = node.func
                name = (
                    func.attr
                    if isinstance(func, ast.Attribute)
                    else func.id
                    if isinstance(func, ast.Name)
                    else ""
                )
                first = node.args[0] if node.args else None
                literal = (
                    first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                )
                if name == "require" and literal in fields:
                    env.add(aliases[literal])
                elif name in ("client", "resource") and literal:
                    services.add(literal)
                elif name in ("get_paginator", "get_waiter") and literal:
                    called.add(literal)
                elif (name in ("getenv",) and literal) or (
                    name == "get" and literal and "environ" in ast.unparse(func)
                ):
                    env.add(literal)
                elif name:
                    called.add(name)
            if isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    env.add(key.value)
            used = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else None
            )
            if used in LIBRARY_AWS_CALLS:
                service, setting, operations = LIBRARY_AWS_CALLS[used]
                note(service, setting, operations)
        on_index = any(
            (isinstance(n, ast.Constant) and n.value == "IndexName")
            or (isinstance(n, ast.keyword) and n.arg == "IndexName")
            for root_node in unit.nodes
            for n in _walk_runtime(root_node)
        )
        for service in services:
            operations = _service_operations(service)
            found = {operations[method] for method in called if method in operations}
            found |= {op for op in operations.values() if op in called}  # get_paginator("Query") spellings
            if service == "dynamodb" and on_index:
                found = {f"{op}{ON_INDEX}" if op in ("Query", "Scan") else op for op in found}
            if found:
                note(service, adapter_setting(unit, service), found)
    env = {name for name in env if not name.startswith(RUNTIME_ENV_PREFIXES)}
    modules = sorted({unit.module for unit in units if unit.name})
    return CodeFacts(modules=modules, env=env, aws=aws, calls=calls)


# --------------------------------------------------------------------------- the checks


def lambda_functions(stack: Stack) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack.resources.items() if v["Type"] == "AWS::Lambda::Function"}


def function_env(stack: Stack, function_id: str) -> dict[str, str]:
    props = stack.resources[function_id]["Properties"]
    variables = props.get("Environment", {}).get("Variables", {})
    return {k: str(stack.resolve(v)) for k, v in variables.items()}


def check_handlers(sam: dict[str, Any], stack: Stack) -> list[str]:
    problems = []
    for function_id, resource in lambda_functions(stack).items():
        handler = resource["Properties"]["Handler"]
        root = REPO / code_uri(sam, function_id)
        module_name, _, attribute = handler.rpartition(".")
        path = module_path(module_name, root)
        if path is None:
            problems.append(f"{function_id}: Handler {handler}: no module {module_name} under {root}")
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            problems.append(f"{function_id}: Handler {handler}: import failed: {type(exc).__name__}: {exc}")
            continue
        if Path(str(module.__file__)).resolve() != path.resolve():
            problems.append(f"{function_id}: {module_name} imports from {module.__file__}, not from {path}")
        if not callable(getattr(module, attribute, None)):
            problems.append(f"{function_id}: Handler {handler}: {module_name} has no callable {attribute}")
    return problems


def facts_by_function(sam: dict[str, Any], stack: Stack) -> dict[str, CodeFacts]:
    facts = {}
    for function_id, resource in lambda_functions(stack).items():
        module_name, _, handler = resource["Properties"]["Handler"].rpartition(".")
        facts[function_id] = code_facts(module_name, handler, REPO / code_uri(sam, function_id))
    return facts


def check_environment(sam: dict[str, Any], stack: Stack) -> list[str]:
    """Every variable the code reads is set; every settings variable set is read by that function's code."""
    problems = []
    known = set(settings_aliases().values())
    for function_id, facts in facts_by_function(sam, stack).items():
        env = function_env(stack, function_id)
        for name in sorted(facts.env - set(env)):
            problems.append(f"{function_id}: the code reads {name} but the template does not set it")
        for name in sorted((set(env) & known) - facts.env):
            problems.append(f"{function_id}: the template sets {name} but no code of this function reads it")
    return problems


def _resource_arns(service: str, operation: str, value: str) -> list[str]:
    """The ARNs a call ``operation`` acts on, given the value of the setting that names its resource."""
    prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    if service == "dynamodb":
        table = prefix.format("dynamodb") + f"table/{value}"
        return [f"{table}/index/some-index"] if operation.endswith(ON_INDEX) else [table]
    if service == "secretsmanager":
        return [
            value if value.startswith("arn:") else prefix.format("secretsmanager") + f"secret:{value}-AbCdEf"
        ]
    if service == "stepfunctions":
        if operation == "StartExecution":
            return [value]
        # DescribeExecution: the executions of that state machine
        name = value.rsplit(":", 1)[-1]
        return [prefix.format("states") + f"execution:{name}:some-execution-name"]
    if service == "events":
        return [value if value.startswith("arn:") else prefix.format("events") + f"event-bus/{value}"]
    if service == "lambda":  # every function of a comma-separated list (none when it is empty)
        return [arn for arn in value.split(",") if arn]
    if service == "scheduler":  # a schedule of the group the setting names (a plan's name)
        return [prefix.format("scheduler") + f"schedule/{value}/some-plan"]
    return [value]


def _iam_actions(service: str, operation: str) -> list[str]:
    iam_prefix = {"stepfunctions": "states"}.get(service, service)
    operation = operation.removesuffix(ON_INDEX)
    operations = COMPOSITE_OPERATIONS.get((service, operation), (operation,))
    return [f"{iam_prefix}:{op}" for op in operations]


def check_code_permissions(sam: dict[str, Any], stack: Stack) -> list[str]:
    """Every AWS call the code of a function makes is allowed by that function's role, on its resources."""
    problems = []
    for function_id, facts in facts_by_function(sam, stack).items():
        statements = role_statements(stack, function_role(stack, function_id))
        env = function_env(stack, function_id)
        for (service, setting), operations in sorted(facts.calls.items()):
            for operation in sorted(operations):
                for action in _iam_actions(service, operation):
                    if action in UNSCOPABLE_ACTIONS:  # acts on Resource "*", whatever names it
                        if not allowed(statements, action, "*"):
                            problems.append(f"{function_id}: {action} (on Resource '*') is not allowed")
                        continue
                    if setting not in facts.env:
                        problems.append(
                            f"{function_id}: the code calls {action} but reads no {setting or 'setting'} "
                            "to name its resource"
                        )
                        continue
                    if setting not in env:
                        continue  # reported by check_environment
                    for arn in _resource_arns(service, operation, env[setting]):
                        if not allowed(statements, action, arn):
                            problems.append(f"{function_id}: {action} on {arn} ({setting}) is not allowed")
    return problems


def used_actions(facts: CodeFacts) -> set[str]:
    """The IAM actions a function's code needs (``dynamodb:Query``, ``states:StartExecution``, ...)."""
    return {
        action
        for (service, _), operations in facts.calls.items()
        for op in operations
        for action in _iam_actions(service, op)
    }


def check_least_privilege(stack: Stack) -> list[str]:
    problems = []
    roles = {k for k, v in stack.resources.items() if v["Type"] == "AWS::IAM::Role"}
    tables = {stack.arn(k) for k, v in stack.resources.items() if v["Type"] == "AWS::DynamoDB::Table"}
    secret = _resource_arns("secretsmanager", "GetSecretValue", stack.parameter("AtlasSecret"))[0]
    groups = [
        stack.physical_name(k)
        for k, v in stack.resources.items()
        if v["Type"] == "AWS::Scheduler::ScheduleGroup"
    ]
    schedules = [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/" for group in groups]
    stack_roles = {stack.arn(k) for k in roles}
    for role in sorted(roles):
        props = stack.resources[role]["Properties"]
        for arn in stack.resolve(props.get("ManagedPolicyArns", [])):
            if arn not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{role}: managed policy {arn} is not on the allowed list")
        for statement in role_statements(stack, role):
            if statement.source in ALLOWED_MANAGED_POLICIES:
                continue
            for action in statement.actions:
                if action == "*" or action.endswith(":*"):
                    problems.append(f"{role} ({statement.source}): wildcard action {action}")
                if "*" in statement.resources and action not in UNSCOPABLE_ACTIONS:
                    problems.append(f"{role} ({statement.source}): {action} on Resource '*'")
                service = action.split(":")[0]
                for resource in statement.resources:
                    if resource == "*" and action in UNSCOPABLE_ACTIONS:
                        continue
                    if service == "dynamodb" and not any(
                        resource == t or resource.startswith(f"{t}/index/") for t in tables
                    ):
                        problems.append(
                            f"{role}: {action} on {resource}, which is not one of the stack's tables"
                        )
                    if service == "scheduler" and not any(resource.startswith(s) for s in schedules):
                        problems.append(f"{role}: {action} on {resource}, outside the stack's schedule group")
                    if action == "iam:PassRole" and resource not in stack_roles:
                        problems.append(f"{role}: {action} on {resource}, which is not a role of this stack")
                    if service == "kms" and resource != stack.parameter("AtlasSecretKmsKeyArn"):
                        problems.append(f"{role}: {action} on {resource}, not only the Atlas secret's key")
                    if service == "secretsmanager":
                        name_pattern = resource.replace("??????", "")
                        if resource != secret and not (
                            resource.endswith("-??????") and secret.startswith(name_pattern)
                        ):
                            problems.append(f"{role}: {action} on {resource}, not only the Atlas secret")
    return problems


# --------------------------------------------------------------------------- the state machine

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def state_machines(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state machine of the template: logical id -> its SAM properties."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in sam["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def asl_text(sam: dict[str, Any], machine_id: str) -> str:
    return (REPO / state_machines(sam)[machine_id]["DefinitionUri"]).read_text()


def check_substitutions(sam: dict[str, Any]) -> list[str]:
    problems = []
    for machine_id, props in state_machines(sam).items():
        used = set(PLACEHOLDER.findall(asl_text(sam, machine_id)))
        given = set(props.get("DefinitionSubstitutions", {}))
        problems += [
            f"{machine_id}: the ASL uses ${{{name}}} but DefinitionSubstitutions does not set it"
            for name in sorted(used - given)
        ] + [
            f"{machine_id}: DefinitionSubstitutions sets {name} but the ASL never uses it"
            for name in sorted(given - used)
        ]
    return problems


def substituted_definition(sam: dict[str, Any], stack: Stack, machine_id: str) -> dict[str, Any]:
    props = state_machines(sam)[machine_id]
    values = {k: str(stack.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()}
    text = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), asl_text(sam, machine_id))
    definition: dict[str, Any] = json.loads(text)
    return definition


def check_asl_parses(sam: dict[str, Any], stack: Stack) -> list[str]:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    problems = []
    for machine_id in state_machines(sam):
        try:
            AmazonStateLanguageParser.parse(json.dumps(substituted_definition(sam, stack, machine_id)))
        except Exception as exc:
            problems.append(f"{machine_id}: the ASL does not parse: {type(exc).__name__}: {exc}")
    return problems


def _task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _task_states(branch.get("States", {}))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _task_states(processor.get("States", {}))


def _param(params: dict[str, Any], key: str) -> Any:
    return params.get(key, params.get(f"{key}.$"))


def asl_calls(definition: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(state, IAM action, resource ARN or '<dynamic>') for every task."""
    calls = []
    prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    for name, state in _task_states(definition["States"]):
        resource = state["Resource"]
        params = state.get("Parameters") or state.get("Arguments") or {}
        integration = re.match(r"arn:aws:states:::([\w-]+):(\w+)(?:\.\w+)?$", resource)
        if resource.startswith("arn:aws:lambda:"):
            calls.append((name, "lambda:InvokeFunction", resource))
        elif integration and integration.group(1) == "lambda":
            calls.append((name, "lambda:InvokeFunction", str(_param(params, "FunctionName"))))
        elif integration and integration.group(1) == "dynamodb":
            action = integration.group(2)
            table = str(_param(params, "TableName"))
            calls.append(
                (
                    name,
                    f"dynamodb:{action[0].upper()}{action[1:]}",
                    prefix.format("dynamodb") + f"table/{table}",
                )
            )
        elif integration and integration.group(1) == "sns":
            calls.append((name, "sns:Publish", str(_param(params, "TopicArn"))))
        elif integration and integration.group(1) == "events":
            buses = {str(e.get("EventBusName", "default")) for e in params.get("Entries", [{}])}
            calls.extend(
                (
                    name,
                    "events:PutEvents",
                    bus if bus.startswith("arn:") else prefix.format("events") + f"event-bus/{bus}",
                )
                for bus in buses
            )
        elif resource.startswith("arn:aws:states:::aws-sdk:"):
            service, action = resource.removeprefix("arn:aws:states:::aws-sdk:").split(":")[:2]
            calls.append((name, f"{service}:{action[0].upper()}{action[1:]}", "<dynamic>"))
        else:
            calls.append((name, f"<unknown integration {resource}>", "<dynamic>"))
    return calls


def state_machine_role(stack: Stack, machine_id: str) -> str:
    role = stack.resources[machine_id]["Properties"]["RoleArn"]
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise Unresolvable(f"{machine_id} uses a role this check cannot follow: {role}")
    return str(role["Fn::GetAtt"][0])


def check_state_machine_permissions(sam: dict[str, Any], stack: Stack) -> list[str]:
    problems = []
    functions = {stack.arn(k) for k in lambda_functions(stack)}
    for machine_id in state_machines(sam):
        statements = role_statements(stack, state_machine_role(stack, machine_id))
        for state, action, resource in asl_calls(substituted_definition(sam, stack, machine_id)):
            where = f"{machine_id} state {state}"
            if action.startswith("<unknown"):
                problems.append(f"{where}: {action}")
            elif "$" in resource or resource == "<dynamic>" or "${" in resource:
                problems.append(f"{where}: {action} on a resource chosen at run time; name it in the ASL")
            elif not allowed(statements, action, resource):
                problems.append(f"{where}: {action} on {resource} is not allowed by the state machine role")
            if action == "lambda:InvokeFunction" and resource not in functions:
                problems.append(f"{where}: invokes {resource}, which is not a function of this stack")
    return problems


# --------------------------------------------------------------------------- tables


def _table_shape(definition: dict[str, Any]) -> dict[str, Any]:
    def index(i: dict[str, Any]) -> tuple[Any, ...]:
        return (i["IndexName"], json.dumps(i["KeySchema"]), json.dumps(i["Projection"], sort_keys=True))

    return {
        "AttributeDefinitions": sorted(
            json.dumps(a, sort_keys=True) for a in definition["AttributeDefinitions"]
        ),
        "KeySchema": definition["KeySchema"],
        "GlobalSecondaryIndexes": sorted(index(i) for i in definition.get("GlobalSecondaryIndexes", [])),
        "BillingMode": definition.get("BillingMode"),
    }


def check_tables(stack: Stack) -> list[str]:
    from flexrestore.aws.table_schema import (
        idempotency_table_definition,
        plans_table_definition,
        restores_table_definition,
        runs_table_definition,
    )

    problems = []
    # variable -> (its shape, the TTL attribute if any, whether it must have point-in-time recovery)
    expected = {
        "RESTORES_TABLE": (restores_table_definition("x"), None, True),
        "IDEMPOTENCY_TABLE": (idempotency_table_definition("x"), "expiration", False),
        "PLANS_TABLE": (plans_table_definition("x"), None, True),
        "RUNS_TABLE": (runs_table_definition("x"), None, True),
    }
    # Find each table through the variable the functions receive, not by logical id.
    tables: dict[str, str] = {}
    for function_id in lambda_functions(stack):
        for name, value in stack.resolve(
            stack.resources[function_id]["Properties"].get("Environment", {}).get("Variables", {})
        ).items():
            if name in expected:
                tables[name] = value
    for variable, (definition, ttl, pitr) in expected.items():
        matches = [
            k
            for k, v in stack.resources.items()
            if v["Type"] == "AWS::DynamoDB::Table" and stack.physical_name(k) == tables.get(variable)
        ]
        if not matches:
            problems.append(f"no table of the stack is passed as {variable}")
            continue
        resource = stack.resources[matches[0]]
        props = resource["Properties"]
        want, have = _table_shape(definition), _table_shape(props)
        for key in want:
            if want[key] != have[key]:
                problems.append(
                    f"{matches[0]} ({variable}): {key} is {have[key]}, table_schema.py says {want[key]}"
                )
        if ttl and props.get("TimeToLiveSpecification") != {"AttributeName": ttl, "Enabled": True}:
            problems.append(f"{matches[0]} ({variable}): TTL must be on {ttl}")
        if not props.get("SSESpecification", {}).get("SSEEnabled"):
            problems.append(f"{matches[0]} ({variable}): SSE is not enabled")
        if pitr and not props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            problems.append(f"{matches[0]} ({variable}): point-in-time recovery is off")
        if pitr and resource.get("DeletionPolicy") != "Retain":
            problems.append(f"{matches[0]} ({variable}): a stack deletion would delete it (DeletionPolicy)")
    return problems


API_GATEWAY_TIMEOUT_SECONDS = 29  # API Gateway gives up on a Lambda integration after this (REST API default)


def function_timeout(sam: dict[str, Any], function_id: str) -> int:
    props = sam["Resources"][function_id].get("Properties", {})
    return int(props.get("Timeout") or sam.get("Globals", {}).get("Function", {}).get("Timeout") or 3)


def check_time_budgets(sam: dict[str, Any], stack: Stack) -> list[str]:
    """Time fits together: one Atlas request (AtlasTimeoutSeconds at its largest) and the margin the code
    keeps after its last Atlas call fit in every function that calls Atlas; a function behind the API answers
    before API Gateway gives up, and the code's own cap on the API's Atlas calls fits in it."""
    from flexrestore.bootstrap import INVOCATION_MARGIN_SECONDS
    from flexrestore.triggers import API_ANSWER_SECONDS

    problems = []
    largest_request = float(sam["Parameters"]["AtlasTimeoutSeconds"]["MaxValue"])
    for function_id, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        timeout = function_timeout(sam, function_id)
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if "ATLAS_TIMEOUT_SECONDS" in variables and largest_request + INVOCATION_MARGIN_SECONDS > timeout:
            problems.append(
                f"{function_id}: Timeout {timeout} s leaves no room for one Atlas request of up to "
                f"{largest_request:g} s (AtlasTimeoutSeconds MaxValue) "
                f"plus the {INVOCATION_MARGIN_SECONDS:g} s margin"
            )
        events = resource["Properties"].get("Events", {}).values()
        if any(event.get("Type") == "Api" for event in events):
            if timeout > API_GATEWAY_TIMEOUT_SECONDS:
                problems.append(
                    f"{function_id}: Timeout {timeout} s is longer than API Gateway waits "
                    f"({API_GATEWAY_TIMEOUT_SECONDS} s): a caller could get 504 while the work goes on"
                )
            if timeout < API_ANSWER_SECONDS + INVOCATION_MARGIN_SECONDS:
                problems.append(
                    f"{function_id}: the API's Atlas calls may take {API_ANSWER_SECONDS:g} s plus the "
                    f"{INVOCATION_MARGIN_SECONDS:g} s margin, more than its Timeout of {timeout} s"
                )
    return problems


METRIC_CALLS = ("add_metric", "count", "duration", "value")  # powertools, and the domain's Metrics port


def _string_constants(root: Path) -> dict[str, set[str]]:
    """Module-level ``NAME = "text"`` (or ``NAME: Final = "text"``) of the package: name -> its values."""
    constants: dict[str, set[str]] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        for statement in _parse(path).body:
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
                if isinstance(statement, ast.AnnAssign)
                else []
            )
            value = getattr(statement, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for target in targets:
                    if isinstance(target, ast.Name):
                        constants.setdefault(target.id, set()).add(value.value)
    return constants


def emitted_metrics(root: Path = REPO / "src") -> set[str]:
    """Metric names the code can emit (powertools ``add_metric``, the Metrics port's ``count``, ``duration``
    and ``value``).

    A literal name counts, and so does a module-level string constant (``METRIC_RUN_NOT_SUCCEEDED``); a
    computed one (``ENDING_METRICS[status]``) counts every CamelCase string value of that module's dict
    literals, which is where such tables live.
    """
    names: set[str] = set()
    constants = _string_constants(root)
    for path in sorted((root / PACKAGE).rglob("*.py")):
        tree = _parse(path)
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in METRIC_CALLS
        ]
        for call in calls:
            name = next(
                (k.value for k in call.keywords if k.arg == "name"), call.args[0] if call.args else None
            )
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
            elif (
                isinstance(name, ast.Name | ast.Attribute)
                and (name.id if isinstance(name, ast.Name) else name.attr) in constants
            ):
                names.update(
                    value
                    for value in constants[name.id if isinstance(name, ast.Name) else name.attr]
                    if re.fullmatch(r"[A-Z][a-z]+[A-Za-z]*", value)
                )
            elif name is not None:
                for node in ast.walk(tree):
                    if isinstance(node, ast.Dict):
                        names.update(
                            v.value
                            for v in node.values
                            if isinstance(v, ast.Constant)
                            and isinstance(v.value, str)
                            and re.fullmatch(r"[A-Z][A-Za-z]+", v.value)
                        )
    return names


# Services a role may be granted without the code calling them, and why.
INFRASTRUCTURE_GRANTS = {
    "logs": "Lambda and Step Functions write their own logs",
    "xray": "active tracing",
    "ec2": "VPC network interfaces (only with LambdaSubnetIds)",
    "sqs": "Lambda's on-failure destination (the dead-letter queue) for asynchronous invocations",
    "kms": "decrypting the Atlas secret when it has its own key (goes with secretsmanager)",
}


def check_no_unused_grants(sam: dict[str, Any], stack: Stack) -> list[str]:
    """Each role grants only the actions its code (or its state machine definition) calls: per action, not
    per service, so a function that only reads and updates a table cannot delete from it."""
    problems = []
    used_by_role: dict[str, set[str]] = {}
    for function_id, facts in facts_by_function(sam, stack).items():
        used_by_role[function_role(stack, function_id)] = used_actions(facts)
    for machine_id in state_machines(sam):
        used_by_role[state_machine_role(stack, machine_id)] = {
            action for _, action, _ in asl_calls(substituted_definition(sam, stack, machine_id))
        }
    for role, used in sorted(used_by_role.items()):
        for statement in role_statements(stack, role):
            for action in statement.actions:
                service = action.split(":")[0]
                if service in INFRASTRUCTURE_GRANTS:
                    continue
                if not any(fnmatch.fnmatchcase(needed, action) for needed in used):
                    problems.append(
                        f"{role} ({statement.source}) grants {action}, which its code never calls"
                    )
    return problems
