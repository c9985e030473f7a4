"""Run a template function like a warm AWS Lambda function, on this machine.

Execution environments
    Each execution environment is its own OS process, started with `subprocess` as
    `python -I -u <this file>`: this file, run as a script, is the function's runtime
    (Lambda's `/var/runtime/bootstrap.py`). `subprocess` rather than multiprocessing's
    "spawn" context because spawn inherits the parent's whole environment at interpreter
    start-up (so `PYTHONPATH` or `AWS_PROFILE` would already have acted before we could
    remove them), copies the parent's `sys.path`, re-imports the parent's `__main__` (pytest,
    or the `crm` command) and unpickles its target from our package. Here the child gets an
    environment built from nothing (`env=`), isolated mode (`-I`: no `PYTHON*` variables, no
    user site, no script folder on `sys.path`), and imports nothing but the standard library
    before the handler. The worker's `sys.path` is then the code dir, the layers' source
    folders (Lambda's `/opt/python`), and the interpreter's own (standard library and the
    venv's site-packages, where the layer's third-party packages are installed).

    An environment handles one invocation at a time and stays warm: the handler module is
    imported once per process, at start-up (the cold start), and its globals live as long as
    the process. Processes are created lazily, the first time every warm one is busy, and
    reused most-recently-used first, as Lambda tends to. At most `max_concurrency`
    processes exist per function (Lambda's reserved concurrency). Lambda would throttle an
    invocation beyond that with a 429; here it waits for a process to become free, so a
    local burst is slowed down rather than failed.

IPC
    Requests and results travel over a Unix socket pair, one per process, as length-prefixed
    frames (4-byte big-endian length, then a one-byte tag and JSON), never over stdout. The
    worker's stdout and stderr share one pipe, read by the invoking thread while it waits
    for the result (a `poll` over the socket and the pipe), so a handler printing megabytes
    never blocks on a full pipe, and every line it printed reaches `log_sink` before
    `invoke` returns. Between invocations nobody reads the pipe: like Lambda's frozen
    environments, a background thread that prints while the function is idle stalls until
    the next invocation. Events and results are JSON, like Lambda's; Decimals are encoded
    as numbers, as Lambda's Python runtime does.

Timeouts
    The parent enforces the template's timeout: when a result has not arrived
    `spec.timeout_s` seconds after the request was sent, it kills the worker's whole
    process group with SIGKILL (module state is lost, as on Lambda), reports
    `Sandbox.Timedout`, and the next invocation gets a fresh process (a cold start).
    The handler sees the same deadline through `context.get_remaining_time_in_millis()`.
    The init phase (importing the handler) has Lambda's own 10-second limit instead.

Errors, as Lambda reports them
    Handler exceptions: `{"errorType": <class name>, "errorMessage": str(exc),
    "requestId", "stackTrace"}`, and the process stays warm. Init errors
    (`Runtime.ImportModuleError`, `Runtime.HandlerNotFound`, `Runtime.UserCodeSyntaxError`
    or the exception's type) discard the process; the next invocation tries again. A
    process that dies (`sys.exit`, `os._exit`, a signal) is `Runtime.ExitError`. A return
    value JSON cannot encode is `Runtime.MarshalError`, a response over 6 MB
    `Function.ResponseSizeTooLarge`, and a request over 6 MB is refused before any process
    sees it (`RequestEntityTooLargeException`).

Environment variables, later sources winning: the parent's PATH, HOME, LANG, LC_*, TMPDIR
and PYTHONDONTWRITEBYTECODE; TZ=:UTC; the template's variables; the local cloud's
(`AWS_ENDPOINT_URL`, `POWERTOOLS_TRACE_DISABLED=true` and `AWS_XRAY_CONTEXT_MISSING`
since there is no X-Ray daemon, fake credentials); `extra_env` (the caller plays Lambda's
platform: it may hand other credentials, as the execution role would); and last Lambda's
reserved variables (function name, version, memory, region, handler, task root, runtime
dir, log group and stream), which neither the template nor the caller can set, as on
Lambda. Nothing else of the parent's environment reaches the function.

POSIX only (Linux, macOS): the worker is handed its socket with `pass_fds`. `close()` kills
every worker; runners left open are closed at interpreter exit (`atexit`, which runs on a
normal exit, Ctrl-C, or `SystemExit` raised from a SIGTERM handler).
"""

from __future__ import annotations

import atexit
import decimal
import importlib
import json
import logging
import math
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ != "__main__":
    # The parent's side. A worker runs this file as a script and needs the standard library only.
    from infra.local.invocation import InvokeResult
    from infra.topology import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from infra.topology import FunctionSpec

LogSink = Callable[[str, str], None]

RUNTIME = "AWS_Lambda_python3.11"
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase of an on-demand function
REQUEST_LIMIT_BYTES = 6_291_456  # 6 MB, a synchronous Invoke's request
RESPONSE_LIMIT_BYTES = 6_291_556  # the figure Lambda's own error message states
_BASIC_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TMPDIR", "PYTHONDONTWRITEBYTECODE")
_LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_THIS_FILE = str(Path(__file__).resolve())

# Frames: 4-byte length, then a tag byte. Parent to worker: b"V" + JSON request. Worker to
# parent: b"K" + JSON (init done), b"E" + JSON error (init failed; the worker exits), or
# b"R" (JSON payload) / b"B" (bytes payload) / b"X" (JSON error), each followed by the
# handler's duration in ms as a double, then the body.
_LENGTH = struct.Struct("!I")
_DURATION = struct.Struct("!d")


# The worker: this file run as a script ---------------------------------------------------
class _Fault(Exception):
    """An error the runtime itself reports (Lambda's FaultException)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class _CognitoIdentity:
    """What Lambda's runtime sets as `context.identity` when no Cognito identity came."""

    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None

    def __repr__(self) -> str:
        return "CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None])"


class LambdaContext:
    """The context object of Lambda's Python runtime (awslambdaric's LambdaContext).

    As on Lambda, `memory_limit_in_mb` is the environment variable's text (a str) and
    `identity` an object whose fields are None when no Cognito identity was passed.
    """

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id: str | None = None
        self.client_context: Any = None
        self.identity = _CognitoIdentity()
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _Encoder(json.JSONEncoder):
    """JSON as Lambda's Python runtime marshals it: Decimals as numbers."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else json.loads(str(o))
        return super().default(o)


_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _LambdaLogHandler(logging.Handler):
    """The root logger's handler on Lambda: text lines with the request id, to stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record))


def _install_root_handler() -> None:
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLogHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    """The handler function, resolved and reported as Lambda's runtime does."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            trace,
        ) from None
    try:
        found: Callable[[Any, LambdaContext], Any] = getattr(module, function_name)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from None
    return found


def _error(error_type: str, message: str, trace: list[str], request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }


def _exception_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """An unhandled exception as Lambda reports it, without the runtime's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename == _THIS_FILE:
        frames.pop(0)
    return _error(type(exc).__name__, str(exc), traceback.format_list(frames), request_id)


def _log_error(error: Mapping[str, Any]) -> None:
    """The `[ERROR] Type: message` record Lambda's runtime writes to the function's log."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


def _send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(data)))
    sock.sendall(data)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _recv_frame(sock: socket.socket) -> bytes | None:
    header = _recv_exactly(sock, _LENGTH.size)
    if header is None:
        return None
    return _recv_exactly(sock, _LENGTH.unpack(header)[0])


def _handle(handler: Callable[[Any, LambdaContext], Any], request: dict[str, Any]) -> bytes:
    """One invocation: the reply frame (tag, the handler's duration, body)."""
    global _request_id
    request_id = _request_id = request["requestId"]
    context = LambdaContext(request_id, request["invokedFunctionArn"], request["deadlineMs"])
    started = time.perf_counter()
    try:
        tag, body = _marshal(handler(request["event"], context))
    except _Fault as fault:
        error = _error(fault.error_type, fault.message, fault.trace, request_id)
    except Exception as exc:
        error = _exception_error(exc, request_id)
    else:
        return tag + _DURATION.pack((time.perf_counter() - started) * 1000) + body
    duration_ms = (time.perf_counter() - started) * 1000
    _log_error(error)
    return b"X" + _DURATION.pack(duration_ms) + json.dumps(error).encode()


def _marshal(result: Any) -> tuple[bytes, bytes]:
    """(tag, body) of a handler's return value, or the _Fault Lambda reports for it."""
    if isinstance(result, bytes):
        tag, body = b"B", result
    else:
        try:
            tag, body = b"R", _Encoder().encode(result).encode()
        except (TypeError, ValueError) as exc:
            raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
    if len(body) > RESPONSE_LIMIT_BYTES:
        raise _Fault(
            "Function.ResponseSizeTooLarge",
            f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload "
            f"size ({RESPONSE_LIMIT_BYTES} bytes).",
        )
    return tag, body


def _worker_main(fd: int, config: dict[str, Any]) -> None:
    """An execution environment: init (import the handler), then invocations until EOF."""
    sock = socket.socket(fileno=fd)
    sys.path[:0] = config["path"]
    _install_root_handler()
    started = time.perf_counter()
    try:
        handler = _load_handler(config["handler"])
    except _Fault as fault:
        init_error = _error(fault.error_type, fault.message, fault.trace, "")
    except Exception as exc:
        init_error = _exception_error(exc, "")
    else:
        init_ms = (time.perf_counter() - started) * 1000
        _send(sock, b"K" + json.dumps({"initMs": init_ms}).encode())
        while (frame := _recv_frame(sock)) is not None:
            _send(sock, _handle(handler, json.loads(frame[1:])))
        return
    _log_error(init_error)
    _send(sock, b"E" + json.dumps(init_error).encode())
    sys.exit(1)


# The parent: one runner per function -----------------------------------------------------
_STDERR_LOCK = threading.Lock()


def _print_log(function_name: str, line: str) -> None:
    """The default log_sink: `[<function name>] <line>` on the parent's stderr."""
    with _STDERR_LOCK:
        sys.stderr.write(f"[{function_name}] {line}\n")
        sys.stderr.flush()


class _Died(Exception):
    """The worker process ended (or closed its socket) before replying."""


class _Worker:
    """One execution environment: its process, control socket and log pipe.

    Used by one thread at a time (the pool hands it out); `kill()` alone may be called from
    another thread (`close()`).
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        sock: socket.socket,
        name: str,
        sink: LogSink,
    ) -> None:
        self.proc = proc
        self.sock = sock
        self.name = name
        self.sink = sink
        self.invocations = 0
        assert proc.stdout is not None
        self.log_fd = proc.stdout.fileno()
        os.set_blocking(self.log_fd, False)
        self._poll = select.poll()
        self._poll.register(self.sock.fileno(), select.POLLIN)
        self._poll.register(self.log_fd, select.POLLIN)
        self._log_open = True
        self._partial = bytearray()
        self._inbox = bytearray()
        self._disposed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, data: bytes) -> None:
        try:
            _send(self.sock, data)
        except OSError as exc:
            raise _Died from exc

    def receive(self, deadline: float) -> bytes:
        """The next frame from the worker, forwarding its output meanwhile.

        Raises TimeoutError at `deadline` (time.monotonic()) and _Died at EOF.
        """
        while True:
            frame = self._take_frame()
            if frame is not None:
                self.drain_logs()
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for fd, _events in self._poll.poll(max(1, math.ceil(remaining * 1000))):
                if fd == self.log_fd:
                    self._read_logs()
                elif not self._read_socket():
                    self.drain_logs()
                    raise _Died

    def _take_frame(self) -> bytes | None:
        if len(self._inbox) < _LENGTH.size:
            return None
        size = _LENGTH.unpack_from(self._inbox)[0]
        end = _LENGTH.size + size
        if len(self._inbox) < end:
            return None
        frame = bytes(self._inbox[_LENGTH.size : end])
        del self._inbox[:end]
        return frame

    def _read_socket(self) -> bool:
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            return False
        self._inbox += data
        return bool(data)

    def _read_logs(self, limit: int = 64) -> None:
        """Forward what the pipe holds now, line by line (at most `limit` reads)."""
        for _ in range(limit):
            if not self._log_open:
                return
            try:
                data = os.read(self.log_fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._log_open = False
                self._poll.unregister(self.log_fd)
                return
            self._partial += data
            *lines, rest = self._partial.split(b"\n")
            self._partial = bytearray(rest)
            for line in lines:
                self.sink(self.name, line.decode("utf-8", "replace"))

    def drain_logs(self) -> None:
        """Everything printed so far, including a last line without its newline."""
        self._read_logs(limit=1024)
        if self._partial:
            line, self._partial = self._partial.decode("utf-8", "replace"), bytearray()
            self.sink(self.name, line)

    def kill(self) -> None:
        """Kill the process and everything it started (its own process group); reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()

    def dispose(self) -> None:
        """Kill, forward the last output, close the socket and the pipe. Idempotent."""
        self.kill()
        if self._disposed:
            return
        self._disposed = True
        self.drain_logs()
        self.sock.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def exit_description(self) -> str:
        """How the process ended ("exit status 3", "signal: SIGSEGV"), as Lambda says it."""
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # it closed its socket but lives on
            self.kill()
            code = self.proc.wait()
        if code < 0:
            try:
                return f"signal: {signal.Signals(-code).name}"
            except ValueError:
                return f"signal: {-code}"
        return f"exit status {code}"


class _InitFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


class FunctionRunner:
    """One template function, run like a warm Lambda function (see the module docstring)."""

    def __init__(
        self,
        spec: FunctionSpec,
        endpoint_url: str,
        *,
        max_concurrency: int = 4,
        extra_env: Mapping[str, str] | None = None,
        log_sink: LogSink | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._spec = spec
        self.endpoint_url = endpoint_url
        self.max_concurrency = max_concurrency
        self.extra_env = dict(extra_env or {})
        self.log_sink: LogSink = log_sink or _print_log
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}"
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []  # most recently used last
        self._workers: set[_Worker] = set()
        self._slots = 0  # processes alive or starting
        self._closed = False
        _OPEN_RUNNERS.add(self)

    @property
    def spec(self) -> FunctionSpec:
        return self._spec

    # Public API ------------------------------------------------------------------------
    def invoke(self, event: Any, *, request_id: str | None = None) -> InvokeResult:
        """Run the handler on `event` in a free warm process (or a new one); thread-safe.

        Blocks while `max_concurrency` processes are busy, then until the handler returns,
        fails or times out. Raises RuntimeError once the runner is closed, and TypeError or
        ValueError if `event` is not JSON.
        """
        request_id = request_id or str(uuid.uuid4())
        event_json = json.dumps(event)
        if len(event_json.encode()) > REQUEST_LIMIT_BYTES:
            message = (
                f"Request must be smaller than {REQUEST_LIMIT_BYTES} bytes "
                "for the InvokeFunction operation"
            )
            error = _error("RequestEntityTooLargeException", message, [], request_id)
            return InvokeResult(error=error, request_id=request_id)
        started = time.monotonic()
        try:
            worker = self._acquire()
        except _InitFailed as failed:
            error = {**failed.error, "requestId": request_id}
            elapsed = (time.monotonic() - started) * 1000
            return InvokeResult(error=error, duration_ms=elapsed, request_id=request_id)
        keep = False
        try:
            result, keep = self._run(worker, event_json, request_id)
            return result
        finally:
            self._release(worker, keep)

    def warm(self) -> None:
        """Start one process and import the handler now, unless the function has one already.

        An init error is not raised: the worker writes it to the function's log (log_sink),
        as Lambda does, and the next invocation tries again and reports it.
        """
        with self._cond:
            if self._closed or self._slots > 0:
                return
            self._slots += 1
        try:
            worker = self._start()
        except _InitFailed:
            return
        except RuntimeError:
            if self._closed:
                return  # closed while starting
            raise
        self._release(worker, keep=True)

    def close(self) -> None:
        """Kill every worker process. Idempotent; invocations after it raise RuntimeError."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [w for w in self._workers if w not in idle]
            self._cond.notify_all()
        for worker in idle:
            self._discard(worker)
        for worker in busy:
            worker.kill()  # its invoking thread sees it die, then disposes of it
        _OPEN_RUNNERS.discard(self)

    def __enter__(self) -> FunctionRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FunctionRunner({self._spec.logical_id}, {self._spec.name})"

    @property
    def pids(self) -> list[int]:
        """The worker processes alive now (for tests and diagnostics)."""
        with self._cond:
            return sorted(w.pid for w in self._workers)

    # Pool ------------------------------------------------------------------------------
    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self!r} is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._forget(worker)  # died while idle (a background thread exited it)
                    worker.dispose()
                if self._slots < self.max_concurrency:
                    self._slots += 1
                    break
                self._cond.wait()
        return self._start()

    def _release(self, worker: _Worker, keep: bool) -> None:
        with self._cond:
            if keep and not self._closed and worker.alive():
                self._idle.append(worker)
                self._cond.notify()
                return
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.dispose()
        with self._cond:
            self._forget(worker)

    def _forget(self, worker: _Worker) -> None:
        """Under the lock: the worker no longer counts against max_concurrency."""
        if worker in self._workers:
            self._workers.discard(worker)
            self._slots -= 1
            self._cond.notify()

    def _start(self) -> _Worker:
        """A new process with the handler imported (a slot is already reserved for it)."""
        try:
            worker = self._spawn()
        except BaseException:
            with self._cond:
                self._slots -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._workers.add(worker)
            closed = self._closed
        if closed:
            self._discard(worker)
            raise RuntimeError(f"{self!r} is closed")
        try:
            frame = worker.receive(time.monotonic() + INIT_TIMEOUT_S)
        except TimeoutError:
            self._discard(worker)
            message = f"Init phase timed out after {INIT_TIMEOUT_S:.2f} seconds"
            self.log_sink(self._spec.name, message)
            raise _InitFailed(_error("Sandbox.Timedout", message, [], "")) from None
        except _Died:
            description = worker.exit_description()
            self._discard(worker)
            if self._closed:
                raise RuntimeError(f"{self!r} is closed") from None
            message = f"Runtime exited with error: {description}"
            raise _InitFailed(_error("Runtime.ExitError", message, [], "")) from None
        if frame[:1] == b"E":
            self._discard(worker)
            raise _InitFailed(json.loads(frame[1:]))
        return worker

    def _spawn(self) -> _Worker:
        parent_sock, child_sock = socket.socketpair()
        config = {
            "handler": self._spec.handler,
            "path": [str(self._spec.code_dir), *(str(d) for d in self._spec.layer_dirs)],
        }
        flags = ["-I", "-u", *(["-S"] if self._spec.isolated else [])]
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            flags.append("-B")  # -I ignores the variable itself
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and runtime file
                [
                    sys.executable,
                    *flags,
                    _THIS_FILE,
                    str(child_sock.fileno()),
                    json.dumps(config),
                ],
                env=self.environment(),
                cwd=self._spec.code_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(child_sock.fileno(),),
                start_new_session=True,  # Ctrl-C reaches the parent only; killpg reaches all
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        return _Worker(proc, parent_sock, self._spec.name, self.log_sink)

    def environment(self) -> dict[str, str]:
        """The worker's environment variables (a new log stream name each call)."""
        spec = self._spec
        basics = {
            key: value
            for key, value in os.environ.items()
            if key in _BASIC_VARIABLES or key.startswith("LC_")
        }
        day = time.strftime("%Y/%m/%d", time.gmtime())
        reserved = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{day}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EXECUTION_ENV": RUNTIME,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(_THIS_FILE).parent),
            "_HANDLER": spec.handler,
        }
        local = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            **_LOCAL_CREDENTIALS,
        }
        return {
            **basics,
            "TZ": ":UTC",
            **spec.environment,
            **local,
            **self.extra_env,
            **reserved,
        }

    # One invocation ----------------------------------------------------------------------
    def _run(self, worker: _Worker, event_json: str, request_id: str) -> tuple[InvokeResult, bool]:
        """(result, whether the worker stays warm)."""
        timeout_s = self._spec.timeout_s
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000) + timeout_s * 1000
        request = (
            f'{{"requestId": {json.dumps(request_id)}, '
            f'"invokedFunctionArn": {json.dumps(self.invoked_function_arn)}, '
            f'"deadlineMs": {deadline_ms}, "event": {event_json}}}'
        )
        worker.invocations += 1
        try:
            worker.send(b"V" + request.encode())
            frame = worker.receive(started + timeout_s)
        except TimeoutError:
            worker.dispose()
            message = f"Task timed out after {timeout_s:.2f} seconds"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            self.log_sink(self._spec.name, f"{stamp}Z {request_id} {message}")
            error = _error("Sandbox.Timedout", message, [], request_id)
            return InvokeResult(
                error=error, duration_ms=timeout_s * 1000.0, request_id=request_id
            ), False
        except _Died:
            message = f"RequestId: {request_id} Error: Runtime exited with error: "
            message += worker.exit_description()
            worker.dispose()
            self.log_sink(self._spec.name, message)
            error = _error("Runtime.ExitError", message, [], request_id)
            elapsed = (time.monotonic() - started) * 1000
            return InvokeResult(error=error, duration_ms=elapsed, request_id=request_id), False
        tag, body = frame[:1], frame[1 + _DURATION.size :]
        (duration_ms,) = _DURATION.unpack_from(frame, 1)
        if tag == b"R":
            return InvokeResult(json.loads(body), None, duration_ms, request_id), True
        if tag == b"B":
            return InvokeResult(body, None, duration_ms, request_id), True
        return InvokeResult(None, json.loads(body), duration_ms, request_id), True


class FunctionRunners:
    """A runner for every function of a stage, found by logical id or physical FunctionName."""

    def __init__(
        self, specs: Iterable[FunctionSpec], endpoint_url: str, **runner_kwargs: Any
    ) -> None:
        self._runners: dict[str, FunctionRunner] = {}
        self._by_name: dict[str, FunctionRunner] = {}
        for spec in specs:
            kwargs = dict(runner_kwargs)
            reserved = spec.properties.get("ReservedConcurrentExecutions")
            if reserved is not None and "max_concurrency" not in kwargs:
                kwargs["max_concurrency"] = int(reserved)  # as Lambda caps the function
            runner = FunctionRunner(spec, endpoint_url, **kwargs)
            self._runners[spec.logical_id] = runner
            self._by_name[spec.name] = runner

    def __getitem__(self, logical_id_or_name: str) -> FunctionRunner:
        found = self._runners.get(logical_id_or_name) or self._by_name.get(logical_id_or_name)
        if found is None:
            raise KeyError(logical_id_or_name)
        return found

    def __contains__(self, logical_id_or_name: object) -> bool:
        return logical_id_or_name in self._runners or logical_id_or_name in self._by_name

    def __iter__(self) -> Iterator[FunctionRunner]:
        return iter(self._runners.values())

    def __len__(self) -> int:
        return len(self._runners)

    def invoke(self, logical_id_or_name: str, event: Any) -> InvokeResult:
        return self[logical_id_or_name].invoke(event)

    def warm(self) -> None:
        """Warm every function at once (their cold starts overlap)."""
        threads = [threading.Thread(target=runner.warm, daemon=True) for runner in self]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()

    def __enter__(self) -> FunctionRunners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_OPEN_RUNNERS: weakref.WeakSet[FunctionRunner] = weakref.WeakSet()


@atexit.register
def _close_open_runners() -> None:
    for runner in list(_OPEN_RUNNERS):
        runner.close()


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]), json.loads(sys.argv[2]))
