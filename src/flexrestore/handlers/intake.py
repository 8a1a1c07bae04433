"""Intake Lambda: one handler for the HTTP API, scheduled verification and alarm-driven recovery.

Thin on purpose: it tells the triggers apart, turns each into a restore request (domain/triggers.py,
domain/request.py), runs the one intake flow (domain/intake.py) over real adapters, and shapes the answer.

- API Gateway REST (proxy): ``POST /restores``, ``GET /restores/{restoreId}``, ``GET /restores``.
  Errors are JSON ``{"message", "errorCode", "errors"?: [{"field", "message"}]}``; status codes in
  domain/intake.py. Exactly once: keyed on the ``Idempotency-Key`` header and the caller, or (no header) on
  the request and the caller for ``NO_KEY_WINDOW_SECONDS``.
- EventBridge "Scheduled Event" and "CloudWatch Alarm State Change" (shapes in domain/triggers.py): keyed on
  the event id. A refusal (bad request, guard, busy target) is logged, counted, audited, told on SNS and
  returned (a retry cannot help); a fault (Atlas down, misconfiguration, the same event in progress
  elsewhere) raises, so Lambda's asynchronous retries run it again and then its on-failure destination
  keeps it.
- A restore whose Atlas create fails ends at once as a final ERROR record, notified on SNS and EventBridge
  like any other ending (NOTIFICATION_TOPIC_ARN, EVENT_BUS_NAME).

Cold start checks RECOVERY_PLANS and the guard settings and fails the import with a message naming the
alarm and the field, so a broken plan is seen at deployment, not when its alarm fires.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from flexrestore import clock
from flexrestore.aws.clients import client
from flexrestore.domain.intake import (
    Intake,
    IntakeConfig,
    IntakeError,
    from_atlas,
    idempotency_key,
    misconfigured,
    request_fingerprint,
)
from flexrestore.domain.request import (
    ATLAS_ID_PATTERN,
    CLUSTER_NAME_PATTERN,
    InvalidRequest,
    RestoreRequest,
    decode_json_object,
    parse_request,
)
from flexrestore.domain.triggers import (
    AlarmIgnored,
    RecoveryPlanError,
    RequestedBy,
    ScheduledRestores,
    TriggeredRestore,
    event_kind,
    load_recovery_plans,
    parse_alarm_event,
    parse_scheduled_event,
)
from flexrestore.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

MAX_BODY_BYTES = 16 * 1024
NO_KEY_WINDOW_SECONDS = 600  # identical POSTs without Idempotency-Key this close together are one request
MAX_IDEMPOTENCY_KEY_CHARS = 128
IN_PROGRESS_RETRY_AFTER = 5
# A scheduled list's next restore starts only with this much of the invocation left (one takes ~1 s
# when Atlas is well); the rest is left to the event's retry rather than cut off by the timeout.
MIN_MS_PER_SCHEDULED_RESTORE = 5000
_RESTORE_ID = re.compile(r"[a-f0-9]{32}")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_JSON_TYPES = ("application/json", "application/vnd.api+json")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "flexrestore"))
# Our modules log through stdlib loggers; give them the powertools JSON formatter and correlation id.
for _name in ("flexrestore.intake", "flexrestore.atlas", "flexrestore.executions"):
    logging.getLogger(_name)
if logger.name != "flexrestore":
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    copy_config_to_registered_loggers(
        source_logger=logger, include={"flexrestore.intake", "flexrestore.atlas", "flexrestore.executions"}
    )


class IntakeFailed(RuntimeError):
    """Raised to Lambda for an EventBridge delivery that should be retried (never carries a secret)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- configuration checked at cold start ------------------------------------------------------------


@lru_cache(maxsize=4)
def recovery_plans(settings: Settings) -> dict[str, RestoreRequest]:
    """RECOVERY_PLANS, validated with the request model and the static target guards."""
    from flexrestore.domain.guards import GuardConfig, validate_recovery_plans

    plans = load_recovery_plans(settings.recovery_plans)
    problems = validate_recovery_plans(plans, GuardConfig.from_settings(settings))
    if problems:
        raise RecoveryPlanError("RECOVERY_PLANS: " + "; ".join(problems))
    return plans


def check_configuration() -> None:
    """Fail fast (at import, i.e. cold start) on a broken RECOVERY_PLANS or target-safety setting."""
    recovery_plans(get_settings())


check_configuration()


# --- the handler ----------------------------------------------------------------------------------------


def _handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event_kind(event)
    if kind == "api":
        request_context = event.get("requestContext") or {}
        logger.set_correlation_id(request_context.get("requestId"))
        with logger.append_context_keys(trigger="api"):
            return _api_app().resolve(event, context)
    if kind in ("schedule", "alarm"):
        logger.set_correlation_id(event.get("id") if isinstance(event.get("id"), str) else None)
        with logger.append_context_keys(trigger=kind):
            return _eventbridge(event, context, kind)
    keys = sorted(event)[:10] if isinstance(event, dict) else type(event).__name__
    logger.error("intake received an event it does not handle", extra={"eventKeys": keys})
    raise IntakeFailed(f"intake does not handle this event (keys: {keys})")


def _wrap(function: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[[dict[str, Any], Any], Any]:
    wrapped: Callable[[dict[str, Any], Any], Any] = logger.inject_lambda_context(clear_state=True)(function)
    if _tracing_enabled():  # X-Ray costs ~300 ms of cold start: only when asked for and installed
        from aws_lambda_powertools import Tracer

        wrapped = Tracer().capture_lambda_handler(wrapped)
    return wrapped


def _tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower()
    if disabled in ("1", "true", "yes", "on"):
        return False
    return importlib.util.find_spec("aws_xray_sdk") is not None


handler = _wrap(_handler)


# --- EventBridge: schedules and alarms ----------------------------------------------------------------


def _eventbridge(event: dict[str, Any], context: Any, kind: str) -> dict[str, Any]:
    triggered: TriggeredRestore | None = None
    try:
        if kind == "schedule":
            parsed = parse_scheduled_event(event)
            if isinstance(parsed, ScheduledRestores):
                return _scheduled_list(event, context, parsed)
            triggered = parsed
        else:
            decision = parse_alarm_event(event, recovery_plans(get_settings()))
            if isinstance(decision, AlarmIgnored):
                logger.info(
                    decision.message, extra={"ignoredReason": decision.reason, "alarm": decision.alarm}
                )
                count("AlarmIgnored", "reason", decision.reason)
                return {"status": "IGNORED", "reason": decision.reason, "message": decision.message}
            triggered = decision
    except InvalidRequest as exc:
        return _invalid(kind, event, exc)
    return _submit_triggered(kind, event, context, triggered, idempotency_key("event", str(event["id"])))


def _submit_triggered(
    kind: str, event: Mapping[str, Any], context: Any, triggered: TriggeredRestore, key: str
) -> dict[str, Any]:
    """One restore of a schedule or alarm: a refusal is answered (and told), a fault raises IntakeFailed."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    try:
        status, answer = build_intake(context).submit(triggered.request, triggered.requested_by, key)
        return {"statusCode": status, **answer}
    except InvalidRequest as exc:
        return _invalid(kind, event, exc, triggered)
    except IntakeError as exc:
        if exc.refusal:
            logger.warning("%s event refused: %s", kind, exc.message, extra={"errorCode": exc.code})
            refused = {"statusCode": exc.status, **exc.body()}
            _tell_refused(kind, event, triggered, refused)
            return refused
        logger.error("%s event failed, to be retried: %s", kind, exc.message, extra={"errorCode": exc.code})
        raise IntakeFailed(
            f"{exc.status} {exc.code}: {exc.message}", status=exc.status, code=exc.code
        ) from None
    except IdempotencyAlreadyInProgressError:
        # Another delivery of this event is being handled right now; a later retry gets its answer.
        logger.warning("the same %s event is already being handled; failing this delivery for a retry", kind)
        raise IntakeFailed(
            "this event is already being handled; retry later", status=409, code="REQUEST_IN_PROGRESS"
        ) from None


def _invalid(
    kind: str, event: Mapping[str, Any], exc: InvalidRequest, triggered: TriggeredRestore | None = None
) -> dict[str, Any]:
    logger.error("%s event refused: %s", kind, exc.message, extra={"errors": exc.errors})
    count("RestoreRefused", "reason", "invalid-request")
    refused = {"statusCode": 400, "errorCode": "INVALID_REQUEST", **exc.body()}
    _tell_refused(kind, event, triggered, refused)
    return refused


def _scheduled_list(event: Mapping[str, Any], context: Any, scheduled: ScheduledRestores) -> dict[str, Any]:
    """A schedule asking for several restores: each element runs the one intake flow on its own, keyed on
    the event id and its index, so a redelivered event creates nothing new and two elements never share a
    restore. A refused element is answered and told like a single refused request; a fault on one element
    (Atlas down, the same event in progress elsewhere) does not stop the others: all run, then the event
    raises for Lambda's retry, where the elements already done replay their stored answers."""
    outcomes: list[dict[str, Any]] = []
    faults: list[str] = []
    for index, element in enumerate(scheduled.elements):
        with logger.append_context_keys(requestIndex=index):
            if isinstance(element, InvalidRequest):
                outcome = _invalid("schedule", event, element)
            elif index and _time_left_ms(context) < MIN_MS_PER_SCHEDULED_RESTORE:
                # Better left to the retry than cut off by the function's timeout halfway through.
                logger.warning("too little time left for restore %s of this event; left to the retry", index)
                outcome = {"statusCode": 503, "errorCode": "DEFERRED", "message": "left to the event's retry"}
                faults.append(f"request[{index}]: deferred (too little time left)")
            else:
                key = idempotency_key("event", scheduled.event_id, f"request[{index}]")
                try:
                    outcome = _submit_triggered("schedule", event, context, element, key)
                except IntakeFailed as exc:
                    outcome = {"statusCode": exc.status, "errorCode": exc.code, "message": str(exc)}
                    faults.append(f"request[{index}]: {exc}")
                except Exception as exc:  # one element's surprise must not lose the others
                    logger.exception("restore %s of the scheduled event failed", index)
                    outcome = {
                        "statusCode": 500,
                        "errorCode": "INTERNAL_ERROR",
                        "message": type(exc).__name__,
                    }
                    faults.append(f"request[{index}]: {type(exc).__name__}")
        outcomes.append({"index": index, **outcome})
    answer = {"schedule": scheduled.schedule, "eventId": scheduled.event_id, "restores": outcomes}
    if faults:
        logger.error(
            "%s of %s restores of the scheduled event hit a fault; the event is failed for a retry",
            len(faults),
            len(outcomes),
            extra={"restores": outcomes},
        )
        raise IntakeFailed(
            f"{len(faults)} of {len(outcomes)} restores of this event failed, to be retried with the event "
            f"(the others keep their answers): {'; '.join(faults)}"
        )
    return answer


def _time_left_ms(context: Any) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else MIN_MS_PER_SCHEDULED_RESTORE


def _tell_refused(
    kind: str, event: Mapping[str, Any], triggered: TriggeredRestore | None, refused: Mapping[str, Any]
) -> None:
    """Nobody waits on a schedule's or an alarm's answer: a refused one is told to people (SNS), so a
    recovery plan refused at 3 a.m. or a verification that stopped running is not silent."""
    settings = get_settings()
    if not settings.notification_topic_arn:
        return
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    who = (triggered.requested_by.schedule or triggered.requested_by.alarm) if triggered else None
    who = who or str(detail.get("schedule") or detail.get("alarmName") or "unknown")[:64]
    route = (
        f"{triggered.request.cluster_name} -> {triggered.request.target_deployment_item_name}"
        if triggered
        else "invalid request"
    )
    subject = re.sub(r"[\x00-\x1f\x7f]+", " ", f"Restore refused ({kind} {who}): {route}")[:99]
    lines = [
        subject,
        "",
        f"Trigger:      {kind} {who} (event {event.get('id')})",
        f"Answer:       {refused.get('statusCode')} {refused.get('errorCode')}",
        f"Why:          {refused.get('message')}",
    ]
    for problem in refused.get("errors") or []:
        lines.append(f"Field:        {problem.get('field')}: {problem.get('message')}")
    if triggered:
        lines += ["", json.dumps(triggered.request.to_wire(), indent=2, ensure_ascii=False)]
    try:
        from flexrestore.aws.notifier import Notifier

        Notifier(settings.notification_topic_arn, settings.event_bus_name).publish(subject, "\n".join(lines))
    except Exception as exc:  # the refusal is logged, counted and audited already
        logger.error("could not notify the refusal: %s", type(exc).__name__)


# --- HTTP API -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _api_app() -> APIGatewayRestResolver:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyInconsistentStateError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    app = APIGatewayRestResolver()

    def answer(
        status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Response[str]:
        return Response(
            status_code=status,
            content_type="application/json",
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            headers=dict(headers or {}),
        )

    def error(exc: IntakeError) -> Response[str]:
        """The error body every answer shares; ``Retry-After`` when the caller should come back."""
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return answer(exc.status, exc.body(), headers)

    @app.post("/restores")
    def create_restore() -> Response[str]:
        current = app.current_event
        caller = _caller(current.raw_event)
        content_type = (current.get_header_value("content-type", case_sensitive=False) or "").split(";")[0]
        if content_type.strip().lower() not in ("", *_JSON_TYPES):
            raise InvalidRequest(
                "the body must be JSON",
                [{"field": "Content-Type", "message": "must be application/json"}],
            )
        data = decode_json_object(_body_text(current.raw_event), max_bytes=MAX_BODY_BYTES)
        request = parse_request(data)
        header = current.get_header_value("idempotency-key", case_sensitive=False)
        if header is not None:
            if len(header) > MAX_IDEMPOTENCY_KEY_CHARS or not _PRINTABLE_ASCII.fullmatch(header):
                raise InvalidRequest(
                    "the Idempotency-Key header is not valid",
                    [
                        {
                            "field": "Idempotency-Key",
                            "message": f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
                        }
                    ],
                )
            key, expiry = idempotency_key("api-key", caller or "", header), None
        else:
            key, expiry = (
                idempotency_key("api-body", caller or "", request_fingerprint(request)),
                NO_KEY_WINDOW_SECONDS,
            )
        request_id = (current.raw_event.get("requestContext") or {}).get("requestId")
        requested_by = RequestedBy("api", caller=caller, event_id=request_id)
        status, body = build_intake(app.lambda_context, expires_after=expiry).submit(
            request, requested_by, key
        )
        headers = {"Location": body["location"]} if status == 202 else None
        return answer(status, body, headers)

    @app.get("/restores/<restore_id>")
    def get_restore(restore_id: str) -> Response[str]:
        if not _RESTORE_ID.fullmatch(restore_id):
            raise InvalidRequest(
                "the restore id is not valid",
                [{"field": "restoreId", "message": "must be 32 lowercase hexadecimal characters"}],
            )
        record = _records().get(restore_id)
        if record is None:
            return error(IntakeError(404, "RESTORE_NOT_FOUND", f"no restore {restore_id}", refusal=True))
        return answer(200, record)

    @app.get("/restores")
    def list_restores() -> Response[str]:
        from flexrestore.aws.records import MAX_PAGE, BadPageToken

        params = app.current_event.query_string_parameters or {}
        problems = []
        unknown = sorted(set(params) - {"cluster", "groupId", "limit", "nextToken"})
        if unknown:
            problems.append(
                {
                    "field": "query",
                    "message": "unknown parameter; allowed: cluster, groupId, limit, nextToken",
                }
            )
        cluster, group = params.get("cluster"), params.get("groupId")
        if cluster is not None and not (len(cluster) <= 64 and re.fullmatch(CLUSTER_NAME_PATTERN, cluster)):
            problems.append({"field": "cluster", "message": "must be a Flex cluster name"})
        if group is not None and not re.fullmatch(ATLAS_ID_PATTERN, group):
            problems.append({"field": "groupId", "message": "must be 24 lowercase hexadecimal characters"})
        limit_text = params.get("limit", "20")
        limit = int(limit_text) if limit_text.isdigit() and len(limit_text) <= 3 else 0
        if not 1 <= limit <= MAX_PAGE:
            problems.append({"field": "limit", "message": f"must be a whole number from 1 to {MAX_PAGE}"})
        if problems:
            raise InvalidRequest("the query is not valid", problems)
        try:
            records, next_token = _records().list_restores(
                group_id=group, cluster_name=cluster, limit=limit, next_token=params.get("nextToken")
            )
        except BadPageToken as exc:
            raise InvalidRequest(
                "the query is not valid", [{"field": "nextToken", "message": str(exc)}]
            ) from None
        return answer(200, {"restores": records, "nextToken": next_token})

    @app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
    def invalid(exc: InvalidRequest) -> Response[str]:
        if _is_post(app):
            count("RestoreRefused", "reason", "invalid-request")
        logger.info("request refused: %s", exc.message, extra={"errors": exc.errors})
        return answer(400, {"message": exc.message, "errorCode": "INVALID_REQUEST", "errors": exc.errors})

    @app.exception_handler(IntakeError)  # type: ignore[untyped-decorator]
    def refused(exc: IntakeError) -> Response[str]:
        log = logger.warning if exc.status < 500 else logger.error
        log("request ended with %s %s: %s", exc.status, exc.code, exc.message)
        return error(exc)

    @app.exception_handler(IdempotencyAlreadyInProgressError)  # type: ignore[untyped-decorator]
    def in_progress(exc: Exception) -> Response[str]:
        return error(
            IntakeError(
                409,
                "REQUEST_IN_PROGRESS",
                "the same request is already being handled; retry later to get its answer",
                refusal=False,
                retry_after=IN_PROGRESS_RETRY_AFTER,
            )
        )

    @app.exception_handler(IdempotencyValidationError)  # type: ignore[untyped-decorator]
    def key_reused(exc: Exception) -> Response[str]:
        return error(
            IntakeError(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was already used with a different request; use a new key",
                refusal=True,
                errors=[{"field": "Idempotency-Key", "message": "was used before with a different body"}],
            )
        )

    @app.exception_handler(IdempotencyPersistenceLayerError)  # type: ignore[untyped-decorator]
    @app.exception_handler(IdempotencyInconsistentStateError)  # type: ignore[untyped-decorator]
    def store_unavailable(exc: Exception) -> Response[str]:
        # DynamoDB (the idempotency store) failed: nothing may be created without it; a retry is safe.
        logger.error("idempotency store failed: %s", type(exc).__name__)
        return error(
            IntakeError(
                503,
                "STORE_UNAVAILABLE",
                "the service could not record this request; retry later",
                refusal=False,
                retry_after=IN_PROGRESS_RETRY_AFTER,
            )
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def unexpected(exc: Exception) -> Response[str]:
        # Logged with its traceback for operators; the caller gets the correlation id, never the trace.
        logger.exception("unexpected error in the intake")
        request_id = (app.current_event.raw_event.get("requestContext") or {}).get("requestId")
        message = f"internal error; operators can find it in the logs under request id {request_id}"
        return error(IntakeError(500, "INTERNAL_ERROR", message, refusal=False))

    @app.not_found
    def no_route(exc: Exception) -> Response[str]:
        return error(IntakeError(404, "NOT_FOUND", "no such resource; see /restores", refusal=True))

    return app


def _body_text(event: Mapping[str, Any]) -> str:
    """The request body as text; API Gateway base64-encodes it for binary media types."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body)
    if len(body) > MAX_BODY_BYTES * 2:  # far too large once decoded, whatever it holds
        raise InvalidRequest(
            "the body is too large", [{"field": "body", "message": f"must be at most {MAX_BODY_BYTES} bytes"}]
        )
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "the body is not valid",
            [{"field": "body", "message": "must be base64 of UTF-8 JSON (the request says isBase64Encoded)"}],
        ) from None


def _is_post(app: APIGatewayRestResolver) -> bool:
    return app.current_event.http_method == "POST"


def _caller(event: Mapping[str, Any]) -> str | None:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    caller = identity.get("userArn")
    return caller if isinstance(caller, str) and caller else None


# --- wiring ---------------------------------------------------------------------------------------------


def build_intake(context: Any, *, expires_after: int | None = None) -> Intake:
    """The intake flow over the real adapters (each built lazily; boto3 clients are cached)."""
    from flexrestore.aws.executions import Executions
    from flexrestore.aws.locks import TargetLocks
    from flexrestore.domain.guards import GuardConfig

    settings = get_settings()
    try:
        table = settings.require("restores_table")
        executions = Executions(settings.require("state_machine_arn"))
        settings.require("idempotency_table")
        guards = GuardConfig.from_settings(settings)
    except SettingsError as exc:
        raise misconfigured(exc) from None

    def record_refusal(**kwargs: Any) -> str:
        from flexrestore.aws.records import record_refusal as write

        return write(table, **kwargs)

    return Intake(
        atlas=_atlas_client,
        records=_records(),
        locks=TargetLocks(table),
        executions=executions,
        refusals=record_refusal,
        exactly_once=_exactly_once(settings, context, expires_after or settings.idempotency_ttl_seconds),
        count=count,
        config=IntakeConfig(
            guards=guards,
            poll_deadline_seconds=settings.poll_deadline_seconds,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        ),
        now=clock.utcnow,
        notify_ended=_notify_ended(settings),
    )


def _notify_ended(settings: Settings) -> Callable[[dict[str, Any]], None] | None:
    """SNS + EventBridge for a restore that ended in the intake, as the poll loop's Notify step does."""
    if not settings.notification_topic_arn:
        return None
    topic, bus = settings.notification_topic_arn, settings.event_bus_name

    def notify(record: dict[str, Any]) -> None:
        from flexrestore.aws.notifier import Notifier
        from flexrestore.domain import outcome

        notifier = Notifier(topic, bus)
        sends: dict[str, Callable[[], str]] = {
            outcome.SNS_CHANNEL: lambda: notifier.publish(outcome.subject(record), outcome.body(record)),
            outcome.EVENTS_CHANNEL: lambda: notifier.put_outcome_event(outcome.detail_type("ERROR"), record),
        }
        told: dict[str, Any] = {}
        for channel, send in sends.items():
            try:
                told[channel] = outcome.delivered(channel, clock.utcnow(), send())
            except Exception as exc:
                logger.error("could not notify the failed restore on %s: %s", channel, type(exc).__name__)
                told[channel] = outcome.not_delivered(clock.utcnow(), type(exc).__name__, "delivery failed")
        _records().set_notification(str(record["restoreId"]), told)

    return notify


def _records() -> Any:
    from flexrestore.aws.records import RestoreRecords

    settings = get_settings()
    try:
        return RestoreRecords(settings.require("restores_table"))
    except SettingsError as exc:
        raise misconfigured(exc) from None


_TRANSIENT_SECRET_FAILURES = ("Throttling", "InternalServiceError", "Timeout", "EndpointConnectionError")


def _atlas_client() -> Any:
    """The container's Atlas client; a missing or malformed secret is named, never shown."""
    from flexrestore.atlas.errors import AtlasError
    from flexrestore.atlas.factory import get_atlas_client
    from flexrestore.aws.secrets import SecretUnavailable

    try:
        return get_atlas_client()
    except SecretUnavailable as exc:
        if any(word in str(exc) for word in _TRANSIENT_SECRET_FAILURES):
            raise IntakeError(503, "SECRET_UNAVAILABLE", str(exc), refusal=False, retry_after=30) from None
        raise misconfigured(exc) from None
    except SettingsError as exc:
        raise misconfigured(exc) from None
    except AtlasError as exc:
        raise from_atlas(exc, "the Atlas credentials") from None


_persistence: tuple[Any, DynamoDBPersistenceLayer] | None = None


def _persistence_layer(table_name: str) -> DynamoDBPersistenceLayer:
    # One per container and DynamoDB client: powertools registers a hook on the client per layer built.
    global _persistence
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    dynamodb = client("dynamodb")
    if _persistence is None or _persistence[0] is not dynamodb or _persistence[1].table_name != table_name:
        _persistence = (dynamodb, DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb))
    return _persistence[1]


def _exactly_once(
    settings: Settings, context: Any, expires_after: int
) -> Callable[[str, Mapping[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]:
    """Powertools idempotency on IDEMPOTENCY_TABLE: the first answer for a key is stored and replayed.

    A concurrent duplicate gets IdempotencyAlreadyInProgressError; an attempt that crashed holds its
    key only until its Lambda invocation would have timed out (the context's remaining time).
    """

    def run(key: str, validation: Mapping[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="validation",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after,
        )
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)

        def once(payload: Mapping[str, Any]) -> dict[str, Any]:
            return work()

        guarded = idempotent_function(
            once,
            data_keyword_argument="payload",
            persistence_store=_persistence_layer(settings.require("idempotency_table")),
            config=config,
            key_prefix="flexrestore-intake",
        )
        result: dict[str, Any] = guarded(payload={"key": key, "validation": dict(validation)})
        return result

    return run


def count(name: str, dimension: str, value: str) -> None:
    """One CloudWatch metric (EMF) with its own dimension, written at once."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FlexRestore")
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        metric.add_dimension(name=dimension, value=value)
