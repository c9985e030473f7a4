"""What template.yaml declares for one stage, with its intrinsic functions resolved.

The local cloud reads the same template that deploys. Resources are created on the local
endpoint first (infra/local/provision.py); their physical ids then resolve `Ref`, `Fn::GetAtt`
and `Fn::Sub`, the way CloudFormation resolves them in its own dependency order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cfn import REPO_ROOT

LOCAL_STAGE = "local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
NO_VALUE = object()
_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template uses something the local cloud cannot resolve."""


@dataclass
class Physical:
    """What provisioning created for one logical id: `Ref` and `Fn::GetAtt` values.

    `urls`: the URLs AWS would give the resource (an HTTP API's
    `https://<id>.execute-api.<region>.amazonaws.com`) and the local URLs that serve it
    instead. A string that `Fn::Sub` or `Fn::Join` builds gets the local one, so that
    `!Sub https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/unsubscribe`
    leads to the local gateway.
    """

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Resolves intrinsic functions against parameters, conditions and created resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        physical: Mapping[str, Physical] | None = None,
        stack_name: str = "crm-local",
    ) -> None:
        self.template = template
        self.parameters = {**_defaults(template), **parameters}
        self.physical = physical if physical is not None else {}
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = (self.template.get("Conditions") or {}).get(name)
            if definition is None:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definition))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function replaced; AWS::NoValue entries dropped."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        raise TemplateError(f"cannot resolve Ref {name}: not created yet or unknown")

    def get_att(self, resource: str, attribute: str) -> str:
        found = self.physical.get(resource)
        if found is None or attribute not in found.attributes:
            raise TemplateError(f"cannot resolve GetAtt {resource}.{attribute}")
        return found.attributes[attribute]

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return self.local_urls(_SUB_RE.sub(replace, text).replace("${!", "${"))

    def local_urls(self, text: str) -> str:
        """`text` with each URL of a created resource replaced by its local one (where
        the URL's host name ends: not inside a longer host name)."""
        for found in self.physical.values():
            for remote, local in found.urls.items():
                if remote in text:
                    pattern = re.escape(remote) + r"(?![A-Za-z0-9.:-])"
                    text = re.sub(pattern, local.replace("\\", "\\\\"), text)
        return text


def _defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if "Default" in spec:
            default = spec["Default"]
            if spec.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                default = [part.strip() for part in default.split(",")]
            values[name] = default
    return values


def _fn_if(r: Resolver, arg: list[Any]) -> Any:
    name, when_true, when_false = arg
    return r.resolve(when_true if r.condition(name) else when_false)


def _fn_select(r: Resolver, arg: list[Any]) -> Any:
    index, items = r.resolve(arg[0]), r.resolve(arg[1])
    return items[int(index)]


def _fn_find_in_map(r: Resolver, arg: list[Any]) -> Any:
    name, top, second = (r.resolve(a) for a in arg)
    try:
        return (r.template.get("Mappings") or {})[name][top][second]
    except KeyError:
        raise TemplateError(f"Fn::FindInMap: no {name}.{top}.{second}") from None


def _fn_getatt(r: Resolver, arg: Any) -> str:
    resource, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
    return r.get_att(resource, r.resolve(attribute))


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, arg: r.ref(arg),
    "Fn::Sub": lambda r, arg: r.sub(arg),
    "Fn::GetAtt": _fn_getatt,
    "Fn::If": _fn_if,
    "Fn::Equals": lambda r, arg: r.resolve(arg[0]) == r.resolve(arg[1]),
    "Fn::Not": lambda r, arg: not r.resolve(arg[0]),
    "Fn::And": lambda r, arg: all(r.resolve(a) for a in arg),
    "Fn::Or": lambda r, arg: any(r.resolve(a) for a in arg),
    "Condition": lambda r, arg: r.condition(arg),
    "Fn::Join": lambda r, arg: r.local_urls(
        str(r.resolve(arg[0])).join(str(v) for v in r.resolve(arg[1]))
    ),
    "Fn::Split": lambda r, arg: str(r.resolve(arg[1])).split(str(r.resolve(arg[0]))),
    "Fn::Select": _fn_select,
    "Fn::FindInMap": _fn_find_in_map,
}


# The functions and routes a stage runs ---------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function as the local runner needs it."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    events: dict[str, dict[str, Any]]
    # Every property, resolved, Globals merged: EventInvokeConfig, DeadLetterQueue...
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Run from the built artifact (`crm dev --artifact`): the code and layer dirs are all
    # the function sees, without this environment's site-packages behind them.
    isolated: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"


@dataclass(frozen=True)
class Throttle:
    """A route's throttle (API Gateway's token bucket): `rate` requests a second on average,
    at most `burst` at once."""

    rate: float
    burst: int

    @classmethod
    def of(cls, *settings: Mapping[str, Any] | None) -> Throttle | None:
        """From RouteSettings-shaped mappings, later ones overriding earlier ones."""
        merged: dict[str, Any] = {}
        for one in settings:
            merged.update(one or {})
        rate, burst = merged.get("ThrottlingRateLimit"), merged.get("ThrottlingBurstLimit")
        if rate is None or burst is None:
            return None
        return cls(float(rate), int(burst))


@dataclass(frozen=True)
class HttpRoute:
    method: str  # upper case, or "ANY"
    path: str  # as in the template: /contacts/{contact_id}, /files/{proxy+}
    function: str  # logical id
    authorized: bool
    throttle: Throttle | None = None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class JwtAuthorizerSpec:
    issuer: str
    audience: tuple[str, ...]
    identity_source: str = "$request.header.Authorization"


@dataclass(frozen=True)
class HttpApiSpec:
    logical_id: str
    routes: tuple[HttpRoute, ...]
    authorizer: JwtAuthorizerSpec | None
    cors: dict[str, Any] | None


def serverless_functions(template: Mapping[str, Any], resolver: Resolver) -> list[FunctionSpec]:
    """Every function, with Globals applied as SAM applies them."""
    globals_ = resolver.resolve((template.get("Globals") or {}).get("Function") or {})
    specs = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resolver.resolve(resource.get("Properties") or {})
        merged = {**copy.deepcopy(globals_), **props}
        variables = {
            **(globals_.get("Environment", {}).get("Variables") or {}),
            **(props.get("Environment", {}).get("Variables") or {}),
        }
        layers = [
            _layer_dir(template, layer)
            for layer in (resource.get("Properties") or {}).get(
                "Layers", (template.get("Globals") or {}).get("Function", {}).get("Layers", [])
            )
        ]
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=str(merged.get("FunctionName") or logical_id),
                code_dir=(REPO_ROOT / str(merged["CodeUri"])).resolve(),
                handler=str(merged.get("Handler", "app.handler")),
                runtime=str(merged.get("Runtime", "python3.11")),
                timeout_s=int(merged.get("Timeout", 3)),
                memory_mb=int(merged.get("MemorySize", 128)),
                environment={k: _env_text(v) for k, v in variables.items()},
                layer_dirs=tuple(d for d in layers if d is not None),
                events=dict(props.get("Events") or {}),
                properties=merged,
            )
        )
    return specs


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _layer_dir(template: Mapping[str, Any], layer: Any) -> Path | None:
    """The source folder of a layer the template builds (`!Ref SharedLayer`)."""
    if isinstance(layer, dict) and "Ref" in layer:
        resource = (template.get("Resources") or {}).get(layer["Ref"]) or {}
        uri = (resource.get("Properties") or {}).get("ContentUri")
        if isinstance(uri, str):
            return (REPO_ROOT / uri).resolve()
    return None


def http_apis(
    template: Mapping[str, Any], resolver: Resolver, functions: list[FunctionSpec]
) -> list[HttpApiSpec]:
    """Each AWS::Serverless::HttpApi with the HttpApi events of the functions that use it."""
    apis = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        props = resolver.resolve(resource.get("Properties") or {})
        auth = props.get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        authorizer = None
        if default:
            config = auth["Authorizers"][default]
            jwt = config.get("JwtConfiguration") or {}
            authorizer = JwtAuthorizerSpec(
                issuer=str(jwt["issuer"]),
                audience=tuple(str(a) for a in jwt.get("audience", [])),
                identity_source=str(config.get("IdentitySource", "$request.header.Authorization")),
            )
        api_id = (
            resolver.physical[logical_id].ref if logical_id in resolver.physical else logical_id
        )
        routes = []
        for function in functions:
            for event in function.events.values():
                if event.get("Type") != "HttpApi":
                    continue
                props_e = event.get("Properties") or {}
                if props_e.get("ApiId") != api_id:
                    continue  # another API, or SAM's implicit one
                route_auth = (props_e.get("Auth") or {}).get("Authorizer")
                routes.append(
                    HttpRoute(
                        method=str(props_e.get("Method", "ANY")).upper(),
                        path=str(props_e.get("Path", "/$default")),
                        function=function.logical_id,
                        authorized=authorizer is not None and route_auth != "NONE",
                        throttle=Throttle.of(
                            props.get("DefaultRouteSettings"), props_e.get("RouteSettings")
                        ),
                    )
                )
        cors = props.get("CorsConfiguration")
        apis.append(
            HttpApiSpec(
                logical_id=logical_id,
                routes=tuple(routes),
                authorizer=authorizer,
                cors=cors if isinstance(cors, dict) else None,
            )
        )
    return apis
