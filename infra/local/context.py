"""What every part of the local cloud gets: the resolved template, the functions, clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.local.async_invoke import AsyncInvoker
from infra.local.invocation import InvokeResult
from infra.topology import FunctionSpec, Resolver

# A local page: (status, headers, body) for a request to a path under the API's URL.
LocalPage = Callable[[Any], tuple[int, dict[str, str], bytes]]


@dataclass
class CloudContext:
    template: Mapping[str, Any]
    resolver: Resolver  # resolver.physical: Ref/GetAtt values of every created resource
    functions: list[FunctionSpec]
    invoke: Callable[[str, Any], InvokeResult]  # synchronous (RequestResponse), by id or name
    async_invoker: AsyncInvoker  # asynchronous (Event): retries, DLQ, destinations
    client: Callable[[str], Any]  # a boto3 client on the local endpoint
    endpoint_url: str
    log: Callable[[str], None] = print
    pages: dict[str, LocalPage] = field(default_factory=dict)  # services add theirs


class Service(Protocol):
    """A part of the local cloud that runs beside the API: pollers, schedulers, mail."""

    def start(self) -> None: ...

    def stop(self) -> None: ...
