"""crm_core/lean_imports.py: a package whose `__init__` only re-exports names is opened
without running it; its names still import, each from its own submodule, on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crm_core.lean_imports import exports
from tests.conftest import ROOT


def _run(code: str, *path: Path) -> list[str]:
    """`code` in a fresh interpreter (sys.modules is the point), its output's lines."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": ":".join(str(p) for p in (*path, ROOT / "shared"))},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()


def test_the_names_an_init_re_exports_map_to_their_submodules() -> None:
    source = '''"""Doc."""
from __future__ import annotations
from pkg.sub.api import Resolver, Response as Reply
from .other import Thing
__all__ = ["Resolver", "Reply", "Thing"]
'''
    assert exports(source, "pkg.sub") == {
        "Resolver": ("pkg.sub.api", "Resolver"),
        "Reply": ("pkg.sub.api", "Response"),
        "Thing": ("pkg.sub.other", "Thing"),
    }


@pytest.mark.parametrize(
    "source",
    [
        "from .api import *\n",
        "from .api import Resolver\nRESOLVER = Resolver()\n",
        "import os\nfrom .api import Resolver\n",
        "from .api import Resolver\n__all__ = [name for name in dir()]\n",
        "from .api import Resolver\nif True:\n    from .other import Thing\n",
    ],
)
def test_an_init_that_does_more_than_re_export_is_run_as_it_is(source: str) -> None:
    assert exports(source, "pkg") is None


def test_powertools_resolver_imports_without_the_resolvers_it_does_not_need() -> None:
    lines = _run(
        """
        import sys
        from crm_core import lean_imports
        print(lean_imports.install())
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
        from aws_lambda_powertools.event_handler.openapi.params import Path
        never = ["aws_lambda_powertools.event_handler.appsync",
                 "aws_lambda_powertools.utilities.data_classes.s3_event", "asyncio"]
        print([m for m in never if m in sys.modules])
        from aws_lambda_powertools.utilities.data_classes import SQSRecord
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord as Record
        assert SQSRecord is Record

        app = APIGatewayHttpResolver(enable_validation=True)

        @app.get("/items/<item_id>")
        def item(item_id: int) -> dict[str, int]:
            return {"id": item_id}

        event = {"version": "2.0", "routeKey": "GET /items/{item_id}", "rawPath": "/items/7",
                 "rawQueryString": "", "headers": {}, "isBase64Encoded": False,
                 "requestContext": {"http": {"method": "GET", "path": "/items/7"},
                                    "stage": "$default"}}
        print(app.resolve(event, {})["body"])
        event.update(rawPath="/items/x")
        event["requestContext"]["http"]["path"] = "/items/x"
        print(app.resolve(event, {})["statusCode"])

        # A name only the package's __init__ would have given: imported on first use.
        from aws_lambda_powertools.event_handler import AppSyncResolver
        from aws_lambda_powertools.event_handler.appsync import AppSyncResolver as Original
        print(AppSyncResolver is Original, lean_imports.install())
        """
    )
    assert lines == [
        "['aws_lambda_powertools.event_handler', 'aws_lambda_powertools.utilities.data_classes']",
        "[]",
        '{"id":7}',
        "422",
        "True []",
    ]


def test_a_package_already_imported_or_with_logic_in_its_init_is_left_alone(
    tmp_path: Path,
) -> None:
    package = tmp_path / "busy"
    package.mkdir()
    (package / "__init__.py").write_text("from .part import VALUE\nSTARTED = True\n")
    (package / "part.py").write_text("VALUE = 1\n")
    lines = _run(
        """
        import aws_lambda_powertools.event_handler
        from crm_core import lean_imports
        print(lean_imports.install(("aws_lambda_powertools.event_handler", "busy")))
        import busy
        print(busy.STARTED, busy.VALUE)
        """,
        tmp_path,
    )
    assert lines == ["[]", "True 1"]
