"""infra/local/runner.py runs template functions like warm Lambdas: one process per environment."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infra.cfn import REPO_ROOT, load_template, table_create_kwargs
from infra.local.invocation import InvokeResult
from infra.local.runner import FunctionRunner, FunctionRunners
from infra.topology import FunctionSpec, Physical, Resolver, serverless_functions
from tests.support.local import function_spec

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "functions"
SHARED = REPO_ROOT / "shared"
ENDPOINT = "http://127.0.0.1:4566"


def make_spec(folder: str, *, timeout: int = 2, **overrides: Any) -> FunctionSpec:
    fields: dict[str, Any] = {
        "code_dir": FIXTURES / folder,
        "timeout_s": timeout,
        "memory_mb": 256,
        "layer_dirs": (SHARED,),
    }
    fields = {**fields, **overrides}
    logical_id = fields.pop("logical_id", f"{folder.title().replace('_', '')}Function")
    return function_spec(logical_id, fields.pop("name", f"crm-test-{folder}"), **fields)


class Logs:
    """A log_sink that keeps (function name, line) pairs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lines: list[tuple[str, str]] = []

    def __call__(self, function_name: str, line: str) -> None:
        with self.lock:
            self.lines.append((function_name, line))

    def of(self, function_name: str) -> list[str]:
        with self.lock:
            return [line for name, line in self.lines if name == function_name]


@pytest.fixture
def logs() -> Logs:
    return Logs()


@pytest.fixture
def runner(logs: Logs) -> Iterator[Callable[..., FunctionRunner]]:
    """Makes runners that log to `logs`; closes them all after the test."""
    made: list[FunctionRunner] = []

    def make(spec: FunctionSpec, **kwargs: Any) -> FunctionRunner:
        kwargs.setdefault("log_sink", logs)
        made.append(FunctionRunner(spec, ENDPOINT, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


def alive(pid: int) -> bool:
    """Whether the process exists (a zombie counts: close() must reap its children)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ok(result: InvokeResult) -> Any:
    assert result.error is None, result.error
    return result.payload


def together(
    invoke: Callable[[dict[str, Any]], InvokeResult], events: list[dict[str, Any]]
) -> list[InvokeResult]:
    """Each event from its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(events))

    def call(event: dict[str, Any]) -> InvokeResult:
        barrier.wait(10)
        return invoke(event)

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(call, events))


# Environment -----------------------------------------------------------------------------
def test_the_environment_is_the_templates_plus_lambdas_own_and_nothing_of_the_parent(
    runner: Callable[..., FunctionRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_PARENT_ONLY", "leak")
    monkeypatch.setenv("PYTHONPATH", "parent-python-path")
    monkeypatch.setenv("AWS_PROFILE", "a-real-profile")
    spec = make_spec(
        "echo",
        environment={"TABLE_NAME": "crm-local", "STAGE": "local", "AWS_REGION": "eu-west-1"},
    )
    echo = runner(spec, extra_env={"CRM_EXTRA": "from-the-caller"})

    got = ok(echo.invoke({}))

    env = got["env"]
    assert env["TABLE_NAME"] == "crm-local"  # the parent's (conftest) is crm-test
    assert env["STAGE"] == "local"
    assert env["CRM_EXTRA"] == "from-the-caller"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    lambdas_own = {
        "AWS_LAMBDA_FUNCTION_NAME": "crm-test-echo",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_REGION": "us-east-1",  # reserved: the template cannot set it
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "LAMBDA_TASK_ROOT": str(FIXTURES / "echo"),
        "_HANDLER": "app.handler",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/crm-test-echo",
        "TZ": ":UTC",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    assert {k: env.get(k) for k in lambdas_own} == lambdas_own
    assert re.fullmatch(
        r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert env["LAMBDA_RUNTIME_DIR"]
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_SESSION_TOKEN"]
    for parent_only in ("CRM_PARENT_ONLY", "PYTHONPATH", "AWS_PROFILE", "POWERTOOLS_LOG_LEVEL"):
        assert parent_only not in env
    allowed = {
        *spec.environment,
        *lambdas_own,
        "CRM_EXTRA",
        "AWS_ENDPOINT_URL",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "LAMBDA_RUNTIME_DIR",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "PATH",
        "HOME",
        "LANG",
        "LANGUAGE",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
    }
    assert {k for k in env if not k.startswith("LC_")} <= allowed
    # sys.path: the code dir, then the layer's source; the parent's PYTHONPATH is not there.
    assert got["path"][:2] == [str(FIXTURES / "echo"), str(SHARED)]
    assert got["cwd"] == str(FIXTURES / "echo")


def test_two_functions_do_not_see_each_others_variables(
    runner: Callable[..., FunctionRunner],
) -> None:
    first = runner(make_spec("echo", name="crm-test-first", environment={"ONLY_FIRST": "1"}))
    second = runner(make_spec("echo", name="crm-test-second", environment={"ONLY_SECOND": "2"}))

    a, b = ok(first.invoke({})), ok(second.invoke({}))

    assert a["env"]["ONLY_FIRST"] == "1"
    assert "ONLY_SECOND" not in a["env"]
    assert b["env"]["ONLY_SECOND"] == "2"
    assert "ONLY_FIRST" not in b["env"]
    assert a["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "crm-test-first"
    assert b["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "crm-test-second"
    # Same code, separate processes, separate module state.
    assert a["pid"] != b["pid"]
    assert a["count"] == b["count"] == 1


# Warm processes and concurrency ----------------------------------------------------------
def test_module_state_persists_across_invocations_in_one_process(
    runner: Callable[..., FunctionRunner], logs: Logs
) -> None:
    echo = runner(make_spec("echo"))
    echo.warm()
    assert len(echo.pids) == 1
    assert logs.of("crm-test-echo") == ["echo: init"]  # the cold start ran before any request

    replies = [ok(echo.invoke({"n": n})) for n in range(3)]

    assert [r["count"] for r in replies] == [1, 2, 3]
    assert {r["pid"] for r in replies} == set(echo.pids)
    assert logs.of("crm-test-echo") == ["echo: init"]  # imported once


def test_concurrent_invocations_run_in_separate_processes_up_to_max_concurrency(
    runner: Callable[..., FunctionRunner],
) -> None:
    sleepy = runner(make_spec("sleepy", timeout=5), max_concurrency=3)

    # Three at once, below the limit: three new processes, all running at the same time
    # (the sleep leaves room for three cold starts on a busy machine).
    first = [ok(r) for r in together(sleepy.invoke, [{"seconds": 1.0}] * 3)]
    assert len({r["pid"] for r in first}) == 3
    assert max(r["started"] for r in first) < min(r["ended"] for r in first)
    assert [r["count"] for r in first] == [1, 1, 1]  # module state is per process

    # Five at once: the same three warm processes; two invocations wait for a free one.
    second = [ok(r) for r in together(sleepy.invoke, [{"seconds": 0.5}] * 5)]
    assert {r["pid"] for r in second} == {r["pid"] for r in first}
    assert len(sleepy.pids) == 3
    moments = sorted(
        [(r["started"], 1) for r in second] + [(r["ended"], -1) for r in second],
        key=lambda m: (m[0], m[1]),
    )
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    assert peak == 3
    by_start = sorted(second, key=lambda r: r["started"])
    assert min(r["started"] for r in by_start[3:]) >= min(r["ended"] for r in by_start[:3])
    assert sorted(r["count"] for r in second) == [2, 2, 2, 3, 3]


# Timeouts and errors ---------------------------------------------------------------------
def test_a_timeout_kills_the_process_and_the_next_invocation_starts_cold(
    runner: Callable[..., FunctionRunner], logs: Logs
) -> None:
    sleepy = runner(make_spec("sleepy", timeout=1))
    before = ok(sleepy.invoke({"seconds": 0}))
    assert before["count"] == 1

    started = time.monotonic()
    result = sleepy.invoke({"seconds": 5}, request_id="timed-out-request")
    elapsed = time.monotonic() - started

    assert result.timed_out
    assert result.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
        "requestId": "timed-out-request",
        "stackTrace": [],
    }
    assert 1.0 <= elapsed < 2.0
    assert not alive(before["pid"])
    assert sleepy.pids == []
    assert any(
        "timed-out-request Task timed out after 1.00 seconds" in line
        for line in logs.of("crm-test-sleepy")
    )
    after = ok(sleepy.invoke({"seconds": 0}))
    assert after["pid"] != before["pid"]
    assert after["count"] == 1  # a fresh process: module state was lost


def test_a_handler_exception_is_reported_like_lambda_and_the_process_stays_warm(
    runner: Callable[..., FunctionRunner], logs: Logs
) -> None:
    broken = runner(make_spec("broken"))
    warm = ok(broken.invoke({}))

    result = broken.invoke({"do": "raise"}, request_id="failing-request")

    assert result.error is not None
    assert result.error["errorType"] == "ValueError"
    assert result.error["errorMessage"] == "boom: on purpose"
    assert result.error["requestId"] == "failing-request"
    trace = result.error["stackTrace"]
    assert all(isinstance(frame, str) for frame in trace)
    assert "in handler" in trace[0]
    assert "app.py" in trace[0]
    assert "in fail" in trace[-1]
    assert not any("runner.py" in frame for frame in trace)  # the runtime's frames are cut
    assert "[ERROR] ValueError: boom: on purpose" in logs.of("crm-test-broken")
    again = ok(broken.invoke({}))
    assert again["pid"] == warm["pid"]
    assert again["count"] == 3


def test_payloads_are_marshalled_like_lambda(runner: Callable[..., FunctionRunner]) -> None:
    broken = runner(make_spec("broken"))

    not_json = broken.invoke({"do": "set"})
    too_big = broken.invoke({"do": "big"})
    decimals = broken.invoke({"do": "decimal"})
    raw = broken.invoke({"do": "bytes"})

    assert not_json.error is not None
    assert too_big.error is not None
    assert not_json.error["errorType"] == "Runtime.MarshalError"
    assert not_json.error["errorMessage"] == (
        "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert too_big.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert ok(decimals) == {"price": 1.5, "quantity": 7}
    assert ok(raw) == b"raw bytes"
    assert ok(broken.invoke({}))["count"] == 5  # one warm process throughout
    with pytest.raises(TypeError):
        broken.invoke({"not json": {1, 2}})
    oversized = broken.invoke({"padding": "x" * 6_300_000})
    assert oversized.error is not None
    assert oversized.error["errorType"] == "RequestEntityTooLargeException"


@pytest.mark.parametrize(
    ("do", "how"),
    [("exit", "exit status 3"), ("sys_exit", "exit status 2"), ("segfault", "signal: SIGSEGV")],
)
def test_a_process_that_dies_is_a_runtime_exit_error(
    runner: Callable[..., FunctionRunner], do: str, how: str
) -> None:
    broken = runner(make_spec("broken"))
    first = ok(broken.invoke({}))

    result = broken.invoke({"do": do}, request_id="dying-request")

    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"] == (
        f"RequestId: dying-request Error: Runtime exited with error: {how}"
    )
    assert not alive(first["pid"])
    assert ok(broken.invoke({}))["count"] == 1  # a new process


def test_init_errors_are_reported_like_lambda_and_the_process_is_discarded(
    runner: Callable[..., FunctionRunner], logs: Logs
) -> None:
    missing_module = runner(make_spec("bad_import"))
    raising = runner(
        make_spec("bad_import", name="crm-test-raising", environment={"FAIL_WITH": "error"})
    )
    no_handler = runner(make_spec("echo", handler="app.missing"))

    missing_module.warm()  # does not raise: the error goes to the function's log
    assert missing_module.pids == []
    assert "bad_import: init starts" in logs.of("crm-test-bad_import")
    first = missing_module.invoke({}, request_id="r-1")
    second = missing_module.invoke({})
    failed = raising.invoke({})
    not_found = no_handler.invoke({})

    assert first.error == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": "Unable to import module 'app': No module named 'not_a_module_anywhere'",
        "requestId": "r-1",
        "stackTrace": [],
    }
    assert second.error is not None
    assert second.error["errorType"] == "Runtime.ImportModuleError"  # init is tried again
    assert failed.error is not None
    assert failed.error["errorType"] == "RuntimeError"
    assert failed.error["errorMessage"] == "no configuration"
    assert "bad_import" in failed.error["stackTrace"][-1]
    assert not_found.error is not None
    assert not_found.error["errorType"] == "Runtime.HandlerNotFound"
    assert not_found.error["errorMessage"] == "Handler 'missing' missing on module 'app'"
    assert missing_module.pids == raising.pids == no_handler.pids == []
    assert any(
        line.startswith("[ERROR] Runtime.ImportModuleError")
        for line in logs.of("crm-test-bad_import")
    )


# Context and logs ------------------------------------------------------------------------
def test_the_context_object_is_lambdas(runner: Callable[..., FunctionRunner]) -> None:
    echo = runner(make_spec("echo", timeout=3))

    result = echo.invoke({"pause": 0.2}, request_id="the-request-id")

    got = ok(result)
    assert result.request_id == "the-request-id"
    assert got["context"] == {
        "function_name": "crm-test-echo",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:crm-test-echo",
        "memory_limit_in_mb": "256",  # a str, as Lambda's runtime gives it
        "aws_request_id": "the-request-id",
        "log_group_name": "/aws/lambda/crm-test-echo",
        "log_stream_name": got["env"]["AWS_LAMBDA_LOG_STREAM_NAME"],
        "identity": [None, None],
        "client_context": None,
    }
    first, second = got["remaining"]
    assert 2000 < first <= 3000
    assert first - second >= 200


def test_every_printed_line_reaches_the_log_sink_in_order(
    runner: Callable[..., FunctionRunner], logs: Logs
) -> None:
    chatty = runner(make_spec("chatty"))
    lines = 20_000  # about 2 MB: far more than a pipe holds

    result = chatty.invoke({"lines": lines, "width": 100}, request_id="chatty-request")

    assert ok(result) == {"printed": lines}
    got = logs.of("crm-test-chatty")
    assert got[0] == "chatty: init"
    printed = [line for line in got if line.startswith("line ")]
    assert [int(line.split()[1]) for line in printed] == list(range(lines))
    root = [line for line in got if line.startswith("[WARNING]")]
    assert len(root) == 1
    _level, _stamp, request_id, message = root[0].split("\t")
    assert (request_id, message) == ("chatty-request", "via the root logger")
    assert got[-1] == "no newline at the end"  # flushed before invoke returned


def test_the_default_log_sink_prefixes_lines_with_the_function_name(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with FunctionRunner(make_spec("chatty"), ENDPOINT) as chatty:
        ok(chatty.invoke({"lines": 2, "width": 3}))

    err = capfd.readouterr().err
    assert "[crm-test-chatty] chatty: init\n" in err
    assert "[crm-test-chatty] line 1 xxx\n" in err


# Closing ---------------------------------------------------------------------------------
def _open_fds() -> set[int]:
    """The file descriptors open in this process (the first 4096)."""
    found = set()
    for fd in range(4096):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.add(fd)
    return found


def test_close_leaves_no_live_child_process_and_no_open_pipe(
    runner: Callable[..., FunctionRunner],
) -> None:
    fds_before = _open_fds()
    sleepy = runner(make_spec("sleepy", timeout=5), max_concurrency=3)
    pids = {ok(r)["pid"] for r in together(sleepy.invoke, [{"seconds": 0.2}] * 3)}
    assert len(pids) == 3
    # One more invocation is still running when close() is called.
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(sleepy.invoke, {"seconds": 5})
        time.sleep(0.3)  # it is sleeping in one of the warm processes
        started = time.monotonic()
        sleepy.close()
        interrupted = running.result(timeout=5)
        assert time.monotonic() - started < 2

    assert interrupted.error is not None
    assert interrupted.error["errorType"] == "Runtime.ExitError"
    assert not any(alive(pid) for pid in pids)
    assert sleepy.pids == []
    sleepy.close()  # twice is fine
    with pytest.raises(RuntimeError):
        sleepy.invoke({})
    assert _open_fds() == fds_before


def test_runners_left_open_are_closed_at_interpreter_exit(tmp_path: Path) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from infra.local.runner import FunctionRunner\n"
        "from infra.topology import FunctionSpec\n"
        "code = Path(sys.argv[1])\n"
        "spec = FunctionSpec('E', 'echo', code, 'app.handler', 'python3.11', 3, 128, {}, (), {})\n"
        "runner = FunctionRunner(spec, 'http://127.0.0.1:4566', log_sink=lambda n, l: None)\n"
        "runner.warm()\n"
        "print(runner.pids[0], flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(FIXTURES / "echo")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=True,
    )
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


# All functions of a stage ----------------------------------------------------------------
def test_a_functions_reserved_concurrency_caps_its_environments(logs: Logs) -> None:
    capped = make_spec("sleepy", properties={"ReservedConcurrentExecutions": 1})
    with FunctionRunners([capped, make_spec("echo")], ENDPOINT, log_sink=logs) as runners:
        assert runners["SleepyFunction"].max_concurrency == 1
        assert runners["EchoFunction"].max_concurrency == 4  # Lambda's pool, locally


def test_function_runners_find_functions_by_logical_id_and_by_name(logs: Logs) -> None:
    specs = [make_spec("echo"), make_spec("sleepy")]
    with FunctionRunners(specs, ENDPOINT, log_sink=logs, max_concurrency=2) as runners:
        assert runners["EchoFunction"] is runners["crm-test-echo"]
        assert runners["SleepyFunction"].spec.name == "crm-test-sleepy"
        assert runners["SleepyFunction"].max_concurrency == 2
        assert "crm-test-echo" in runners
        assert "nope" not in runners
        with pytest.raises(KeyError):
            runners["nope"]
        assert ok(runners.invoke("crm-test-echo", {"hello": 1}))["event"] == {"hello": 1}
        runners.warm()
        pids = [pid for runner in runners for pid in runner.pids]
        assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)


# The real contacts function --------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def contacts_spec() -> FunctionSpec:
    template = load_template()
    physical = {
        logical_id: Physical(logical_id, {"Arn": f"arn:aws:local:::{logical_id}"})
        for logical_id in template["Resources"]
    }
    physical["Table"] = Physical(
        "crm-local",
        {
            "Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/crm-local",
            "StreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/crm-local/stream/1",
        },
    )
    resolver = Resolver(template, {"Stage": "local"}, physical)
    specs = {s.logical_id: s for s in serverless_functions(template, resolver)}
    return specs["ContactsFunction"]


def test_the_contacts_function_creates_a_contact_through_the_local_endpoint(
    moto_endpoint: str, logs: Logs
) -> None:
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(**table_create_kwargs(table_name="crm-local"))
    spec = contacts_spec()
    assert spec.environment["TABLE_NAME"] == "crm-local"
    event = copy.deepcopy(
        json.loads((REPO_ROOT / "events/http/authorized-request.json").read_text())
    )
    body = json.dumps({"email": "Ada.Lovelace@Example.COM", "first_name": "Ada"})
    event.update(routeKey="POST /contacts", rawPath="/contacts", body=body)
    event["requestContext"].update(routeKey="POST /contacts")
    event["requestContext"]["http"].update(method="POST", path="/contacts")
    event["headers"].update({"content-type": "application/json", "content-length": str(len(body))})
    event["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[admin]"

    with FunctionRunner(spec, moto_endpoint, log_sink=logs) as contacts:
        contacts.warm()
        result = contacts.invoke(event)

    reply = ok(result)
    assert reply["statusCode"] == 201, reply
    assert json.loads(reply["body"])["email"] == "ada.lovelace@example.com"
    items = ddb.scan(TableName="crm-local")["Items"]
    assert any("ada.lovelace@example.com" in json.dumps(item) for item in items)
    assert not any(line.startswith("[ERROR]") for line in logs.of(spec.name))
