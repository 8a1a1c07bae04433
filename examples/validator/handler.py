"""A sample validator for Atlas Flex Restore verification runs (docs/validators.md): connects to the
restored cluster with the official MongoDB driver and checks that collections hold at least an expected
number of documents.

Deploy it as a Lambda function (handler ``handler.handler``, Python 3.12+, with ``requirements.txt``), add its
ARN to the stack's ValidatorFunctionArns and name it in a plan's ``validation.lambdaArn``.

Environment:
    DB_SECRET_ARN      Secrets Manager secret {"username": ..., "password": ...}: a database user of the
                       verification project (the plan and the run never carry credentials)
    EXPECTED_MINIMUMS  JSON, either {"<db>.<collection>": <minimum documents>, ...} for every source, or
                       {"<source clusterName>": {"<db>.<collection>": <minimum>, ...}, ...} per source
    CONNECT_TIMEOUT_MS optional, default 10000

The run sends the input of docs/schemas/validator-input.json and expects {"status": "SUCCEEDED" | "FAILED",
"message": "..."} (docs/schemas/validator-output.json); anything else is recorded as a failure.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote_plus

import boto3
from pymongo import MongoClient
from pymongo.errors import PyMongoError

_secret: dict[str, str] | None = None


def _credentials() -> dict[str, str]:
    """The database user, read once per container from Secrets Manager."""
    global _secret
    if _secret is None:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])
        _secret = json.loads(answer["SecretString"])
    return _secret


def _minimums(cluster_name: str) -> dict[str, int]:
    expected = json.loads(os.environ.get("EXPECTED_MINIMUMS", "{}"))
    if cluster_name in expected and isinstance(expected[cluster_name], dict):
        expected = expected[cluster_name]
    return {name: int(count) for name, count in expected.items() if "." in name}


def _uri(srv: str, user: str, password: str) -> str:
    """The SRV connection string with the user in it (``mongodb+srv://user:pass@host/``)."""
    host = srv.removeprefix("mongodb+srv://").split("/", 1)[0]
    return f"mongodb+srv://{quote_plus(user)}:{quote_plus(password)}@{host}/?retryWrites=false"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    target = event["target"]
    cluster_name = event["source"]["clusterName"]
    srv = (target.get("connectionStrings") or {}).get("standardSrv")
    minimums = _minimums(cluster_name)
    if not srv:
        return {"status": "FAILED", "message": f"Atlas gave no connection string for {target['name']}"}
    if not minimums:
        return {"status": "FAILED", "message": f"EXPECTED_MINIMUMS names no collection for {cluster_name}"}
    credentials = _credentials()
    timeout_ms = int(os.environ.get("CONNECT_TIMEOUT_MS", "10000"))
    checks: list[dict[str, str]] = []
    try:
        with MongoClient(
            _uri(srv, credentials["username"], credentials["password"]),
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            appname="flexrestore-validator",
        ) as client:
            for name, minimum in sorted(minimums.items()):
                database, collection = name.split(".", 1)
                if collection not in client[database].list_collection_names():
                    checks.append({"name": name, "status": "FAILED", "message": "the collection is missing"})
                    continue
                count = client[database][collection].count_documents({})
                ok = count >= minimum
                checks.append(
                    {
                        "name": name,
                        "status": "PASSED" if ok else "FAILED",
                        "message": f"{count} documents, expected at least {minimum}",
                    }
                )
    except PyMongoError as exc:
        # The words of the driver, never the connection string (it holds the password).
        return {"status": "FAILED", "message": f"could not read {target['name']}: {type(exc).__name__}"}
    failed = [c for c in checks if c["status"] == "FAILED"]
    summary = "; ".join(f"{c['name']}: {c['message']}" for c in (failed or checks))
    return {"status": "FAILED" if failed else "SUCCEEDED", "message": summary, "checks": checks}
